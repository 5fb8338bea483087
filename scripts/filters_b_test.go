package scripts_test

// Tests of the message authentication scripts: filters/dkim_sign, dkim_check, spf_check,
// dmarc_check and auth_results, and matchers/dkim_check, spf_check and dmarc_check. They
// run the shipped scripts through luabind against a loopback DNS server (dnstest), with
// real key files and a fixed clock, and check signatures with go-msgauth (and, when it is
// installed, the independent python3-dkim).

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/auth"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/chain/chaintest"
	"github.com/koukan/koukan/engine/dns"
	"github.com/koukan/koukan/engine/dns/dnstest"
	"github.com/koukan/koukan/engine/tx"
	"github.com/koukan/koukan/luabind"
)

var authUpdate = flag.Bool("update-auth", false, "rewrite the golden files of the authentication script tests")

// The signal names the scripts file their results under.
const (
	authDKIMSignal  = "koukan.dkim_check_filter.DkimCheckFilter"
	authSPFSignal   = "koukan.spf_check_filter.SpfCheckFilter"
	authDMARCSignal = "koukan.dmarc_check"
)

// authScripts are the scripts these tests are about.
var authScripts = []string{
	"filters/dkim_sign.lua", "filters/dkim_check.lua", "filters/spf_check.lua", "filters/dmarc_check.lua",
	"filters/auth_results.lua", "matchers/dkim_check.lua", "matchers/spf_check.lua", "matchers/dmarc_check.lua",
}

var authNow = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

// authScriptsDir is this directory, the shipped scripts, as an absolute path.
func authScriptsDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// authFS is the scripts directory showing only authScripts, so that these tests do not
// depend on the other scripts, which have tests of their own.
type authFS struct{ fs.FS }

func (f authFS) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(f.FS, name)
	return slices.DeleteFunc(entries, func(e fs.DirEntry) bool {
		return !slices.Contains(authScripts, name+"/"+e.Name())
	}), err
}

type authEnv struct {
	rt  *luabind.Runtime
	dns *dnstest.Server
}

