package scripts_test

// Tests of the shipped received_header, remote_host, dns_resolution and message_validation
// filters and of their matchers, driven through luabind as the router drives them, with a
// loopback DNS server and a fixed clock.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/chain/chaintest"
	"github.com/koukan/koukan/engine/dns/dnstest"
	"github.com/koukan/koukan/engine/mime"
	"github.com/koukan/koukan/engine/tx"
	"github.com/koukan/koukan/luabind"
	"github.com/koukan/koukan/luabind/lint"
)

var faUpdate = flag.Bool("update-filters-a", false, "rewrite the received_header golden files")

// Signal names: the reference's filter-output names.
const (
	faRemoteHost = "koukan.remote_host_filter.RemoteHostFilter"
	faDNS        = "koukan.mx_resolution.DnsResolutionFilter"
	faValidation = "koukan.message_validation_filter.MessageValidationFilter"
)

// faNow is the clock of these tests: 2009-02-13 23:31:30 UTC, as in the reference's.
func faNow() time.Time { return time.Unix(1234567890, 0) }

// faRuntime loads the scripts of this directory with r answering koukan.dns (none: offline).
func faRuntime(t testing.TB, r luabind.Resolver) *luabind.Runtime {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := luabind.New(luabind.Options{
		Sources:     []luabind.Source{{Name: dir, FS: os.DirFS(dir)}},
		CallTimeout: 5 * time.Second,
		Services:    luabind.Services{Resolver: r, Now: faNow},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return rt
}

// faValue makes a config value of plain data, as the YAML decoder does.
func faValue(v any) config.Value {
	switch v := v.(type) {
	case []any:
		out := make([]config.Value, len(v))
		for i, item := range v {
			out[i] = faValue(item)
		}
		return config.Value{Data: out}
	case map[string]any:
		out := make(map[string]config.Value, len(v))
		for k, item := range v {
			out[k] = faValue(item)
		}
		return config.Value{Data: out}
	}
	return config.Value{Data: v}
}

func faOptions(opts map[string]any) map[string]config.Value {
	out := map[string]config.Value{}
	for k, v := range opts {
		out[k] = faValue(v)
	}
	return out
}

func faStep(t testing.TB, rt *luabind.Runtime, name string, opts map[string]any) chain.Step {
	t.Helper()
	s, err := rt.NewStep(&config.Step{Filter: name, Options: faOptions(opts)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func faMessage(body []byte) *chain.Message {
	return chain.NewMessage(int64(len(body)), func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(body)), nil
	})
}

// faRun runs steps and an accepting upstream over the whole transaction.
func faRun(t testing.TB, tr *tx.Tx, msg *chain.Message, steps ...chain.Step) *chaintest.Upstream {
	t.Helper()
	up := &chaintest.Upstream{}
	if err := chain.New(append(steps, up)...).Update(context.Background(), tr, msg); err != nil {
		t.Fatal(err)
	}
	return up
}

// faMeta is smtp_meta as the gateway sends it.
func faMeta(m map[string]any) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for k, v := range m {
		out[k], _ = json.Marshal(v)
	}
	return out
}

// faSignal decodes a signal to plain data ("" when absent).
func faSignal(t testing.TB, tr *tx.Tx, name string) string {
	t.Helper()
	raw, ok := tr.FilterOutput[name]
	if !ok {
		return ""
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("signal %s: %v", name, err)
	}
	b, _ := json.Marshal(v) // sorted keys
	return string(b)
}

func faSetSignal(tr *tx.Tx, name, value string) {
	if tr.FilterOutput == nil {
		tr.FilterOutput = map[string]json.RawMessage{}
	}
	tr.FilterOutput[name] = json.RawMessage(value)
}

func faTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var faScripts = []string{
	"filters/received_header.lua", "filters/remote_host.lua", "filters/dns_resolution.lua", "filters/message_validation.lua",
	"matchers/remote_host.lua", "matchers/dns_resolution.lua", "matchers/message_validation.lua",
}

// The scripts pass the linter without a finding, and the smoke run `koukan check` does.
func TestFiltersALint(t *testing.T) {
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	lib, findings := luabind.Load([]luabind.Source{{Name: dir, FS: os.DirFS(dir)}})
	mine := func(f lint.Finding) bool {
		for _, s := range faScripts {
			if strings.HasSuffix(f.File, s) {
				return true
			}
		}
		return false
	}
	for _, f := range findings {
		if mine(f) {
			t.Errorf("lint: %s", f)
		}
	}
	if lib == nil {
		t.Fatalf("the library does not load: %v", findings)
	}
	for _, s := range faScripts {
		kind, name, _ := strings.Cut(strings.TrimSuffix(s, ".lua"), "/")
		k := map[string]lint.Kind{"filters": lint.Filter, "matchers": lint.Matcher}[kind]
		if lib.Lookup(k, name) == nil {
			t.Errorf("%s is not in the library", s)
		}
	}
	for _, f := range luabind.Smoke(lib) {
		if mine(f) {
			t.Errorf("smoke: %s", f)
		}
	}
	// Options: none is required, and each script reads those of the reference.
	for name, want := range map[string][]string{
		"received_header": {"max_received_headers", "received_hostname"},
		"dns_resolution":  {"literal", "static_hosts", "suffix"},
	} {
		s := lib.Lookup(lint.Filter, name)
		var got []string
		for k, use := range s.Info.Options {
			got = append(got, k)
			if !use.Guarded {
				t.Errorf("%s: option %s is required", name, k)
			}
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s reads options %v, want %v", name, got, want)
		}
	}
}

// receivedTx is an SMTP transaction from 1.2.3.4 whose client remote_host verified.
func receivedTx(rcpts ...string) *tx.Tx {
	tr := &tx.Tx{
		RestID:     "Yc2xRgTt4n",
		RemoteHost: &tx.HostPort{Host: "1.2.3.4", Port: 25000},
		MailFrom:   &tx.Mailbox{Address: "alice@example.com"},
		SMTPMeta:   faMeta(map[string]any{"ehlo_host": "gargantua1", "esmtp": true, "tls": true}),
	}
	for _, r := range rcpts {
		tr.RcptTo = append(tr.RcptTo, tx.Mailbox{Address: r})
	}
	faSetSignal(tr, faRemoteHost, `{"status": 0, "fcrdns": true, "ehlo_alignment": true, "remote_hostname": "gargantua1"}`)
	return tr
}

const receivedBody = "From: <alice>\r\nTo: <bob>\r\nReceived: from somewhere-else.example.com with ESMTP;\r\n" +
	"\tFri, 13 Feb 2009 23:31:29 +0000\r\n\r\nhello\r\n"

func TestReceivedHeader(t *testing.T) {
	rt := faRuntime(t, nil)
	cases := []struct {
		name    string
		tx      func() *tx.Tx
		options map[string]any
	}{
		// The reference's own example, with the id clause.
		{"smtp_fcrdns", func() *tx.Tx { return receivedTx("bob@domain") }, map[string]any{"received_hostname": "gargantua1"}},
		{"smtp_no_fcrdns", func() *tx.Tx {
			tr := receivedTx("bob@domain")
			tr.SMTPMeta = faMeta(map[string]any{"ehlo_host": "gargantua1", "esmtp": true})
			faSetSignal(tr, faRemoteHost, `{"status": 0, "fcrdns": false, "ehlo_alignment": false, "remote_hostname": "liar.example"}`)
			return tr
		}, map[string]any{"received_hostname": "mx.example.com"}},
		// Without remote_host's signal, HELO instead of EHLO, no "by".
		{"smtp_plain", func() *tx.Tx {
			tr := receivedTx("bob@domain")
			tr.SMTPMeta = faMeta(map[string]any{"ehlo_host": "client.example"})
			tr.FilterOutput = nil
			return tr
		}, nil},
		{"two_rcpts", func() *tx.Tx { return receivedTx("bob@domain", "carol@domain") }, map[string]any{"received_hostname": "gargantua1"}},
		{"utf8smtp", func() *tx.Tx {
			tr := receivedTx("bob@domain")
			tr.MailFrom.Esmtp = []tx.EsmtpParam{{Keyword: "SMTPUTF8"}}
			return tr
		}, map[string]any{"received_hostname": "gargantua1"}},
		{"esmtpsa_tls", func() *tx.Tx {
			tr := receivedTx("bob@domain")
			tr.SMTPMeta = faMeta(map[string]any{"ehlo_host": "gargantua1", "esmtp": true, "tls": true, "auth": true,
				"tls_version": "TLS 1.3", "tls_cipher": "TLS_AES_128_GCM_SHA256"})
			return tr
		}, map[string]any{"received_hostname": "gargantua1"}},
		{"ipv6", func() *tx.Tx {
			tr := receivedTx("bob@domain")
			tr.RemoteHost.Host = "2001:db8::25"
			tr.FilterOutput = nil
			return tr
		}, map[string]any{"received_hostname": "gargantua1"}},
		// REST-originated: no smtp_meta; the client's name or address stands in for EHLO.
		{"rest_fcrdns", func() *tx.Tx {
			tr := receivedTx("bob@domain")
			tr.SMTPMeta = nil
			return tr
		}, map[string]any{"received_hostname": "gargantua1"}},
		{"rest_ip", func() *tx.Tx {
			tr := receivedTx("bob@domain")
			tr.SMTPMeta = nil
			tr.FilterOutput = nil
			return tr
		}, map[string]any{"received_hostname": "gargantua1"}},
		{"rest_no_client", func() *tx.Tx {
			tr := receivedTx("bob@domain")
			tr.SMTPMeta, tr.RemoteHost, tr.FilterOutput = nil, nil, nil
			return tr
		}, map[string]any{"received_hostname": "gargantua1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := c.tx()
			up := faRun(t, tr, faMessage([]byte(receivedBody)), faStep(t, rt, "received_header", c.options))
			if tr.DataResponse == nil || tr.DataResponse.Code != 250 || len(up.Bodies) != 1 {
				t.Fatalf("data response %v", tr.DataResponse)
			}
			got := up.Bodies[0]
			if !bytes.HasSuffix(got, []byte(receivedBody)) {
				t.Errorf("the message changed below the new field:\n%s", got)
			}
			golden := filepath.Join("testdata", "received_header_"+c.name+".golden")
			if *faUpdate {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// A message that went round too often is refused, as the reference does.
func TestReceivedHeaderLoop(t *testing.T) {
	rt := faRuntime(t, nil)
	hops := strings.Repeat("Received: from a by b; Fri, 13 Feb 2009 23:31:29 +0000\r\n", 3)
	for _, c := range []struct {
		max  any
		want int
	}{{nil, 250}, {3, 250}, {2, 550}} {
		opts := map[string]any{}
		if c.max != nil {
			opts["max_received_headers"] = c.max
		}
		tr := receivedTx("bob@domain")
		up := faRun(t, tr, faMessage([]byte(hops+"\r\nhi\r\n")), faStep(t, rt, "received_header", opts))
		if tr.DataResponse == nil || tr.DataResponse.Code != c.want {
			t.Errorf("max %v: %v", c.max, tr.DataResponse)
		}
		if c.want == 550 && (len(up.Bodies) != 0 || !strings.Contains(tr.DataResponse.Message, "5.4.6")) {
			t.Errorf("max %v: %v, upstream got %d bodies", c.max, tr.DataResponse, len(up.Bodies))
		}
	}
	tr := receivedTx("bob@domain")
	faRun(t, tr, faMessage([]byte(strings.Repeat(hops, 11)+"\r\nhi\r\n")), faStep(t, rt, "received_header", nil))
	if tr.DataResponse == nil || tr.DataResponse.String() != "550 5.4.6 message has too many Received: headers and is likely looping" {
		t.Errorf("33 hops: %v", tr.DataResponse)
	}
}

// faZone is the DNS of these tests.
func faZone() dnstest.Zone {
	return dnstest.Zone{
		dnstest.ReverseName("192.0.2.1"):    {PTR: []string{"client.example.com."}},
		"client.example.com":                {A: []string{"192.0.2.1"}},
		dnstest.ReverseName("192.0.2.2"):    {PTR: []string{"liar.example.com."}},
		"liar.example.com":                  {A: []string{"192.0.2.99"}, AAAA: []string{"2001:db8::99"}},
		dnstest.ReverseName("192.0.2.4"):    {Fail: true},
		dnstest.ReverseName("192.0.2.5"):    {PTR: []string{"fwdfail.example.com."}},
		"fwdfail.example.com":               {Fail: true},
		dnstest.ReverseName("192.0.2.6"):    {PTR: []string{"v4only.example.com."}},
		"v4only.example.com":                {A: []string{"192.0.2.6"}},
		dnstest.ReverseName("2001:db8::5"):  {PTR: []string{"v6.example.com."}},
		"v6.example.com":                    {AAAA: []string{"2001:db8::5"}},
		dnstest.ReverseName("192.0.2.7"):    {},
		"example.com":                       {MX: []dnstest.MX{{Pref: 20, Host: "mx2.example.com"}, {Pref: 10, Host: "mx1.example.com"}}},
		"mx1.example.com":                   {A: []string{"192.0.2.10"}, AAAA: []string{"2001:db8::10"}},
		"mx2.example.com":                   {A: []string{"192.0.2.20", "192.0.2.10"}},
		"implicit.example":                  {A: []string{"192.0.2.30"}},
		"nullmx.example":                    {MX: []dnstest.MX{{Pref: 0, Host: "."}}},
		"fail.example":                      {Fail: true},
		"noaddr.example":                    {MX: []dnstest.MX{{Pref: 10, Host: "nowhere.example"}}},
		"halffail.example":                  {MX: []dnstest.MX{{Pref: 10, Host: "mx1.example.com"}, {Pref: 20, Host: "fail.example"}}},
		"other.example":                     {A: []string{"192.0.2.40"}},
		dnstest.ReverseName("203.0.113.10"): {PTR: []string{"unused.example."}},
	}
}

func TestRemoteHost(t *testing.T) {
	srv := dnstest.Start(t, faZone())
	rt := faRuntime(t, srv.Resolver(t))
	step := faStep(t, rt, "remote_host", nil)
	for _, c := range []struct {
		ip, ehlo string
		mail     string // the response to MAIL
		signal   string
	}{
		{"192.0.2.1", "client.example.com", "250 ok", `{"ehlo_alignment":true,"fcrdns":true,"remote_hostname":"client.example.com","status":0}`},
		{"192.0.2.1", "Client.Example.COM.", "250 ok", `{"ehlo_alignment":true,"fcrdns":true,"remote_hostname":"client.example.com","status":0}`},
		{"192.0.2.1", "other.example", "250 ok", `{"ehlo_alignment":false,"fcrdns":true,"remote_hostname":"client.example.com","status":0}`},
		{"192.0.2.2", "liar.example.com", "250 ok", `{"ehlo_alignment":false,"fcrdns":false,"remote_hostname":"liar.example.com","status":0}`},
		{"192.0.2.6", "v4only.example.com", "250 ok", `{"ehlo_alignment":true,"fcrdns":true,"remote_hostname":"v4only.example.com","status":0}`},
		{"2001:db8::5", "v6.example.com", "250 ok", `{"ehlo_alignment":true,"fcrdns":true,"remote_hostname":"v6.example.com","status":0}`},
		// NXDOMAIN and no PTR records: not found, and MAIL goes on.
		{"192.0.2.3", "x", "250 ok", `{"ehlo_alignment":false,"fcrdns":false,"remote_hostname":"","status":2}`},
		{"192.0.2.7", "x", "250 ok", `{"ehlo_alignment":false,"fcrdns":false,"remote_hostname":"","status":2}`},
		// SERVFAIL: try again later.
		{"192.0.2.4", "x", "450 4.4.3 RemoteHostFilter ptr err: temporary", `{"ehlo_alignment":false,"fcrdns":false,"status":1}`},
		{"192.0.2.5", "x", "450 4.4.3 RemoteHostFilter fwd err", `{"ehlo_alignment":false,"fcrdns":false,"remote_hostname":"fwdfail.example.com","status":1}`},
	} {
		tr := &tx.Tx{RestID: "t", RemoteHost: &tx.HostPort{Host: c.ip, Port: 1234}, MailFrom: &tx.Mailbox{Address: "a@example.com"},
			RcptTo: []tx.Mailbox{{Address: "b@example.com"}}, SMTPMeta: faMeta(map[string]any{"ehlo_host": c.ehlo, "esmtp": true})}
		up := faRun(t, tr, nil, step)
		if got := tr.MailResponse.String(); got != c.mail {
			t.Errorf("%s: mail %s, want %s", c.ip, got, c.mail)
		}
		if c.mail != "250 ok" && len(up.Rcpts) != 0 {
			t.Errorf("%s: the upstream was asked after a failed MAIL", c.ip)
		}
		if got := faSignal(t, tr, faRemoteHost); got != c.signal {
			t.Errorf("%s: signal\n got %s\nwant %s", c.ip, got, c.signal)
		}
	}
	// REST-originated: no client, no signal.
	tr := &tx.Tx{RestID: "t", MailFrom: &tx.Mailbox{Address: "a@example.com"}}
	faRun(t, tr, nil, step)
	if tr.MailResponse.Code != 250 || faSignal(t, tr, faRemoteHost) != "" {
		t.Errorf("REST: %v %s", tr.MailResponse, faSignal(t, tr, faRemoteHost))
	}
}

// remote_host's verdict reaches the Received field of the same chain.
func TestRemoteHostThenReceived(t *testing.T) {
	srv := dnstest.Start(t, faZone())
	rt := faRuntime(t, srv.Resolver(t))
	tr := &tx.Tx{RestID: "abc", RemoteHost: &tx.HostPort{Host: "192.0.2.1", Port: 1234}, MailFrom: &tx.Mailbox{Address: "a@example.com"},
		RcptTo: []tx.Mailbox{{Address: "b@example.com"}}, SMTPMeta: faMeta(map[string]any{"ehlo_host": "client.example.com", "esmtp": true})}
	up := faRun(t, tr, faMessage([]byte("Subject: x\r\n\r\nx\r\n")), faStep(t, rt, "remote_host", nil),
		faStep(t, rt, "received_header", map[string]any{"received_hostname": "mx.example.org"}))
	want := "Received: from client.example.com (client.example.com [192.0.2.1])\r\n\tby mx.example.org\r\n\twith ESMTP\r\n" +
		"\tid abc\r\n\tfor b@example.com;\r\n\tFri, 13 Feb 2009 23:31:30 +0000\r\nSubject: x\r\n\r\nx\r\n"
	if len(up.Bodies) != 1 || string(up.Bodies[0]) != want {
		t.Errorf("got %q\nwant %q", up.Bodies, want)
	}
}

// faRouter stands for the router step before dns_resolution: it routes each new recipient
// to its own domain (as dest_domain does), or rejects the ones in reject.
func faRouter(hosts func(rcpt string) []tx.HostPort, reject ...string) chain.Step {
	return chaintest.Func(func(_ context.Context, u *chain.Update) error {
		for _, i := range u.Rcpts {
			addr := u.Tx.RcptTo[i].Address
			for _, r := range reject {
				if r == addr {
					u.SetRcptResponse(i, tx.Response{Code: 550, Message: "5.1.1 no"})
				}
			}
			if u.RcptResponse(i) == nil {
				u.Tx.RestEndpoint = "http://gateway.internal"
				u.Tx.Resolution = hosts(addr)
			}
		}
		return nil
	})
}

func faDestDomain(rcpt string) []tx.HostPort {
	return []tx.HostPort{{Host: rcpt[strings.LastIndexByte(rcpt, '@')+1:], Port: 25}}
}

func faHosts(hps ...string) func(string) []tx.HostPort {
	return func(string) []tx.HostPort {
		var out []tx.HostPort
		for _, hp := range hps {
			i := strings.LastIndexByte(hp, ':')
			port, _ := strconv.Atoi(hp[i+1:])
			out = append(out, tx.HostPort{Host: hp[:i], Port: port})
		}
		return out
	}
}

func TestDNSResolution(t *testing.T) {
	srv := dnstest.Start(t, faZone())
	rt := faRuntime(t, srv.Resolver(t))
	for _, c := range []struct {
		name     string
		options  map[string]any
		from     string
		rcpts    []string
		hosts    func(string) []tx.HostPort
		reject   []string
		want     string // the destination's hosts afterwards
		signal   string
		response string // the rcpt responses
	}{
		{name: "mx order, dedup, v4 before v6", from: "alice@implicit.example", rcpts: []string{"bob@example.com"}, hosts: faDestDomain,
			want:   "[{192.0.2.10 25} {2001:db8::10 25} {192.0.2.20 25}]",
			signal: `{"mail_from_result":0,"rcpt_to_result":[0],"resolution_result":0}`},
		{name: "implicit mx", from: "alice@example.com", rcpts: []string{"bob@implicit.example"}, hosts: faDestDomain,
			want:   "[{192.0.2.30 25}]",
			signal: `{"mail_from_result":0,"rcpt_to_result":[0],"resolution_result":0}`},
		// Failures leave the destination as it was (policy_action decides what to do).
		{name: "null mx", from: "alice@nullmx.example", rcpts: []string{"bob@nullmx.example"}, hosts: faDestDomain,
			want:   "[{nullmx.example 25}]",
			signal: `{"mail_from_result":1,"rcpt_to_result":[1],"resolution_result":1}`},
		{name: "nxdomain", from: "alice@nx.example", rcpts: []string{"bob@nx.example"}, hosts: faDestDomain,
			want:   "[{nx.example 25}]",
			signal: `{"mail_from_result":1,"rcpt_to_result":[1],"resolution_result":1}`},
		{name: "servfail", from: "alice@fail.example", rcpts: []string{"bob@fail.example"}, hosts: faDestDomain,
			want:   "[{fail.example 25}]",
			signal: `{"mail_from_result":2,"rcpt_to_result":[2],"resolution_result":2}`},
		{name: "no addresses", from: "", rcpts: []string{"bob@noaddr.example"}, hosts: faDestDomain,
			want:   "[{noaddr.example 25}]",
			signal: `{"mail_from_result":0,"rcpt_to_result":[2],"resolution_result":2}`},
		// One exchanger failing is not the domain failing.
		{name: "one mx fails", from: "", rcpts: []string{"bob@halffail.example"}, hosts: faDestDomain,
			want:   "[{192.0.2.10 25} {2001:db8::10 25}]",
			signal: `{"mail_from_result":0,"rcpt_to_result":[0],"resolution_result":0}`},
		{name: "ports kept, ips and duplicates", from: "a@example.com", rcpts: []string{"bob@example.com"},
			hosts:  faHosts("example.com:2525", "192.0.2.77:25", "mx1.example.com:2525", "2001:db8::1:587", "example.com:25"),
			want:   "[{192.0.2.10 2525} {2001:db8::10 2525} {192.0.2.20 2525} {192.0.2.77 25} {2001:db8::1 587} {192.0.2.10 25} {2001:db8::10 25} {192.0.2.20 25}]",
			signal: `{"mail_from_result":0,"rcpt_to_result":[0],"resolution_result":0}`},
		{name: "suffix", options: map[string]any{"suffix": "EXAMPLE.com"}, from: "a@nx.example", rcpts: []string{"bob@example.com", "carol@nx.example"},
			hosts:  faHosts("mx1.example.com:25", "other.example:25"),
			want:   "[{192.0.2.10 25} {2001:db8::10 25} {other.example 25}]",
			signal: `{"mail_from_result":0,"rcpt_to_result":[0,0],"resolution_result":0}`},
		{name: "literal", options: map[string]any{"literal": "other.example"}, from: "a@nx.example", rcpts: []string{"bob@other.example"},
			hosts:  faHosts("mx1.example.com:25", "other.example:25"),
			want:   "[{mx1.example.com 25} {192.0.2.40 25}]",
			signal: `{"mail_from_result":0,"rcpt_to_result":[0],"resolution_result":0}`},
		{name: "empty suffix is all", options: map[string]any{"suffix": "", "literal": "x.example"}, from: "a@nx.example", rcpts: []string{"bob@other.example"},
			hosts:  faDestDomain,
			want:   "[{192.0.2.40 25}]",
			signal: `{"mail_from_result":1,"rcpt_to_result":[0],"resolution_result":0}`},
		// A smarthost: no DNS at all, every domain is fine.
		{name: "static hosts", options: map[string]any{"static_hosts": []any{map[string]any{"host": "10.0.0.1", "port": 2525}, map[string]any{"host": "10.0.0.2"}, "10.0.0.3:26"}},
			from: "a@nx.example", rcpts: []string{"bob@nx.example"}, hosts: faDestDomain,
			want:   "[{10.0.0.1 2525} {10.0.0.2 25} {10.0.0.3 26}]",
			signal: `{"mail_from_result":0,"rcpt_to_result":[0],"resolution_result":0}`},
		{name: "ip hosts only", from: "a@example.com", rcpts: []string{"bob@example.com"}, hosts: faHosts("192.0.2.1:25", "2001:db8::2:25"),
			want:   "[{192.0.2.1 25} {2001:db8::2 25}]",
			signal: `{"mail_from_result":0,"rcpt_to_result":[0]}`},
		// Recipients rated each; one answered by an earlier step is not.
		{name: "recipients", from: "a@example.com", rcpts: []string{"x@nx.example", "bob@example.com", "carol@fail.example"},
			hosts: faHosts("example.com:25"), reject: []string{"x@nx.example"},
			want:     "[{192.0.2.10 25} {2001:db8::10 25} {192.0.2.20 25}]",
			signal:   `{"mail_from_result":0,"rcpt_to_result":[-1,0,2],"resolution_result":0}`,
			response: "550 5.1.1 no|250 ok|250 ok"},
		{name: "no destination", from: "a@example.com", rcpts: []string{"bob@example.com"}, hosts: func(string) []tx.HostPort { return nil },
			want:   "[]",
			signal: `{"mail_from_result":0,"rcpt_to_result":[0]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := &tx.Tx{RestID: "t", MailFrom: &tx.Mailbox{Address: c.from}}
			for _, r := range c.rcpts {
				tr.RcptTo = append(tr.RcptTo, tx.Mailbox{Address: r})
			}
			faRun(t, tr, nil, faRouter(c.hosts, c.reject...), faStep(t, rt, "dns_resolution", c.options))
			if got := faFormatHosts(tr.Resolution); got != c.want {
				t.Errorf("hosts %s, want %s", got, c.want)
			}
			if got := faSignal(t, tr, faDNS); got != c.signal {
				t.Errorf("signal\n got %s\nwant %s", got, c.signal)
			}
			var rs []string
			for _, r := range tr.RcptResponse {
				rs = append(rs, r.String())
			}
			if want := c.response; want != "" && strings.Join(rs, "|") != want {
				t.Errorf("responses %s, want %s", strings.Join(rs, "|"), want)
			}
			if tr.RestEndpoint != "" && tr.RestEndpoint != "http://gateway.internal" {
				t.Errorf("the endpoint changed: %s", tr.RestEndpoint)
			}
		})
	}
}

// A static_hosts entry that is no host fails the step's calls: a temporary failure, and the
// error in the log.
func TestDNSResolutionBadOption(t *testing.T) {
	rt := faRuntime(t, nil)
	tr := &tx.Tx{RestID: "t", MailFrom: &tx.Mailbox{Address: "a@example.com"}}
	faRun(t, tr, nil, faStep(t, rt, "dns_resolution", map[string]any{"static_hosts": []any{map[string]any{"port": 25}}}))
	if tr.MailResponse == nil || tr.MailResponse.Code != 451 {
		t.Errorf("mail %v", tr.MailResponse)
	}
}

func faFormatHosts(hs []tx.HostPort) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = "{" + h.Host + " " + strconv.Itoa(h.Port) + "}"
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// The recipients of a transaction arrive one update at a time, as over SMTP; the
// destination is resolved once and the ratings add up.
func TestDNSResolutionIncremental(t *testing.T) {
	srv := dnstest.Start(t, faZone())
	rt := faRuntime(t, srv.Resolver(t))
	c := chain.New(faRouter(faDestDomain), faStep(t, rt, "dns_resolution", nil), &chaintest.Upstream{})
	tr := &tx.Tx{RestID: "t", MailFrom: &tx.Mailbox{Address: "a@example.com"}}
	steps := []struct{ rcpt, signal string }{
		{"", `{"mail_from_result":0}`},
		{"bob@example.com", `{"mail_from_result":0,"rcpt_to_result":[0],"resolution_result":0}`},
		{"carol@nx.example", `{"mail_from_result":0,"rcpt_to_result":[0,1],"resolution_result":1}`},
	}
	for _, s := range steps {
		if s.rcpt != "" {
			tr.RcptTo = append(tr.RcptTo, tx.Mailbox{Address: s.rcpt})
		}
		if err := c.Update(context.Background(), tr, nil); err != nil {
			t.Fatal(err)
		}
		if got := faSignal(t, tr, faDNS); got != s.signal {
			t.Errorf("after %q: %s, want %s", s.rcpt, got, s.signal)
		}
	}
}

func TestMessageValidation(t *testing.T) {
	rt := faRuntime(t, nil)
	step := faStep(t, rt, "message_validation", nil)
	for _, c := range []struct {
		file     string
		smtputf8 bool
		status   int
		err      string // a part of err
		received any    // nil: none
		from     any
	}{
		{"trivial.msg", false, 3, "", 1.0, "alice@example.com"},
		{"multipart.msg", false, 3, "", 0.0, "alice@example.com"},
		{"bad_from.msg", false, 1, "from: InvalidHeaderDefect", 1.0, nil},
		{"missing_headers.msg", false, 1, "message-id: missing", 1.0, "alice@example.com"},
		{"8bit_headers.msg", false, 1, "subject: UndecodableBytesDefect", 1.0, nil},
		{"ascii_ctl_headers.msg", false, 1, "subject: NonPrintableDefect", 1.0, nil},
		{"utf8_headers.msg", false, 1, "UndecodableBytesDefect", 1.0, nil},
		{"utf8_headers.msg", true, 3, "", 1.0, "alice@example.com"},
		{"bad_cc.msg", false, 2, "to: InvalidHeaderDefect", 1.0, "alice@example.com"},
		{"bad_multipart.msg", false, 2, "CloseBoundaryNotFoundDefect", 0.0, "alice@example.com"},
		{"bad_headers.msg", false, 0, "MissingHeaderBodySeparatorDefect", nil, nil},
	} {
		tr := &tx.Tx{RestID: "t", MailFrom: &tx.Mailbox{Address: "a@example.com"}, RcptTo: []tx.Mailbox{{Address: "b@example.com"}}}
		if c.smtputf8 {
			tr.MailFrom.Esmtp = []tx.EsmtpParam{{Keyword: "SMTPUTF8"}}
		}
		faRun(t, tr, faMessage(faTestdata(t, c.file)), step)
		if tr.DataResponse == nil || tr.DataResponse.Code != 250 {
			t.Errorf("%s: the filter answered %v", c.file, tr.DataResponse)
		}
		var sig map[string]any
		if err := json.Unmarshal(tr.FilterOutput[faValidation], &sig); err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		errText, _ := sig["err"].(string)
		if sig["status"] != float64(c.status) || !strings.Contains(errText, c.err) || (c.err == "") != (errText == "") ||
			sig["received_header_count"] != c.received || sig["header_from"] != c.from {
			t.Errorf("%s (smtputf8 %v): %s", c.file, c.smtputf8, tr.FilterOutput[faValidation])
		}
	}
}

// In a chain, the Received field received_header adds is counted; and a message-builder
// body, which reaches steps rendered, is validated like any other (the reference skipped
// those).
func TestMessageValidationChain(t *testing.T) {
	rt := faRuntime(t, nil)
	tr := receivedTx("bob@example.com")
	faRun(t, tr, faMessage(faTestdata(t, "multipart.msg")),
		faStep(t, rt, "received_header", map[string]any{"received_hostname": "mx.example.com"}), faStep(t, rt, "message_validation", nil))
	if got := faSignal(t, tr, faValidation); got != `{"header_from":"alice@example.com","received_header_count":1,"status":3}` {
		t.Errorf("after received_header: %s", got)
	}

	raw, err := os.ReadFile("../engine/mime/testdata/message_builder.json")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := tx.ParseMessageSpec(raw)
	if err != nil {
		t.Fatal(err)
	}
	rendered := chain.NewMessage(-1, func(context.Context) (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			pw.CloseWithError(mime.Render(pw, spec, func(id string) (io.ReadCloser, error) {
				return io.NopCloser(strings.NewReader("contents of " + id)), nil
			}, "seed"))
		}()
		return pr, nil
	})
	tr = &tx.Tx{RestID: "t", MailFrom: &tx.Mailbox{Address: "a@example.com"}, RcptTo: []tx.Mailbox{{Address: "b@example.com"}}}
	faRun(t, tr, rendered, faStep(t, rt, "message_validation", nil))
	var sig map[string]any
	json.Unmarshal(tr.FilterOutput[faValidation], &sig)
	if sig["status"] != 3.0 || sig["header_from"] == nil {
		t.Errorf("message builder body: %s", tr.FilterOutput[faValidation])
	}
}

// faMatch asks a matcher about tr (rcpt -1: the whole transaction).
func faMatch(t *testing.T, rt *luabind.Runtime, name string, opts map[string]any, tr *tx.Tx, rcpt int) string {
	t.Helper()
	m, err := rt.Matcher(new(int), name, faOptions(opts))
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Match(context.Background(), tr, rcpt)
	if err != nil {
		t.Fatalf("%s %v: %v", name, opts, err)
	}
	return map[luabind.Match]string{luabind.Matched: "MATCH", luabind.NoMatch: "NO_MATCH", luabind.Unknown: "UNMET"}[res]
}

func TestRemoteHostMatcher(t *testing.T) {
	rt := faRuntime(t, nil)
	tr := &tx.Tx{RestID: "t"}
	if got := faMatch(t, rt, "remote_host", map[string]any{"fcrdns": true}, tr, -1); got != "UNMET" {
		t.Errorf("without the signal: %s", got)
	}
	faSetSignal(tr, faRemoteHost, `{"status": 0, "fcrdns": true, "ehlo_alignment": false, "remote_hostname": "x.example"}`)
	for _, c := range []struct {
		opts map[string]any
		want string
	}{
		{nil, "MATCH"},
		{map[string]any{"fcrdns": true}, "MATCH"},
		{map[string]any{"fcrdns": false}, "NO_MATCH"},
		{map[string]any{"ehlo_alignment": false}, "MATCH"},
		{map[string]any{"ehlo_alignment": true}, "NO_MATCH"},
		{map[string]any{"fcrdns": true, "ehlo_alignment": true}, "NO_MATCH"},
		{map[string]any{"fcrdns": true, "ehlo_alignment": false}, "MATCH"},
	} {
		if got := faMatch(t, rt, "remote_host", c.opts, tr, -1); got != c.want {
			t.Errorf("%v: %s, want %s", c.opts, got, c.want)
		}
	}
	// Not found: fcrdns false.
	faSetSignal(tr, faRemoteHost, `{"status": 2, "fcrdns": false, "ehlo_alignment": false, "remote_hostname": ""}`)
	if got := faMatch(t, rt, "remote_host", map[string]any{"fcrdns": false}, tr, -1); got != "MATCH" {
		t.Errorf("not found: %s", got)
	}
}

func TestDNSResolutionMatcher(t *testing.T) {
	rt := faRuntime(t, nil)
	tr := &tx.Tx{RestID: "t", MailFrom: &tx.Mailbox{Address: "a@example.com"},
		RcptTo: []tx.Mailbox{{Address: "b@example.com"}, {Address: "c@nx.example"}, {Address: "d@later.example"}}}
	if got := faMatch(t, rt, "dns_resolution", map[string]any{"mail_result": "OK"}, tr, -1); got != "UNMET" {
		t.Errorf("without the signal: %s", got)
	}
	faSetSignal(tr, faDNS, `{"mail_from_result": 0, "rcpt_to_result": [0, 1]}`)
	for _, c := range []struct {
		opts map[string]any
		rcpt int
		want string
	}{
		{map[string]any{"mail_result": "OK"}, -1, "MATCH"},
		{map[string]any{"mail_result": "nx"}, -1, "NO_MATCH"},
		{map[string]any{"rcpt_result": "NX"}, 1, "MATCH"},
		{map[string]any{"rcpt_result": "NX"}, 0, "NO_MATCH"},
		{map[string]any{"rcpt_result": "NX"}, 2, "UNMET"},  // not rated yet
		{map[string]any{"rcpt_result": "NX"}, -1, "UNMET"}, // needs a recipient
		{map[string]any{"resolution_result": "TEMP"}, -1, "UNMET"},
		// All must hold: a known mismatch decides even while another is not known.
		{map[string]any{"mail_result": "TEMP", "resolution_result": "TEMP"}, -1, "NO_MATCH"},
		{map[string]any{"mail_result": "OK", "rcpt_result": "NX"}, 1, "MATCH"},
	} {
		if got := faMatch(t, rt, "dns_resolution", c.opts, tr, c.rcpt); got != c.want {
			t.Errorf("%v rcpt %d: %s, want %s", c.opts, c.rcpt, got, c.want)
		}
	}
	faSetSignal(tr, faDNS, `{"mail_from_result": 0, "rcpt_to_result": [-1, 1], "resolution_result": 2}`)
	for _, c := range []struct {
		opts map[string]any
		rcpt int
		want string
	}{
		{map[string]any{"resolution_result": "TEMP"}, -1, "MATCH"},
		{map[string]any{"resolution_result": "OK"}, -1, "NO_MATCH"},
		{map[string]any{"rcpt_result": "OK"}, 0, "UNMET"}, // answered before dns_resolution
	} {
		if got := faMatch(t, rt, "dns_resolution", c.opts, tr, c.rcpt); got != c.want {
			t.Errorf("%v rcpt %d: %s, want %s", c.opts, c.rcpt, got, c.want)
		}
	}
	m, err := rt.Matcher(new(int), "dns_resolution", faOptions(map[string]any{"mail_result": "MAYBE"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Match(context.Background(), tr, -1); err == nil || !strings.Contains(err.Error(), "must be OK, NX or TEMP") {
		t.Errorf("a bad option: %v", err)
	}
}

func TestMessageValidationMatcher(t *testing.T) {
	rt := faRuntime(t, nil)
	tr := &tx.Tx{RestID: "t"}
	if got := faMatch(t, rt, "message_validation", map[string]any{"validity_threshold": "MEDIUM"}, tr, -1); got != "UNMET" {
		t.Errorf("without the signal: %s", got)
	}
	faSetSignal(tr, faValidation, `{"status": 1, "received_header_count": 3, "err": "from: missing"}`)
	for _, c := range []struct {
		opts map[string]any
		want string
	}{
		{map[string]any{"validity_threshold": "MEDIUM"}, "MATCH"}, // worse than MEDIUM
		{map[string]any{"validity_threshold": "high"}, "MATCH"},
		{map[string]any{"validity_threshold": "BASIC"}, "NO_MATCH"},
		{map[string]any{"validity_threshold": "NONE"}, "NO_MATCH"},
		{map[string]any{"max_received_headers": 2}, "MATCH"},
		{map[string]any{"max_received_headers": 3}, "NO_MATCH"},
		{map[string]any{"validity_threshold": "MEDIUM", "max_received_headers": 3}, "NO_MATCH"},
		{map[string]any{"validity_threshold": "MEDIUM", "max_received_headers": 2}, "MATCH"},
		{nil, "MATCH"},
	} {
		if got := faMatch(t, rt, "message_validation", c.opts, tr, -1); got != c.want {
			t.Errorf("%v: %s, want %s", c.opts, got, c.want)
		}
	}
	// NONE: the count is not known.
	faSetSignal(tr, faValidation, `{"status": 0, "err": "MissingHeaderBodySeparatorDefect"}`)
	if got := faMatch(t, rt, "message_validation", map[string]any{"max_received_headers": 30}, tr, -1); got != "UNMET" {
		t.Errorf("count at NONE: %s", got)
	}
	if got := faMatch(t, rt, "message_validation", map[string]any{"validity_threshold": "BASIC", "max_received_headers": 30}, tr, -1); got != "UNMET" {
		t.Errorf("both at NONE: %s", got)
	}
	if got := faMatch(t, rt, "message_validation", map[string]any{"validity_threshold": "NONE", "max_received_headers": 30}, tr, -1); got != "NO_MATCH" {
		t.Errorf("both at NONE: %s", got)
	}
	// The filter's own output, matched: bad_from.msg is worse than MEDIUM, not than BASIC.
	step := faStep(t, rt, "message_validation", nil)
	tr = &tx.Tx{RestID: "t", MailFrom: &tx.Mailbox{Address: "a@example.com"}, RcptTo: []tx.Mailbox{{Address: "b@example.com"}}}
	faRun(t, tr, faMessage(faTestdata(t, "bad_from.msg")), step)
	if a, b := faMatch(t, rt, "message_validation", map[string]any{"validity_threshold": "MEDIUM"}, tr, -1),
		faMatch(t, rt, "message_validation", map[string]any{"validity_threshold": "BASIC"}, tr, -1); a != "MATCH" || b != "NO_MATCH" {
		t.Errorf("bad_from.msg: %s %s", a, b)
	}
}

// koukan.mime.prepend, which received_header folds its field with, refuses what would break
// the header section.
func TestMimePrepend(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "filters"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := `local opts = ...
local M = {}
function M.data(tx, msg)
  koukan.mime.prepend(msg, opts.name, opts.lines)
end
return M
`
	if err := os.WriteFile(filepath.Join(dir, "filters", "fold.lua"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, err := luabind.New(luabind.Options{Sources: []luabind.Source{{Name: dir, FS: os.DirFS(dir)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for _, c := range []struct {
		name  string
		lines []any
		want  string // the message upstream; "" for a refusal
	}{
		{"X-Trace", []any{"a b", "c;", "d"}, "X-Trace: a b\r\n\tc;\r\n\td\r\nS: x\r\n\r\nx\r\n"},
		{"X-Trace", []any{"a\r\nb"}, ""},
		{"X-Trace", []any{"a", " "}, ""},
		{"X-Trace", []any{strings.Repeat("a", 1000)}, ""},
		{"X Trace", []any{"a"}, ""},
		{"X-Trace", []any{}, ""},
	} {
		s, err := rt.NewStep(&config.Step{Filter: "fold", Options: faOptions(map[string]any{"name": c.name, "lines": c.lines})})
		if err != nil {
			t.Fatal(err)
		}
		tr := &tx.Tx{RestID: "t", MailFrom: &tx.Mailbox{Address: "a@example.com"}, RcptTo: []tx.Mailbox{{Address: "b@example.com"}}}
		up := faRun(t, tr, faMessage([]byte("S: x\r\n\r\nx\r\n")), s)
		switch {
		case c.want == "" && (tr.DataResponse == nil || tr.DataResponse.Code != 451):
			t.Errorf("%q %q: %v", c.name, c.lines, tr.DataResponse)
		case c.want != "" && (len(up.Bodies) != 1 || string(up.Bodies[0]) != c.want):
			t.Errorf("%q %q: %q", c.name, c.lines, up.Bodies)
		}
	}
}
