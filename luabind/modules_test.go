package luabind

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/dns"
	"github.com/koukan/koukan/engine/dns/dnstest"
)

// The koukan.* modules against real services: a loopback DNS server and a key file.
func TestModules(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	dnsServer := dnstest.Start(t, dnstest.Zone{
		"example.com":                    {MX: []dnstest.MX{{Pref: 20, Host: "mx2.example.com"}, {Pref: 10, Host: "mx1.example.com"}}, TXT: []string{"v=spf1 ip4:192.0.2.0/24 -all"}},
		"mx1.example.com":                {A: []string{"192.0.2.25"}},
		"sel._domainkey.example.com":     {TXT: []string{"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}},
		dnstest.ReverseName("192.0.2.1"): {PTR: []string{"client.example.com."}},
	})
	dir := scripts(t, map[string]string{"filters/all.lua": `
local opts = ...
local M = {}
function M.mail(tx)
  local mx = koukan.dns.mx("example.com")
  local a = koukan.dns.a(mx[1].host)
  local none, why = koukan.dns.txt("nothing.example.com")
  local spf = koukan.spf.check(tx.remote_ip, "client.example.com", tx.mail_from)
  local a2 = koukan.addr.parse("<User+tag@Bücher.example>")
  tx:set_signal("mail", {
    mx = mx[1].host .. "/" .. mx[1].pref, a = a[1], why = why, ptr = koukan.dns.ptr(tx.remote_ip)[1],
    spf = spf.Result, ascii = a2.ascii_domain, norm = koukan.addr.normalize("User+tag@EXAMPLE.com", {strip_subaddress = "+"}),
  })
end
function M.data(tx, msg)
  assert(koukan.dkim.sign(msg, {domain = "example.com", selector = "sel", key = opts.key}))
  local results = koukan.dkim.verify(msg)
  local parsed = koukan.mime.parse(msg)
  tx:set_signal("data", {dkim = results[1].Result, n = #results, parsed = parsed ~= nil,
    date = koukan.time.rfc5322(0), from = koukan.addr.parse_header(msg:header("from"))[1].name})
end
return M
`})
	res, err := dns.New(dns.Options{Servers: []string{dnsServer.Addr}, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	rt := newRuntime(t, dir, func(o *Options) { o.Services.Resolver = res })
	s := step(t, rt, "all", map[string]any{"key": keyFile})
	tr := txTo("rcpt@example.org")
	tr.RemoteHost.Host = "192.0.2.1"
	tr.MailFrom.Address = "sender@example.com"
	up := runChain(t, tr, "From: Alice <alice@example.com>\r\nSubject: hi\r\n\r\nhello\r\n", s)
	if tr.DataResponse == nil || tr.DataResponse.Code != 250 {
		t.Fatalf("data response %v (mail %v)", tr.DataResponse, tr.MailResponse)
	}
	check := func(name, want string) {
		t.Helper()
		var got map[string]any
		json.Unmarshal(tr.FilterOutput[name], &got)
		b, _ := json.Marshal(got)
		if string(b) != want {
			t.Errorf("signal %s:\n got %s\nwant %s", name, b, want)
		}
	}
	check("mail", `{"a":"192.0.2.25","ascii":"xn--bcher-kva.example","mx":"mx1.example.com/10","norm":"User@example.com","ptr":"client.example.com","spf":"pass","why":"not found"}`)
	check("data", `{"date":"Thu, 01 Jan 1970 00:00:00 +0000","dkim":"pass","from":"Alice","n":1,"parsed":true}`)
	if b := string(up.Bodies[0]); !strings.HasPrefix(b, "DKIM-Signature: ") || !strings.Contains(b, "d=example.com") {
		t.Errorf("the message went on unsigned: %q", up.Bodies[0])
	}
}

// A filter evaluates matchers by name, with options of its own.
func TestMatcherFromAFilter(t *testing.T) {
	dir := scripts(t, map[string]string{
		"matchers/domain_is.lua": "local opts = ...\nreturn function(tx, rcpt)\n  if rcpt == nil then return nil end\n  return rcpt.address:match(\"@(.*)$\") == opts.domain\nend\n",
		"filters/gate.lua": `local opts = ...
local M = {}
function M.rcpt(tx, rcpt)
  local m = assert(koukan.matcher.new("domain_is", opts.match))
  if m(tx, rcpt) then return koukan.reject(550, "5.7.1", "blocked") end
  local none, why = koukan.matcher.new("missing", {})
  if none ~= nil or not why:match("no matcher script") then error("missing matcher: " .. tostring(why)) end
end
return M
`})
	rt := newRuntime(t, dir)
	s := step(t, rt, "gate", map[string]any{"match": map[string]config.Value{"domain": {Data: "bad.example"}}})
	tr := txTo("a@good.example", "b@bad.example")
	runChain(t, tr, "x", s)
	if tr.RcptResponse[0].Code != 250 || tr.RcptResponse[1].String() != "550 5.7.1 blocked" {
		t.Errorf("responses %v", tr.RcptResponse)
	}
}