// newAuthEnv loads the scripts with a DNS server answering from zone.
func newAuthEnv(t testing.TB, zone dnstest.Zone) *authEnv {
	t.Helper()
	server := dnstest.Start(t, zone)
	res, err := dns.New(dns.Options{Servers: []string{server.Addr}, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := luabind.New(luabind.Options{
		Sources:     []luabind.Source{{Name: "scripts", FS: authFS{os.DirFS(authScriptsDir(t))}}},
		CallTimeout: 10 * time.Second, // RSA under the race detector
		PoolSize:    2,
		Services:    luabind.Services{Now: func() time.Time { return authNow }, Resolver: res},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return &authEnv{rt: rt, dns: server}
}

// authValues turns plain values (strings, numbers, bools, []any, map[string]any) into
// config values, as the config parser makes them.
func authValues(options map[string]any) map[string]config.Value {
	out := make(map[string]config.Value, len(options))
	for k, v := range options {
		out[k] = authValue(v)
	}
	return out
}

func authValue(v any) config.Value {
	switch v := v.(type) {
	case []any:
		list := make([]config.Value, len(v))
		for i, item := range v {
			list[i] = authValue(item)
		}
		return config.Value{Data: list}
	case []string:
		list := make([]config.Value, len(v))
		for i, item := range v {
			list[i] = config.Value{Data: item}
		}
		return config.Value{Data: list}
	case map[string]any:
		return config.Value{Data: authValues(v)}
	}
	return config.Value{Data: v}
}

func (e *authEnv) step(t testing.TB, name string, options map[string]any) chain.Step {
	t.Helper()
	s, err := e.rt.NewStep(&config.Step{Filter: name, Options: authValues(options)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// match asks a matcher, configured with options, about tr.
func (e *authEnv) match(t testing.TB, name string, options map[string]any, tr *tx.Tx) luabind.Match {
	t.Helper()
	m, err := e.rt.Matcher(new(int), name, authValues(options))
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Match(context.Background(), tr, -1)
	if err != nil {
		t.Fatalf("matcher %s %v: %v", name, options, err)
	}
	return res
}

// authTx is a transaction from an SMTP client at ip that said EHLO helo (no client and no
// smtp_meta for ip "": injected over REST).
func authTx(ip, helo, mailFrom string) *tx.Tx {
	t := &tx.Tx{RestID: "tx1", MailFrom: &tx.Mailbox{Address: mailFrom}, RcptTo: []tx.Mailbox{{Address: "bob@example.net"}}}
	if ip != "" {
		t.RemoteHost = &tx.HostPort{Host: ip, Port: 40000}
		t.SMTPMeta = map[string]json.RawMessage{"ehlo_host": json.RawMessage(`"` + helo + `"`), "esmtp": json.RawMessage(`true`)}
	}
	return t
}

func authMessage(body string) *chain.Message {
	return chain.NewMessage(int64(len(body)), func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(body)), nil
	})
}

// run takes tr and msg (nil: the envelope only) through steps and an upstream that
// accepts everything, and returns what the upstream got (nil if nothing).
func authRun(t testing.TB, tr *tx.Tx, msg string, steps ...chain.Step) []byte {
	t.Helper()
	up := &chaintest.Upstream{}
	var m *chain.Message
	if msg != "" {
		m = authMessage(msg)
	}
	if err := chain.New(append(steps, up)...).Update(context.Background(), tr, m); err != nil {
		t.Fatal(err)
	}
	if len(up.Bodies) == 0 {
		return nil
	}
	return up.Bodies[0]
}

// signal decodes the signal name of tr into v.
func authSignal(t testing.TB, tr *tx.Tx, name string, v any) {
	t.Helper()
	raw, ok := tr.FilterOutput[name]
	if !ok {
		t.Fatalf("no signal %s (signals %v)", name, slices.Sorted(maps.Keys(tr.FilterOutput)))
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("signal %s: %v: %s", name, err, raw)
	}
}

// Keys. One RSA key per test binary: generating them is slow under the race detector.
var (
	authRSAOnce sync.Once
	authRSA     [2]*rsa.PrivateKey
)

func authRSAKey(t testing.TB, i int) *rsa.PrivateKey {
	authRSAOnce.Do(func() {
		for i := range authRSA {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			authRSA[i] = k
		}
	})
	return authRSA[i]
}

func authEd25519Key(seed string) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed([]byte((seed + strings.Repeat(".", 32))[:32]))
}

// authKeyFile writes k as a PEM file (PKCS#1 for RSA, as openssl genrsa writes it; PKCS#8
// for Ed25519) at path and returns path.
func authKeyFile(t testing.TB, path string, k crypto.Signer) string {
	t.Helper()
	var block *pem.Block
	switch k := k.(type) {
	case *rsa.PrivateKey:
		block = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
	default:
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// authKeyRecord is the DKIM key record publishing k's public half.
func authKeyRecord(t testing.TB, k crypto.Signer) string {
	t.Helper()
	switch pub := k.Public().(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	}
	t.Fatalf("key type %T", k)
	return ""
}

// authVerify checks every signature of msg with go-msgauth against the key records
// (name → TXT) and returns "d/s/a: result" per signature, top to bottom.
func authVerify(t testing.TB, msg []byte, records map[string]string) []string {
	t.Helper()
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if r, ok := records[name]; ok {
				return []string{r}, nil
			}
			return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tags := authSignatureTags(t, msg)
	var out []string
	for i, v := range verifs {
		res := "pass"
		if v.Err != nil {
			res = "fail: " + v.Err.Error()
		}
		out = append(out, tags[i]["d"]+"/"+tags[i]["s"]+"/"+tags[i]["a"]+": "+res)
	}
	return out
}

// authSignatureTags parses the tags of each DKIM-Signature of msg, top to bottom.
func authSignatureTags(t testing.TB, msg []byte) []map[string]string {
	t.Helper()
	head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	unfolded := strings.ReplaceAll(strings.ReplaceAll(string(head), "\r\n\t", " "), "\r\n ", "  ")
	var out []map[string]string
	for _, line := range strings.Split(unfolded, "\r\n") {
		name, value, _ := strings.Cut(line, ":")
		if !strings.EqualFold(name, "DKIM-Signature") {
			continue
		}
		tags := map[string]string{}
		for _, spec := range strings.Split(value, ";") {
			k, v, ok := strings.Cut(spec, "=")
			if ok {
				tags[strings.TrimSpace(k)] = strings.Join(strings.Fields(v), "")
			}
		}
		out = append(out, tags)
	}
	return out
}

const authPlainMessage = "From: Alice <alice@example.com>\r\n" +
	"To: Bob <bob@example.net>\r\n" +
	"Subject: Lunch\r\n" +
	"Date: Thu, 26 Nov 2026 08:00:00 +0000\r\n" +
	"Message-ID: <lunch@example.com>\r\n" +
	"\r\n" +
	"Noon at the usual place?\r\n"

func authOK(t testing.TB, tr *tx.Tx) {
	t.Helper()
	if tr.DataResponse == nil || tr.DataResponse.Code != 250 {
		t.Fatalf("data response %v, want 250", tr.DataResponse)
	}
}

func TestDkimSign(t *testing.T) {
	dir := t.TempDir()
	rsaKey, edKey := authRSAKey(t, 0), authEd25519Key("dkim sign test")
	rsaFile := authKeyFile(t, filepath.Join(dir, "rsa.pem"), rsaKey)
	edFile := authKeyFile(t, filepath.Join(dir, "ed.pem"), edKey)
	records := map[string]string{
		"rsa._domainkey.example.com": authKeyRecord(t, rsaKey),
		"ed._domainkey.example.com":  authKeyRecord(t, edKey),
		"ed._domainkey.example.org":  authKeyRecord(t, edKey),
	}
	env := newAuthEnv(t, nil)
	tests := []struct {
		name    string
		options map[string]any
		want    []string
	}{
		{"rsa", map[string]any{"key": rsaFile, "domain": "example.com", "selector": "rsa"},
			[]string{"example.com/rsa/rsa-sha256: pass"}},
		{"ed25519", map[string]any{"key": edFile, "domain": "example.com", "selector": "ed"},
			[]string{"example.com/ed/ed25519-sha256: pass"}},
		{"two keys", map[string]any{"keys": []any{
			map[string]any{"domain": "example.com", "selector": "rsa", "key": rsaFile},
			map[string]any{"domain": "example.org", "selector": "ed", "key": edFile},
		}}, []string{"example.com/rsa/rsa-sha256: pass", "example.org/ed/ed25519-sha256: pass"}},
		{"single and list", map[string]any{"key": edFile, "domain": "example.com", "selector": "ed",
			"keys": []any{map[string]any{"domain": "example.com", "selector": "rsa", "key": rsaFile}}},
			[]string{"example.com/ed/ed25519-sha256: pass", "example.com/rsa/rsa-sha256: pass"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := authTx("192.0.2.1", "client.example.com", "alice@example.com")
			body := authRun(t, tr, authPlainMessage, env.step(t, "dkim_sign", tt.options))
			authOK(t, tr)
			if got := authVerify(t, body, records); !slices.Equal(got, tt.want) {
				t.Errorf("signatures:\n got %q\nwant %q", got, tt.want)
			}
			if !strings.HasSuffix(string(body), authPlainMessage) {
				t.Errorf("the message changed below the signatures:\n%s", body)
			}
			for _, tags := range authSignatureTags(t, body) {
				if tags["c"] != "relaxed/relaxed" || tags["h"] != "From:From:Subject:Date:To:Message-ID" {
					t.Errorf("c=%s h=%s", tags["c"], tags["h"])
				}
			}
		})
	}

	t.Run("options", func(t *testing.T) {
		tr := authTx("192.0.2.1", "client.example.com", "alice@example.com")
		body := authRun(t, tr, authPlainMessage, env.step(t, "dkim_sign", map[string]any{
			"key": edFile, "domain": "example.com", "selector": "ed",
			"headers": []string{"from", "subject"}, "expiration": 3600, "canonicalization": "simple/simple",
		}))
		authOK(t, tr)
		if got := authVerify(t, body, records); !slices.Equal(got, []string{"example.com/ed/ed25519-sha256: pass"}) {
			t.Errorf("signatures %q", got)
		}
		tags := authSignatureTags(t, body)[0]
		if tags["c"] != "simple/simple" || tags["h"] != "from:subject" || tags["x"] == "" {
			t.Errorf("tags %v", tags)
		}
	})

	// A key that cannot be read fails the message temporarily: it is not sent unsigned.
	t.Run("failure", func(t *testing.T) {
		tr := authTx("192.0.2.1", "client.example.com", "alice@example.com")
		body := authRun(t, tr, authPlainMessage, env.step(t, "dkim_sign", map[string]any{
			"key": filepath.Join(dir, "missing.pem"), "domain": "example.com", "selector": "ed"}))
		if tr.DataResponse == nil || tr.DataResponse.String() != "451 4.3.0 DKIM signing failed, try again later" || body != nil {
			t.Errorf("data response %v; upstream got %q", tr.DataResponse, body)
		}
	})
}

// The scripts in this directory, under their real names: the messages of koukan check.
func authCheck(t testing.TB, env *authEnv, steps ...config.Step) []string {
	t.Helper()
	cfg := &config.Router{Endpoints: []config.Endpoint{{Name: "e", Chain: steps}}}
	var out []string
	for _, f := range luabind.CheckConfig(cfg, env.rt.Library()) {
		out = append(out, f.Message)
	}
	return out
}

func TestDkimSignConfigErrors(t *testing.T) {
	env := newAuthEnv(t, nil)
	tests := []struct {
		options map[string]any
		want    string
	}{
		{nil, "dkim_sign: no key to sign with: set key, domain and selector, or keys"},
		{map[string]any{"key": "/k.pem", "domain": "example.com"}, "dkim_sign: the key option needs selector"},
		{map[string]any{"keys": []any{map[string]any{"key": "/k.pem", "selector": "s"}}}, "dkim_sign: keys[1] needs domain"},
		{map[string]any{"keys": []any{"/k.pem"}}, "dkim_sign: keys[1] must be a table {domain, selector, key}"},
		{map[string]any{"keys": []any{map[string]any{"key": "/k.pem", "domain": "example.com", "selector": "s", "selecter": "t"}}},
			"dkim_sign: keys[1] has selecter; a key has only domain, selector and key"},
		{map[string]any{"key": "/k.pem", "domain": "example.com", "selector": "s", "headers": []string{"subject"}},
			"dkim_sign: headers must include From"},
		{map[string]any{"key": "/k.pem", "domain": "example.com", "selector": "s", "canonicalization": "loose"},
			"dkim_sign: canonicalization must be relaxed or simple"},
		{map[string]any{"key": "/k.pem", "domain": "example.com", "selector": "s", "selectr": "x"},
			`option "selectr" is not used by scripts/filters/dkim_sign.lua`},
	}
	for _, tt := range tests {
		got := authCheck(t, env, config.Step{Filter: "dkim_sign", Options: authValues(tt.options)})
		if len(got) != 1 || !strings.Contains(got[0], tt.want) {
			t.Errorf("%v: findings %q, want one containing %q", tt.options, got, tt.want)
		}
	}
	// A key file that is missing where koukan check runs is not a configuration error:
	// the keys may live only on the servers.
	if got := authCheck(t, env, config.Step{Filter: "dkim_sign", Options: authValues(map[string]any{
		"key": "/nonexistent/k.pem", "domain": "example.com", "selector": "s"})}); len(got) != 0 {
		t.Errorf("findings %q", got)
	}
}

// python3-dkim (dkimpy), when installed, checks our signatures independently.
const authDkimpyScript = `
import json, sys, dkim
records = json.loads(sys.argv[1])
def dnsfunc(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    r = records.get(name.rstrip("."))
    return r.encode() if r else None
msg = sys.stdin.buffer.read()
d = dkim.DKIM(msg)
n = sum(1 for k, v in d.headers if k.lower() == b"dkim-signature")
results = [bool(d.verify(idx=i, dnsfunc=dnsfunc)) for i in range(n)]
print(n, results)
sys.exit(0 if n and all(results) else 1)
`

func authDkimpy(t testing.TB) string {
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-c", "import dkim, nacl").Run() == nil {
			return py
		}
	}
	t.Skip("python3-dkim (with python3-nacl for Ed25519) is not installed")
	return ""
}

func TestDkimSignIndependentVerifier(t *testing.T) {
	py := authDkimpy(t)
	dir := t.TempDir()
	rsaKey, edKey := authRSAKey(t, 0), authEd25519Key("dkimpy")
	records, _ := json.Marshal(map[string]string{
		"rsa._domainkey.example.com": authKeyRecord(t, rsaKey),
		"ed._domainkey.example.org":  authKeyRecord(t, edKey),
	})
	env := newAuthEnv(t, nil)
	step := env.step(t, "dkim_sign", map[string]any{"keys": []any{
		map[string]any{"domain": "example.com", "selector": "rsa", "key": authKeyFile(t, filepath.Join(dir, "rsa.pem"), rsaKey)},
		map[string]any{"domain": "example.org", "selector": "ed", "key": authKeyFile(t, filepath.Join(dir, "ed.pem"), edKey)},
	}})
	for name, msg := range map[string]string{"plain": authPlainMessage, "multipart": authReadFile(t, "dkim_multipart.msg")} {
		tr := authTx("192.0.2.1", "client.example.com", "alice@example.com")
		body := authRun(t, tr, msg, step)
		authOK(t, tr)
		cmd := exec.Command(py, "-c", authDkimpyScript, string(records))
		cmd.Stdin = bytes.NewReader(body)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "2 [True, True]" {
			t.Errorf("%s: dkimpy: %v\n%s", name, err, out)
		}
	}
}

func authReadFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A key file rewritten (in place, or renamed over as a rotation tool would) is used for
// the next message, without a reload.
func TestDkimSignKeyRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dkim.pem")
	keyA, keyB, keyC := authEd25519Key("key A"), authEd25519Key("key B"), authRSAKey(t, 1)
	authKeyFile(t, path, keyA)
	env := newAuthEnv(t, nil)
	step := env.step(t, "dkim_sign", map[string]any{"key": path, "domain": "example.com", "selector": "sel"})
	sign := func() []byte {
		tr := authTx("192.0.2.1", "client.example.com", "alice@example.com")
		body := authRun(t, tr, authPlainMessage, step)
		authOK(t, tr)
		return body
	}
	verifiesWith := func(body []byte, k crypto.Signer) bool {
		got := authVerify(t, body, map[string]string{"sel._domainkey.example.com": authKeyRecord(t, k)})
		return len(got) == 1 && strings.HasSuffix(got[0], ": pass")
	}
	if body := sign(); !verifiesWith(body, keyA) {
		t.Fatal("not signed with key A")
	}
	// The same size and type, renamed into place at once: only the file changed.
	tmp := authKeyFile(t, filepath.Join(dir, "new.pem"), keyB)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if body := sign(); !verifiesWith(body, keyB) || verifiesWith(body, keyA) {
		t.Fatal("not signed with key B after the rename")
	}
	// Rewritten in place with an RSA key.
	authKeyFile(t, path, keyC)
	if body := sign(); !verifiesWith(body, keyC) {
		t.Fatal("not signed with key C after the rewrite")
	}
}

// dkim_check: statuses, alignment with the header From (found by the script itself, with
// no message_validation step before it), the signal's details, and the matcher.
func TestDkimCheck(t *testing.T) {
	rsaKey, edKey := authRSAKey(t, 0), authEd25519Key("dkim check")
	env := newAuthEnv(t, dnstest.Zone{
		"rsa._domainkey.example.com":   {TXT: []string{authKeyRecord(t, rsaKey)}},
		"ed._domainkey.example.com":    {TXT: []string{authKeyRecord(t, edKey)}},
		"ed._domainkey.other.example":  {TXT: []string{authKeyRecord(t, edKey)}},
		"flaky._domainkey.example.com": {Fail: true},
	})
	sign := func(msg, domain, selector string, k crypto.Signer, o auth.SignOptions) string {
		t.Helper()
		o.Domain, o.Selector, o.Key = domain, selector, k
		sig, err := auth.Sign(strings.NewReader(msg), o)
		if err != nil {
			t.Fatal(err)
		}
		return sig + msg
	}
	withFrom := func(from string) string {
		return strings.Replace(authPlainMessage, "alice@example.com>", from+">", 1)
	}
	rsa1 := sign(authPlainMessage, "example.com", "rsa", rsaKey, auth.SignOptions{Expiration: time.Hour})
	tampered := strings.Replace(sign(authPlainMessage, "example.com", "ed", edKey, auth.SignOptions{}), "Noon", "Midnight", 1)
	sha1 := strings.Replace(sign(authPlainMessage, "example.com", "rsa", rsaKey, auth.SignOptions{}), "a=rsa-sha256", "a=rsa-sha1", 1)
	// Two signatures: the top one (its i= added after signing) fails, the other passes for
	// another domain than From's.
	two := sign(sign(withFrom("alice@example.com"), "other.example", "ed", edKey, auth.SignOptions{}), "example.com", "ed", edKey, auth.SignOptions{})
	two = strings.Replace(two, "d=example.com", "d=example.com; i=@tampered.example.com", 1)

	type result struct {
		Status     int
		Result     string
		Domain     string
		Selector   string
		Algorithm  string
		Alignment  int
		Timestamp  int64
		Expiration int64
		Headers    []string
		Tags       map[string]string
		Reason     string
	}
	type signal struct {
		FromDomain string `json:"from_domain"`
		Results    []result
	}
	tests := []struct {
		name    string
		msg     string
		want    []string // status/result/domain/alignment per signature
		from    string
		matches map[string]bool
	}{
		{"rsa, same domain", rsa1, []string{"1/pass/example.com/0"}, "example.com",
			map[string]bool{"default": true, "domain": true, "other": true, "domains": true, "notdomains": false, "fail": false}},
		{"ed25519, subdomain", sign(withFrom("alice@mail.example.com"), "example.com", "ed", edKey, auth.SignOptions{}),
			[]string{"1/pass/example.com/1"}, "mail.example.com",
			map[string]bool{"default": true, "domain": false, "other": true, "domains": true}},
		{"other domain", sign(withFrom("alice@example.org"), "example.com", "ed", edKey, auth.SignOptions{}),
			[]string{"1/pass/example.com/2"}, "example.org",
			map[string]bool{"default": false, "domain": false, "other": true, "domains": true}},
		{"tampered", tampered, []string{"2/fail/example.com/0"}, "example.com",
			map[string]bool{"default": false, "fail": true, "temp_err": false}},
		{"key lookup fails", sign(authPlainMessage, "example.com", "flaky", edKey, auth.SignOptions{}),
			[]string{"0/temperror/example.com/0"}, "example.com",
			map[string]bool{"default": false, "temp_err": true, "fail": false}},
		{"rsa-sha1", sha1, []string{"3/permerror/example.com/0"}, "example.com",
			map[string]bool{"default": false, "unknown_algo": true, "fail": false}},
		{"unsigned", authPlainMessage, nil, "example.com",
			map[string]bool{"default": false, "other": false, "fail": false, "domains": false}},
		{"no From", sign("Subject: no from\r\nFrom: \r\n\r\nbody\r\n", "example.com", "ed", edKey, auth.SignOptions{HeaderKeys: []string{"From", "Subject"}}),
			[]string{"1/pass/example.com/2"}, "", map[string]bool{"default": false, "other": true}},
		{"two signatures", two, []string{"2/fail/example.com/0", "1/pass/other.example/2"}, "example.com",
			map[string]bool{"default": false, "fail": true, "otherdomain": true, "domains": false}},
	}
	matchers := map[string]map[string]any{
		"default":      nil,
		"domain":       {"alignment": "domain"},
		"other":        {"alignment": "other"},
		"domains":      {"domains": []string{"Example.COM", "example.net"}},
		"notdomains":   {"domains": []string{"mail.example.com"}},
		"otherdomain":  {"domains": []string{"other.example"}},
		"fail":         {"status": "fail"},
		"temp_err":     {"status": "temp_err"},
		"unknown_algo": {"status": "unknown_algo", "alignment": "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := authTx("192.0.2.1", "client.example.com", "alice@example.com")
			if got := env.match(t, "dkim_check", nil, tr); got != luabind.Unknown {
				t.Errorf("before dkim_check: %v, want Unknown", got)
			}
			authRun(t, tr, tt.msg, env.step(t, "dkim_check", nil))
			authOK(t, tr)
			var sig signal
			authSignal(t, tr, authDKIMSignal, &sig)
			var got []string
			for _, r := range sig.Results {
				got = append(got, strings.Join([]string{strconv.Itoa(r.Status), r.Result, r.Domain, strconv.Itoa(r.Alignment)}, "/"))
			}
			if !slices.Equal(got, tt.want) || sig.FromDomain != tt.from {
				t.Errorf("signal %s:\n got %q from %q\nwant %q from %q", tr.FilterOutput[authDKIMSignal], got, sig.FromDomain, tt.want, tt.from)
			}
			for name, want := range tt.matches {
				if got := env.match(t, "dkim_check", matchers[name], tr); got != map[bool]luabind.Match{true: luabind.Matched, false: luabind.NoMatch}[want] {
					t.Errorf("matcher %s %v: %v, want %v", name, matchers[name], got, want)
				}
			}
		})
	}

	// The details of a signature.
	tr := authTx("192.0.2.1", "client.example.com", "alice@example.com")
	authRun(t, tr, rsa1, env.step(t, "dkim_check", nil))
	var sig signal
	authSignal(t, tr, authDKIMSignal, &sig)
	r := sig.Results[0]
	if r.Selector != "rsa" || r.Algorithm != "rsa-sha256" || r.Expiration-r.Timestamp != 3600 ||
		!slices.Equal(r.Headers, []string{"from", "from", "subject", "date", "to", "message-id"}) ||
		!reflect.DeepEqual(r.Tags, map[string]string{"v": "1", "c": "relaxed/relaxed"}) || r.Reason != "" {
		t.Errorf("signature details %+v", r)
	}
	if tm := time.Unix(r.Timestamp, 0); time.Since(tm) > time.Minute {
		t.Errorf("t=%v", tm)
	}
}

func TestDkimCheckMatcherOptions(t *testing.T) {
	env := newAuthEnv(t, nil)
	tr := authTx("192.0.2.1", "client.example.com", "alice@example.com")
	for _, tt := range []struct {
		options map[string]any
		want    string
	}{
		{map[string]any{"status": "great"}, `status "great" is not one of dkim_pass, fail, pass, temp_err, temperror, unknown_algo`},
		{map[string]any{"alignment": "close"}, `alignment "close" is not one of domain, other, same_sld`},
		{map[string]any{"alignment": "domain", "domains": []string{"example.com"}}, "give alignment or domains, not both"},
	} {
		m, err := env.rt.Matcher(new(int), "dkim_check", authValues(tt.options))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Match(context.Background(), tr, -1); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.options, err, tt.want)
		}
	}
}

func TestSpfCheck(t *testing.T) {
	env := newAuthEnv(t, dnstest.Zone{
		"example.com":        {TXT: []string{"v=spf1 ip4:192.0.2.0/24 -all"}},
		"soft.example":       {TXT: []string{"v=spf1 ip4:198.51.100.1 ~all"}},
		"neutral.example":    {TXT: []string{"v=spf1 ?all"}},
		"nospf.example":      {TXT: []string{"some other text"}},
		"flaky.example":      {Fail: true},
		"broken.example":     {TXT: []string{"v=spf1 bogus:x -all"}},
		"partner.example":    {TXT: []string{"v=spf1 ip4:192.0.2.1 -all"}},
		"client.example.com": {TXT: []string{"v=spf1 ip4:192.0.2.1 -all"}},
	})
	step := env.step(t, "spf_check", map[string]any{"extra_domains": []string{"partner.example", "Soft.Example"}})
	type signal struct {
		MailFromResult int            `json:"mail_from_result"`
		Result         string         `json:"result"`
		Domain         string         `json:"domain"`
		Identity       string         `json:"identity"`
		Helo           string         `json:"helo"`
		Extra          map[string]int `json:"extra_domains_results"`
	}
	tests := []struct {
		name, ip, mailFrom string
		status             int
		result, domain     string
		identity           string
		extra              map[string]int
	}{
		{"pass", "192.0.2.1", "alice@example.com", 1, "pass", "example.com", "mailfrom", map[string]int{"partner.example": 1, "soft.example": 4}},
		{"fail", "203.0.113.5", "alice@example.com", 3, "fail", "example.com", "mailfrom", map[string]int{"partner.example": 3, "soft.example": 4}},
		{"softfail", "192.0.2.1", "alice@soft.example", 4, "softfail", "soft.example", "mailfrom", nil},
		{"neutral", "192.0.2.1", "alice@neutral.example", 6, "neutral", "neutral.example", "mailfrom", nil},
		{"none", "192.0.2.1", "alice@nospf.example", 5, "none", "nospf.example", "mailfrom", nil},
		{"no such domain", "192.0.2.1", "alice@nxdomain.example", 5, "none", "nxdomain.example", "mailfrom", nil},
		{"temperror", "192.0.2.1", "alice@flaky.example", 0, "temperror", "flaky.example", "mailfrom", nil},
		{"permerror", "192.0.2.1", "alice@broken.example", 2, "permerror", "broken.example", "mailfrom", nil},
		{"null sender", "192.0.2.1", "", 1, "pass", "client.example.com", "helo", nil},
		// Injected over REST: no client address, no smtp_meta. The reference asserted.
		{"rest", "", "alice@example.com", 5, "none", "example.com", "mailfrom", map[string]int{"partner.example": 5, "soft.example": 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := authTx(tt.ip, "client.example.com", tt.mailFrom)
			authRun(t, tr, "", step)
			if tr.MailResponse == nil || tr.MailResponse.Code != 250 {
				t.Fatalf("mail response %v", tr.MailResponse)
			}
			var got signal
			authSignal(t, tr, authSPFSignal, &got)
			if got.MailFromResult != tt.status || got.Result != tt.result || got.Domain != tt.domain || got.Identity != tt.identity {
				t.Errorf("signal %s", tr.FilterOutput[authSPFSignal])
			}
			if tt.extra != nil && !reflect.DeepEqual(got.Extra, tt.extra) {
				t.Errorf("extra domains %v, want %v", got.Extra, tt.extra)
			}
			if (tt.ip == "") != (got.Helo == "") {
				t.Errorf("helo %q", got.Helo)
			}
		})
	}

	// The matcher, on the "pass" and the "fail" transactions.
	txs := map[string]*tx.Tx{}
	for _, name := range []string{"pass", "fail"} {
		ip := map[string]string{"pass": "192.0.2.1", "fail": "203.0.113.5"}[name]
		txs[name] = authTx(ip, "client.example.com", "alice@example.com")
		authRun(t, txs[name], "", step)
	}
	for _, tt := range []struct {
		options          map[string]any
		onPass, onFailed luabind.Match
	}{
		{map[string]any{"mail_from_result": "pass"}, luabind.Matched, luabind.NoMatch},
		{map[string]any{"mail_from_result": "spf_pass"}, luabind.Matched, luabind.NoMatch},
		{map[string]any{"mail_from_result": "FAIL"}, luabind.NoMatch, luabind.Matched},
		{map[string]any{"extra_domain": "partner.example", "extra_domain_result": "pass"}, luabind.Matched, luabind.NoMatch},
		{map[string]any{"extra_domain": "Soft.Example", "extra_domain_result": "softfail"}, luabind.Matched, luabind.Matched},
		{map[string]any{"extra_domain": "unchecked.example", "extra_domain_result": "none"}, luabind.NoMatch, luabind.NoMatch},
		{map[string]any{"mail_from_result": "pass", "extra_domain": "partner.example", "extra_domain_result": "fail"}, luabind.NoMatch, luabind.NoMatch},
		{nil, luabind.Matched, luabind.Matched},
	} {
		if got := env.match(t, "spf_check", tt.options, txs["pass"]); got != tt.onPass {
			t.Errorf("%v on pass: %v, want %v", tt.options, got, tt.onPass)
		}
		if got := env.match(t, "spf_check", tt.options, txs["fail"]); got != tt.onFailed {
			t.Errorf("%v on fail: %v, want %v", tt.options, got, tt.onFailed)
		}
	}
	if got := env.match(t, "spf_check", map[string]any{"mail_from_result": "pass"}, authTx("192.0.2.1", "h", "a@example.com")); got != luabind.Unknown {
		t.Errorf("before spf_check: %v", got)
	}
	m, err := env.rt.Matcher(new(int), "spf_check", authValues(map[string]any{"mail_from_result": "great"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Match(context.Background(), txs["pass"], -1); err == nil || !strings.Contains(err.Error(), `mail_from_result "great" is not an SPF result`) {
		t.Errorf("bad result name: %v", err)
	}
}

func TestDmarcCheck(t *testing.T) {
	edKey := authEd25519Key("dmarc")
	env := newAuthEnv(t, dnstest.Zone{
		"example.com":                   {TXT: []string{"v=spf1 ip4:192.0.2.0/24 -all"}},
		"_dmarc.example.com":            {TXT: []string{"v=DMARC1; p=reject; sp=quarantine; rua=mailto:dmarc@example.com"}},
		"_dmarc.strict.example.com":     {TXT: []string{"v=DMARC1; p=reject; adkim=s; aspf=s"}},
		"ed._domainkey.example.com":     {TXT: []string{authKeyRecord(t, edKey)}},
		"ed._domainkey.partner.example": {TXT: []string{authKeyRecord(t, edKey)}},
		"_dmarc.flaky.example":          {Fail: true},
		"_dmarc.none.example":           {TXT: []string{"v=DMARC1; p=none"}},
	})
	sign := func(msg, domain string) string {
		sig, err := auth.Sign(strings.NewReader(msg), auth.SignOptions{Domain: domain, Selector: "ed", Key: edKey})
		if err != nil {
			t.Fatal(err)
		}
		return sig + msg
	}
	withFrom := func(from string) string {
		return strings.Replace(authPlainMessage, "alice@example.com>", from+">", 1)
	}
	const goodIP, badIP = "192.0.2.1", "203.0.113.5"
	type verdict struct {
		Result       string `json:"result"`
		Policy       string `json:"policy"`
		Domain       string `json:"domain"`
		PolicyDomain string `json:"policy_domain"`
		AlignedSPF   bool   `json:"aligned_spf"`
		AlignedDKIM  bool   `json:"aligned_dkim"`
	}
	tests := []struct {
		name, ip, mailFrom, msg string
		want                    verdict
		enforced                string // the data response with enforce: true
	}{
		{"pass by dkim", badIP, "bounce@elsewhere.example", sign(authPlainMessage, "example.com"),
			verdict{"pass", "reject", "example.com", "example.com", false, true}, "250 ok"},
		{"pass by spf", goodIP, "alice@example.com", authPlainMessage,
			verdict{"pass", "reject", "example.com", "example.com", true, false}, "250 ok"},
		{"pass by both, relaxed", goodIP, "alice@example.com", sign(withFrom("alice@mail.example.com"), "example.com"),
			verdict{"pass", "quarantine", "mail.example.com", "example.com", true, true}, "250 ok"},
		{"fail, p=reject", badIP, "alice@example.com", sign(authPlainMessage, "partner.example"),
			verdict{"fail", "reject", "example.com", "example.com", false, false}, "550 5.7.1 message rejected by the DMARC policy of example.com"},
		{"fail, sp=quarantine", badIP, "alice@example.com", withFrom("alice@news.example.com"),
			verdict{"fail", "quarantine", "news.example.com", "example.com", false, false}, "250 ok"},
		{"fail, strict alignment", goodIP, "alice@example.com", sign(withFrom("alice@strict.example.com"), "example.com"),
			verdict{"fail", "reject", "strict.example.com", "strict.example.com", false, false}, "550 5.7.1 message rejected by the DMARC policy of strict.example.com"},
		{"fail, p=none", badIP, "alice@none.example", withFrom("alice@none.example"),
			verdict{"fail", "none", "none.example", "none.example", false, false}, "250 ok"},
		{"no policy", badIP, "alice@example.org", withFrom("alice@example.org"),
			verdict{"none", "none", "example.org", "", false, false}, "250 ok"},
		{"temperror", badIP, "alice@flaky.example", withFrom("alice@flaky.example"),
			verdict{"temperror", "", "flaky.example", "", false, false}, "451 4.4.3 DMARC check failed temporarily for flaky.example, try again later"},
		// Two From addresses: the worst verdict counts.
		{"two authors", goodIP, "alice@example.com", strings.Replace(authPlainMessage, "From: Alice <alice@example.com>", "From: alice@example.com, eve@example.org", 1),
			verdict{"pass", "reject", "example.com", "example.com", true, false}, "250 ok"},
		{"two authors, one failing", badIP, "alice@example.org", strings.Replace(authPlainMessage, "From: Alice <alice@example.com>", "From: eve@example.org, alice@example.com", 1),
			verdict{"fail", "reject", "example.com", "example.com", false, false}, "550 5.7.1 message rejected by the DMARC policy of example.com"},
		// Injected over REST: SPF has nothing to check, DKIM still counts.
		{"rest", "", "alice@example.com", sign(authPlainMessage, "example.com"),
			verdict{"pass", "reject", "example.com", "example.com", false, true}, "250 ok"},
	}
	dmarc := env.step(t, "dmarc_check", nil)
	enforcing := env.step(t, "dmarc_check", map[string]any{"enforce": true})
	withSteps := []chain.Step{env.step(t, "spf_check", nil), env.step(t, "dkim_check", nil), dmarc}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// On its own, and after spf_check and dkim_check, whose results it uses.
			for _, steps := range [][]chain.Step{{dmarc}, withSteps} {
				tr := authTx(tt.ip, "client.example.com", tt.mailFrom)
				authRun(t, tr, tt.msg, steps...)
				authOK(t, tr)
				var got verdict
				authSignal(t, tr, authDMARCSignal, &got)
				if got != tt.want {
					t.Errorf("with %d steps: verdict %s\nwant %+v", len(steps), tr.FilterOutput[authDMARCSignal], tt.want)
				}
			}
			tr := authTx(tt.ip, "client.example.com", tt.mailFrom)
			body := authRun(t, tr, tt.msg, enforcing)
			if tr.DataResponse == nil || tr.DataResponse.String() != tt.enforced {
				t.Errorf("enforced: %v, want %s", tr.DataResponse, tt.enforced)
			}
			if (body != nil) != (tt.enforced == "250 ok") {
				t.Errorf("enforced: the upstream got the message: %v", body != nil)
			}
		})
	}

	// The matcher.
	tr := authTx(badIP, "client.example.com", "alice@example.com")
	authRun(t, tr, authPlainMessage, dmarc)
	for _, tt := range []struct {
		options map[string]any
		want    luabind.Match
	}{
		{map[string]any{"result": "fail"}, luabind.Matched},
		{map[string]any{"result": []string{"pass", "none"}}, luabind.NoMatch},
		{map[string]any{"result": "fail", "policy": []string{"quarantine", "reject"}}, luabind.Matched},
		{map[string]any{"policy": "none"}, luabind.NoMatch},
		{map[string]any{"aligned_spf": false, "aligned_dkim": false}, luabind.Matched},
		{map[string]any{"aligned_dkim": true}, luabind.NoMatch},
		{nil, luabind.Matched},
	} {
		if got := env.match(t, "dmarc_check", tt.options, tr); got != tt.want {
			t.Errorf("matcher %v: %v, want %v", tt.options, got, tt.want)
		}
	}
	if got := env.match(t, "dmarc_check", map[string]any{"result": "fail"}, authTx(badIP, "h", "a@example.com")); got != luabind.Unknown {
		t.Errorf("before dmarc_check: %v", got)
	}
	m, err := env.rt.Matcher(new(int), "dmarc_check", authValues(map[string]any{"result": "failed"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Match(context.Background(), tr, -1); err == nil || !strings.Contains(err.Error(), `result "failed" is not a DMARC result`) {
		t.Errorf("bad result name: %v", err)
	}
	if got := authCheck(t, env, config.Step{Filter: "dmarc_check", Options: authValues(map[string]any{"enforce": "yes"})}); len(got) != 1 || !strings.Contains(got[0], "enforce must be true or false") {
		t.Errorf("enforce: yes: %q", got)
	}
}

// authGolden compares got with testdata/name, or rewrites it with -update-auth.
func authGolden(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *authUpdate {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (rerun with -update-auth to accept):\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

// auth_results from fixed signals, over a message with Authentication-Results fields of
// its own: two forged ones claiming our authserv-id go, another server's stays.
func TestAuthResultsGolden(t *testing.T) {
	env := newAuthEnv(t, nil)
	tr := authTx("192.0.2.1", "client.example.com", "alice@example.com")
	tr.FilterOutput = map[string]json.RawMessage{
		authSPFSignal: json.RawMessage(`{"mail_from_result": 1, "result": "pass", "domain": "example.com", "identity": "mailfrom", "extra_domains_results": {}}`),
		authDKIMSignal: json.RawMessage(`{"from_domain": "example.com", "results": [
			{"status": 1, "result": "pass", "domain": "example.com", "selector": "rsa", "algorithm": "rsa-sha256", "alignment": 0},
			{"status": 2, "result": "fail", "reason": "signature did not verify \"here\"", "domain": "list.example", "selector": "s1", "algorithm": "ed25519-sha256", "alignment": 2}]}`),
		authDMARCSignal: json.RawMessage(`{"result": "pass", "policy": "reject", "domain": "example.com", "aligned_spf": true, "aligned_dkim": true}`),
	}
	body := authRun(t, tr, authReadFile(t, "auth_forged.msg"), env.step(t, "auth_results", map[string]any{"authserv_id": "mx.example.net"}))
	authOK(t, tr)
	authGolden(t, "auth_results.golden", body)

	// Without signals: "none". Only the topmost forged field claims our id here.
	tr = authTx("192.0.2.1", "client.example.com", "alice@example.com")
	body = authRun(t, tr, "Authentication-Results: MX.example.NET; dkim=pass\r\n"+authPlainMessage,
		env.step(t, "auth_results", map[string]any{"authserv_id": "mx.example.net"}))
	if want := "Authentication-Results: mx.example.net; none\r\n" + authPlainMessage; string(body) != want {
		t.Errorf("got\n%s\nwant\n%s", body, want)
	}

	if got := authCheck(t, env, config.Step{Filter: "auth_results"}); len(got) != 1 || !strings.Contains(got[0], `reads option "authserv_id", which this step does not set`) {
		t.Errorf("without authserv_id: %q", got)
	}
	if got := authCheck(t, env, config.Step{Filter: "auth_results", Options: authValues(map[string]any{"authserv_id": "mx; evil"})}); len(got) != 1 || !strings.Contains(got[0], "authserv_id must be a host name") {
		t.Errorf("bad authserv_id: %q", got)
	}
}

// The whole inbound sequence, in an order the reference could not run (dkim_check with no
// message_validation before it): spf_check, dkim_check, dmarc_check, auth_results.
func TestAuthResultsChain(t *testing.T) {
	edKey := authEd25519Key("auth results chain")
	env := newAuthEnv(t, dnstest.Zone{
		"example.com":               {TXT: []string{"v=spf1 ip4:192.0.2.0/24 -all"}},
		"_dmarc.example.com":        {TXT: []string{"v=DMARC1; p=reject"}},
		"ed._domainkey.example.com": {TXT: []string{authKeyRecord(t, edKey)}},
	})
	sig, err := auth.Sign(strings.NewReader(authPlainMessage), auth.SignOptions{Domain: "example.com", Selector: "ed", Key: edKey})
	if err != nil {
		t.Fatal(err)
	}
	msg := "Authentication-Results: mx.example.net; spf=pass; dkim=pass; dmarc=pass\r\n" + sig + authPlainMessage
	steps := []chain.Step{
		env.step(t, "spf_check", nil), env.step(t, "dkim_check", nil), env.step(t, "dmarc_check", map[string]any{"enforce": true}),
		env.step(t, "auth_results", map[string]any{"authserv_id": "mx.example.net"}),
	}
	for _, c := range []struct{ name, ip, golden string }{
		{"spf pass", "192.0.2.1", "auth_results_chain_pass.golden"},
		{"spf fail", "203.0.113.5", "auth_results_chain_spf_fail.golden"},
	} {
		tr := authTx(c.ip, "client.example.com", "alice@example.com")
		body := authRun(t, tr, msg, steps...)
		authOK(t, tr)
		// The field added on top, up to the DKIM-Signature, which varies with t=.
		top, _, ok := bytes.Cut(body, []byte("DKIM-Signature:"))
		if !ok || !bytes.HasSuffix(body, []byte(authPlainMessage)) {
			t.Fatalf("%s: upstream got\n%s", c.name, body)
		}
		authGolden(t, c.golden, top)
	}
}

// The scripts pass the linter with no finding at all, warnings included.
func TestAuthScriptsLint(t *testing.T) {
	_, findings := luabind.Load([]luabind.Source{{Name: "scripts", FS: os.DirFS(authScriptsDir(t))}})
	for _, f := range findings {
		for _, s := range authScripts {
			if f.File == "scripts/"+s {
				t.Errorf("%s", f)
			}
		}
	}
	for _, s := range authScripts {
		if _, err := os.Stat(s); err != nil {
			t.Error(err)
		}
	}
	// Each script loads on its own, too.
	if _, fs := luabind.Load([]luabind.Source{{Name: "scripts", FS: authFS{os.DirFS(authScriptsDir(t))}}}); len(fs) != 0 {
		t.Errorf("findings %v", fs)
	}
}
