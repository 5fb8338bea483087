package tests

// The security matrix of the real binary: `koukan serve` with every REST listener behind
// mutual TLS and API keys (minted by `koukan apikey new`), an MX port that must relay for
// nobody, and a submission port that relays only after AUTH over TLS and stops password
// guessing. Each check is a row of the matrix printed in the test log.

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/koukan/koukan/internal/syncbuf"
)

const securityConfig = `
router:
  rest_listener:
    addr: [127.0.0.1, {{.Router}}]
    session_uri: https://127.0.0.1:{{.Router}}
    cert: {{.Dir}}/router.crt
    key: {{.Dir}}/router.key
    client_ca: {{.Dir}}/ca.pem
    api_keys_file: {{.Dir}}/router-keys
  storage:
    url: sqlite:///{{.Dir}}/router.db
  scripts:
    reload: false
  sender:
    - name: submission
      output_chain: submission
      tag:
        - {name: smtp-msa, output_chain: submission_exploder, upstream_tag: smtp-msa-upstream}
        - {name: smtp-msa-upstream}
    - name: ingress
      output_chain: ingress
      tag:
        - {name: smtp-mx, output_chain: ingress_exploder, upstream_tag: smtp-mx-upstream}
        - {name: smtp-mx-upstream}
    - {name: other, output_chain: submission}
  rest_endpoint:
    - &gateway
      name: gateway
      endpoint: https://127.0.0.1:{{.Gateway}}
      sender: router
      tag: outbound
      verify: {{.Dir}}/ca.pem
      api_key_file: {{.Dir}}/router.apikey
      client_cert: {{.Dir}}/router-client.crt
      client_key: {{.Dir}}/router-client.key
    - {<<: *gateway, name: mailbox, tag: mailbox}
  endpoint:
    - name: submission_exploder
      chain:
        - {filter: policy_action, tag: relay, match: {not: {matcher: smtp_auth}}, action: REJECT, code: 530,
           message: 5.7.0 authentication required}
        - {filter: exploder, msa: true}
    - name: submission
      chain:
        - {filter: received_header, received_hostname: smtp.example.com}
        - filter: router
          policy: {name: address_list, domains: [example.com], destination: {endpoint: mailbox, host_list: [{host: 127.0.0.1, port: {{.Mailbox}}}]}}
        - {filter: router, destination: {endpoint: gateway, host_list: [{host: 127.0.0.1, port: {{.Internet}}}]}}
        - {filter: rest_output, rcpt_timeout: 10, data_timeout: 10}
    # The MX port: recipients outside example.com are refused as a relay attempt, unknown
    # ones in it as unknown.
    - name: ingress_exploder
      chain:
        - {filter: policy_action, tag: relay, mode: PER_RCPT, action: REJECT, code: 550, message: 5.7.1 relaying denied,
           match: {not: {matcher: address_list, which_addr: rcpt_to, domains: [example.com]}}}
        - &mailboxes
          filter: router
          dry_run: true
          policy: {name: address_list, domains: [example.com], prefixes: [alice, bob], destination: {endpoint: mailbox, host_list: [{host: 127.0.0.1, port: {{.Mailbox}}}]}}
        - {filter: router, dry_run: true}
        - {filter: exploder, msa: false}
    - name: ingress
      chain:
        - {filter: received_header, received_hostname: mx.example.com}
        - {<<: *mailboxes, dry_run: false}
        - {filter: router}
        - {filter: rest_output, rcpt_timeout: 10, data_timeout: 10}
gateway:
  rest_listener:
    addr: [127.0.0.1, {{.Gateway}}]
    session_uri: https://127.0.0.1:{{.Gateway}}
    cert: {{.Dir}}/gateway.crt
    key: {{.Dir}}/gateway.key
    client_ca: {{.Dir}}/ca.pem
    api_keys_file: {{.Dir}}/gateway-keys
  smtp_output:
    hosts:
      outbound: {ehlo_host: smtp.example.com, timeout: 10}
      mailbox: {ehlo_host: mx.example.com, protocol: lmtp, timeout: 10}
  smtp_listener:
    services:
      - addr: [127.0.0.1, {{.MX}}]
        endpoint: router_ingress
        sender: ingress
        tag: smtp-mx
        hostname: mx.example.com
        max_connections_per_ip: 200
        max_errors: 100
      - addr: [127.0.0.1, {{.Submission}}]
        endpoint: router_submission
        sender: submission
        tag: smtp-msa
        hostname: smtp.example.com
        cert: {{.Dir}}/gateway.crt
        key: {{.Dir}}/gateway.key
        auth_secrets: {{.Dir}}/smtp-users.json
        max_connections_per_ip: 200
        max_auth_failures: 3
        auth_failure_window: 60
        auth_failure_delay: 0.05
  rest_output:
    - &router
      name: router_ingress
      endpoint: https://127.0.0.1:{{.Router}}/senders/ingress/transactions
      verify: {{.Dir}}/ca.pem
      api_key_file: {{.Dir}}/gateway.apikey
      client_cert: {{.Dir}}/gateway-client.crt
      client_key: {{.Dir}}/gateway-client.key
    - {<<: *router, name: router_submission, endpoint: "https://127.0.0.1:{{.Router}}/senders/submission/transactions"}
`

const (
	secUser     = "alice"
	secPassword = "correct horse battery staple"
)

// secured is the running system and what the test holds to talk to it.
type secured struct {
	t                    *testing.T
	dir                  string
	out                  *syncbuf.Buffer // koukan serve's log
	router, gateway      string          // REST base URLs
	mx, sub              int
	internet, mailbox    *smtpPeer
	ca                   *testPKI
	client               *http.Client // presents the "tester" certificate
	appKey, otherKey     string       // untrusted, for senders submission and other
	adminKey, gatewayKey string       // the gateway's is trusted, for ingress and submission
	matrix               [][4]string
}

func TestSecurityMatrix(t *testing.T) {
	s := startSecured(t)
	defer s.printMatrix()
	s.restChecks()
	s.forgedOriginChecks()
	s.mxChecks()
	s.submissionChecks()
	s.keyRotationChecks()
	s.logChecks()
}

func startSecured(t *testing.T) *secured {
	t.Helper()
	dir := t.TempDir()
	s := &secured{t: t, dir: dir, ca: newTestPKI(t, dir)}
	ports := distinctPorts(t, 4)
	s.internet, s.mailbox = startPeer(t, false, nil), startPeer(t, true, nil)
	s.mx, s.sub = ports[2], ports[3]
	s.router, s.gateway = fmt.Sprintf("https://127.0.0.1:%d", ports[0]), fmt.Sprintf("https://127.0.0.1:%d", ports[1])

	for _, name := range []string{"router", "gateway"} {
		s.ca.issue(t, name, "127.0.0.1")
	}
	for _, name := range []string{"router-client", "gateway-client", "tester"} {
		s.ca.issue(t, name, name)
	}
	// The keys, as an operator makes them.
	gwLine := s.mintKey("gateway.apikey", "--sender", "ingress", "--trusted")
	s.gatewayKey = s.readKey("gateway.apikey")
	routerKeys := []string{gwLine, strings.Replace(gwLine, "sender ingress ", "sender submission ", 1),
		s.mintKey("app.apikey", "--sender", "submission"),
		s.mintKey("other.apikey", "--sender", "other"),
		s.mintKey("admin.apikey", "--admin", "ops")}
	s.appKey, s.otherKey, s.adminKey = s.readKey("app.apikey"), s.readKey("other.apikey"), s.readKey("admin.apikey")
	writeFile(t, filepath.Join(dir, "router-keys"), []byte("# who may call the router\n"+strings.Join(routerKeys, "\n")+"\n"))
	writeFile(t, filepath.Join(dir, "gateway-keys"), []byte(s.mintKey("router.apikey", "--sender", "router")+"\n"))
	sum := sha256.Sum256([]byte(secPassword))
	writeFile(t, filepath.Join(dir, "smtp-users.json"), []byte(`{"`+secUser+`": "`+hex.EncodeToString(sum[:])+`"}`))

	var cfg strings.Builder
	template.Must(template.New("").Parse(securityConfig)).Execute(&cfg, map[string]any{
		"Dir": dir, "Router": ports[0], "Gateway": ports[1], "MX": s.mx, "Submission": s.sub,
		"Internet": s.internet.port, "Mailbox": s.mailbox.port})
	writeFile(t, filepath.Join(dir, "serve.yaml"), []byte(cfg.String()))
	if r := runKoukan(t, dir, "check", "serve.yaml"); r.code != 0 {
		t.Fatalf("koukan check serve.yaml: %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	s.client = s.httpClient("tester")
	cmd := exec.Command(koukan, "serve", "--config", "serve.yaml")
	cmd.Dir = dir
	s.out = &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("koukan serve:\n%s", s.out)
		}
	})
	out := s.out
	if !until(func() bool {
		res, err := s.client.Get(s.router + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200 && waitPort(s.sub, time.Millisecond) == nil
	}) {
		t.Fatalf("koukan serve did not start:\n%s", out)
	}
	return s
}

// mintKey runs koukan apikey new, writing the key to file, and returns the keys file line.
func (s *secured) mintKey(file string, args ...string) string {
	s.t.Helper()
	r := runKoukan(s.t, s.dir, append([]string{"apikey", "new", "--key-out", file}, args...)...)
	if r.code != 0 {
		s.t.Fatalf("koukan apikey new %q: %d %s", args, r.code, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

func (s *secured) readKey(file string) string {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, file))
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// row records one check of the matrix; ok false also fails the test.
func (s *secured) row(area, check, want, got string, ok bool) {
	s.t.Helper()
	verdict := "ok"
	if !ok {
		verdict = "FAIL"
		s.t.Errorf("%s: %s: got %s, want %s", area, check, got, want)
	}
	s.matrix = append(s.matrix, [4]string{area, check, want, got + "  " + verdict})
}

func (s *secured) printMatrix() {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "AREA\tCHECK\tWANT\tGOT")
	for _, r := range s.matrix {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r[0], r[1], r[2], r[3])
	}
	w.Flush()
	s.t.Logf("security matrix:\n%s", b.String())
}

// call makes a REST request with the tester's certificate and, if key is set, the key.
func (s *secured) call(client *http.Client, method, url, key, body string) (int, http.Header, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b), nil
}

// status checks one request's status and, for errors, its problem code.
func (s *secured) status(area, check, method, url, key, body string, want int, wantCode string) (http.Header, string) {
	s.t.Helper()
	status, h, got, err := s.call(s.client, method, url, key, body)
	desc := fmt.Sprintf("%d", status)
	if err != nil {
		desc = err.Error()
	} else if wantCode != "" {
		desc += " " + problemCode(got)
	}
	wantDesc := fmt.Sprintf("%d %s", want, wantCode)
	s.row(area, check, strings.TrimSpace(wantDesc), desc, err == nil && status == want && (wantCode == "" || problemCode(got) == wantCode))
	return h, got
}

func problemCode(body string) string {
	if _, rest, ok := strings.Cut(body, `"code":"`); ok {
		code, _, _ := strings.Cut(rest, `"`)
		return code
	}
	return ""
}

func (s *secured) restChecks() {
	const msg = `{"mail_from":{"m":"app@example.com"},"rcpt_to":[{"m":"bob@example.com"}],"body":{"inline":"Subject: app\r\n\r\nfrom the app\r\n"}}`
	submission := s.router + "/senders/submission/transactions"

	// mutual TLS, on both listeners
	for _, base := range []string{s.router, s.gateway} {
		name := "router"
		if base == s.gateway {
			name = "gateway"
		}
		_, _, _, err := s.call(s.httpClient(""), "GET", base+"/healthz", "", "")
		s.row("mTLS", name+": no client certificate", "handshake refused", errText(err), err != nil)
		_, _, _, err = s.call(s.strangerClient(), "GET", base+"/healthz", "", "")
		s.row("mTLS", name+": certificate of another CA", "handshake refused", errText(err), err != nil)
		tls11 := s.httpClient("tester")
		tls11.Transport.(*http.Transport).TLSClientConfig.MaxVersion = tls.VersionTLS11
		_, _, _, err = s.call(tls11, "GET", base+"/healthz", "", "")
		s.row("TLS", name+": TLS 1.1 client", "handshake refused", errText(err), err != nil)
		s.status("REST", name+": /healthz without a key", "GET", base+"/healthz", "", "", 200, "")
		s.status("REST", name+": POST without a key", "POST", base+"/senders/router/transactions", "", `{}`, 401, "unauthorized")
	}
	s.status("REST", "gateway: the app's key", "POST", s.gateway+"/senders/router/transactions", s.appKey, `{}`, 401, "unauthorized")

	h, _ := s.status("REST", "POST without a key", "POST", submission, "", msg, 401, "unauthorized")
	s.row("REST", "401 challenge", `Bearer realm="koukan"`, h.Get("WWW-Authenticate"), strings.HasPrefix(h.Get("WWW-Authenticate"), `Bearer realm="koukan"`))
	s.status("REST", "POST with a wrong key", "POST", submission, s.appKey+"x", msg, 401, "unauthorized")
	s.status("REST", "POST to another sender", "POST", s.router+"/senders/other/transactions", s.appKey, msg, 403, "forbidden")
	h, _ = s.status("REST", "POST with the sender's key", "POST", submission, s.appKey, msg, 201, "")
	loc := h.Get("Location")
	s.status("REST", "GET its own transaction", "GET", loc, s.appKey, "", 200, "")
	s.status("REST", "GET with another sender's key", "GET", loc, s.otherKey, "", 404, "unknown_transaction")
	s.status("REST", "cancel with another sender's key", "POST", loc+"/cancel", s.otherKey, "", 404, "unknown_transaction")
	s.status("REST", "PUT body with another sender's key", "PUT", loc+"/body", s.otherKey, "", 404, "unknown_transaction")
	s.status("REST", "GET an unknown transaction", "GET", s.router+"/transactions/nonexistent", s.appKey, "", 404, "unknown_transaction")
	s.status("REST", "GET with the admin key", "GET", loc, s.adminKey, "", 200, "")
	for _, path := range []string{"/metrics", "/admin/scripts"} {
		s.status("REST", path+" without a key", "GET", s.router+path, "", "", 401, "unauthorized")
		s.status("REST", path+" with a sender's key", "GET", s.router+path, s.appKey, "", 403, "forbidden")
		s.status("REST", path+" with the admin key", "GET", s.router+path, s.adminKey, "", 200, "")
	}
	s.status("REST", "gateway /metrics with the app's key", "GET", s.gateway+"/metrics", s.appKey, "", 401, "unauthorized")
	// The router's own clients present their keys and certificates: the message reached
	// the mailbox through the gateway.
	ok := until(func() bool { return len(s.mailbox.deliveries("bob@example.com")) == 1 })
	s.row("REST", "router to gateway with key and certificate", "delivered", fmt.Sprint(len(s.mailbox.deliveries("bob@example.com"))), ok)
}

// keyRotationChecks: the router's api_keys_file edited while it runs is in force at once,
// without a restart: a key added works, a key removed is refused.
func (s *secured) keyRotationChecks() {
	file := filepath.Join(s.dir, "router-keys")
	old, err := os.ReadFile(file)
	if err != nil {
		s.t.Fatal(err)
	}
	line := s.mintKey("rotated.apikey", "--sender", "other")
	rotated := s.readKey("rotated.apikey")
	var kept []string
	for l := range strings.Lines(string(old)) {
		if !strings.HasPrefix(l, "sender other ") {
			kept = append(kept, l)
		}
	}
	// As an editor saves: a new file renamed over the old.
	writeFile(s.t, file+".new", []byte(strings.Join(kept, "")+line+"\n"))
	if err := os.Rename(file+".new", file); err != nil {
		s.t.Fatal(err)
	}
	statusOf := func(key string) int {
		status, _, _, _ := s.call(s.client, "GET", s.router+"/transactions/nonexistent", key, "")
		return status
	}
	until(func() bool { return statusOf(rotated) == 404 && statusOf(s.otherKey) == 401 })
	s.status("keys", "a key added to the file while running", "GET", s.router+"/transactions/nonexistent", rotated, "", 404, "unknown_transaction")
	s.status("keys", "a key removed from the file while running", "GET", s.router+"/transactions/nonexistent", s.otherKey, "", 401, "unauthorized")
}

// forgedOriginChecks: remote_host and smtp_meta from an untrusted caller are dropped, so
// the Received field (and SPF, and smtp_auth) cannot be fooled; the gateway's trusted key
// may state them.
func (s *secured) forgedOriginChecks() {
	forged := func(subject string) string {
		return `{"remote_host":["203.0.113.9",41000],"smtp_meta":{"ehlo_host":"forged.example","esmtp":true,"tls":true,"auth":true},` +
			`"mail_from":{"m":"app@example.com"},"rcpt_to":[{"m":"alice@example.com"}],"body":{"inline":"Subject: ` + subject + `\r\n\r\nx\r\n"}}`
	}
	h, _ := s.status("origin", "untrusted key states smtp_meta", "POST", s.router+"/senders/submission/transactions", s.appKey, forged("untrusted"), 201, "")
	_, _, body, _ := s.call(s.client, "GET", h.Get("Location"), s.appKey, "")
	s.row("origin", "untrusted remote_host kept?", "dropped", cond(strings.Contains(body, "203.0.113.9"), "kept", "dropped"), !strings.Contains(body, "203.0.113.9"))
	s.status("origin", "trusted key states smtp_meta", "POST", s.router+"/senders/submission/transactions", s.gatewayKey, forged("trusted"), 201, "")
	received := map[string]string{}
	until(func() bool {
		for _, d := range s.mailbox.deliveries("alice@example.com") {
			received[header(d.Data, "Subject")] = header(d.Data, "Received")
		}
		return received["untrusted"] != "" && received["trusted"] != ""
	})
	u, tr := received["untrusted"], received["trusted"]
	s.row("origin", "Received of the untrusted one", "no forged host, not ESMTPSA", u,
		u != "" && !strings.Contains(u, "forged.example") && !strings.Contains(u, "203.0.113.9") && !strings.Contains(u, "ESMTPSA"))
	s.row("origin", "Received of the trusted one", "forged.example [203.0.113.9] ESMTPSA", tr,
		strings.Contains(tr, "forged.example") && strings.Contains(tr, "203.0.113.9") && strings.Contains(tr, "ESMTPSA"))
}

// mxChecks: the MX port takes mail for its own mailboxes and relays for nobody, however the
// address is dressed up.
func (s *secured) mxChecks() {
	if got := s.rcpt(s.mx, "alice@example.com"); strings.HasPrefix(got, "250") {
		replies, err := smtpDialog(s.mx, "EHLO client.test", "MAIL FROM:<someone@remote.test>", "RCPT TO:<alice@example.com>", "DATA",
			"Subject: by mx\r\n\r\nhello\r\n", "QUIT")
		ok := err == nil && len(replies) > 5 && strings.HasPrefix(replies[5], "250")
		s.row("MX", "local mailbox alice@example.com", "250 and delivered", got, ok && until(func() bool {
			for _, d := range s.mailbox.deliveries("alice@example.com") {
				if header(d.Data, "Subject") == "by mx" {
					return true
				}
			}
			return false
		}))
	} else {
		s.row("MX", "local mailbox alice@example.com", "250", got, false)
	}
	s.mxRefused("foreign domain", "carol@remote.test", "550 5.7.1")
	s.mxRefused("unknown local mailbox", "nobody@example.com", "550 5.1.1")
	for _, c := range []struct{ name, addr string }{
		{"percent hack", "carol%remote.test@example.com"},
		{"percent hack, known prefix", "alice%remote.test@example.com"},
		{"source route", "@example.com:carol@remote.test"},
		{"source route, two hops", "@mx.example.com,@example.com:carol@remote.test"},
		{"quoted local part with @", `"carol@remote.test"@example.com`},
		{"quoted local part, known", `"alice@remote.test"@example.com`},
		{"bang path", "remote.test!carol@example.com"},
		{"bang path, known prefix", "remote.test!alice@example.com"},
		{"two @", "carol@remote.test@example.com"},
		{"trailing dot", "carol@remote.test."},
		{"trailing dot on our domain", "alice@example.com."},
		{"IP literal", "carol@[192.0.2.1]"},
		{"loopback IP literal", "carol@[127.0.0.1]"},
		{"IPv6 literal", "carol@[IPv6:2001:db8::1]"},
		{"upper case foreign", "CAROL@REMOTE.TEST"},
		{"our domain as a subdomain", "carol@example.com.remote.test"},
		{"a subdomain of ours", "carol@sub.example.com"},
	} {
		s.mxRefused(c.name, c.addr, "5")
	}
	// None of the above, nor anything else from the MX port, reached the internet.
	s.row("MX", "messages relayed to the internet", "0", fmt.Sprint(len(s.internet.deliveries(""))), len(s.internet.deliveries("")) == 0)
}

// mxRefused checks that RCPT TO:<addr> on the MX port is refused with a reply starting with
// want.
func (s *secured) mxRefused(name, addr, want string) {
	s.t.Helper()
	got := s.rcpt(s.mx, addr)
	s.row("MX", name+" <"+addr+">", want+"…", got, strings.HasPrefix(got, want))
}

// rcpt is the reply to RCPT TO:<addr> from a client that is not authenticated.
func (s *secured) rcpt(port int, addr string) string {
	replies, err := smtpDialog(port, "EHLO client.test", "MAIL FROM:<someone@remote.test>", "RCPT TO:<"+addr+">", "QUIT")
	if err != nil || len(replies) < 4 {
		return fmt.Sprintf("%q %v", replies, err)
	}
	return replies[3]
}

// submissionChecks: relaying needs AUTH, AUTH needs TLS, guessing is stopped.
func (s *secured) submissionChecks() {
	// Plain text: no AUTH offered, AUTH refused, relaying refused.
	r := s.dialSMTP(s.sub)
	caps := r.cmd("EHLO client.test")
	s.row("submission", "AUTH offered before STARTTLS", "no", cond(strings.Contains(caps, "AUTH"), "yes", "no"), !strings.Contains(caps, "AUTH") && strings.Contains(caps, "STARTTLS"))
	got := r.cmd("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+secUser+"\x00"+secPassword)))
	s.row("submission", "AUTH before STARTTLS", "523 5.7.10", got, strings.HasPrefix(got, "523 5.7.10"))
	r.close()
	replies, err := smtpDialog(s.sub, "EHLO client.test", "MAIL FROM:<alice@example.com>", "QUIT")
	got = fmt.Sprint(replies, err)
	if len(replies) > 2 {
		got = replies[2]
	}
	s.row("submission", "relay before AUTH, plain text", "530 5.7.0", got, strings.HasPrefix(got, "530 5.7.0"))

	// Over TLS without AUTH: refused.
	c := s.smtpTLS()
	err = c.Mail("alice@example.com", nil)
	s.row("submission", "relay before AUTH, over TLS", "530 5.7.0", errText(err), err != nil && strings.Contains(err.Error(), "530"))
	c.Close()

	// Over TLS with AUTH: relayed, and the internet sees it.
	c = s.smtpTLS()
	if err := c.Auth(sasl.NewPlainClient("", secUser, secPassword)); err != nil {
		s.row("submission", "AUTH over TLS", "235", errText(err), false)
	} else {
		err = sendMail(c, "alice@example.com", "carol@remote.test", "Subject: relayed\r\n\r\nafter AUTH\r\n")
		ok := err == nil && until(func() bool { return len(s.internet.deliveries("carol@remote.test")) == 1 })
		s.row("submission", "relay after AUTH over TLS", "250 and delivered", errText(err), ok)
	}
	c.Close()

	// Guessing: 535 with growing waits, then 454 4.7.0 and the connection closed, even for
	// the right password, on a new connection too.
	c = s.smtpTLS()
	var waits []string
	var last time.Duration
	growing := true
	for i := range 3 {
		started := time.Now()
		err := c.Auth(sasl.NewPlainClient("", secUser, fmt.Sprintf("guess %d", i)))
		took := time.Since(started)
		growing = growing && took >= last && took >= 50*time.Millisecond<<i
		last = took
		waits = append(waits, fmt.Sprintf("%s after %v", errCode(err), took.Round(10*time.Millisecond)))
	}
	s.row("submission", "3 wrong passwords", "535 each, waits growing from 50 ms", strings.Join(waits, ", "), growing && strings.Count(strings.Join(waits, ","), "535") == 3)
	err = c.Auth(sasl.NewPlainClient("", secUser, secPassword))
	s.row("submission", "4th attempt, right password", "454 4.7.0", errCode(err), err != nil && strings.HasPrefix(errCode(err), "454 4.7.0"))
	noop := c.Noop()
	s.row("submission", "connection after the 454", "closed", cond(noop == nil, "open", "closed"), noop != nil)
	c.Close()
	c = s.smtpTLS()
	err = c.Auth(sasl.NewPlainClient("", secUser, secPassword))
	s.row("submission", "new connection, right password", "454 4.7.0", errCode(err), err != nil && strings.HasPrefix(errCode(err), "454 4.7.0"))
	c.Close()
}

// logChecks: the throttle is logged with the address; no key or password is.
func (s *secured) logChecks() {
	logs := s.out.String()
	s.row("log", "throttle logged with the IP", "ip=127.0.0.1", cond(strings.Contains(logs, "too many failed AUTH attempts"), "logged", "missing"),
		strings.Contains(logs, "too many failed AUTH attempts") && strings.Contains(logs, "ip=127.0.0.1"))
	leaked := ""
	for _, secret := range []string{s.appKey, s.otherKey, s.adminKey, s.gatewayKey, s.readKey("router.apikey"), s.readKey("rotated.apikey"), secPassword, "guess 0"} {
		if strings.Contains(logs, secret) {
			leaked += secret[:8] + "… "
		}
	}
	s.row("log", "keys or passwords in the log", "none", cond(leaked == "", "none", leaked), leaked == "")
}

func cond(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func errText(err error) string {
	if err == nil {
		return "no error"
	}
	s := err.Error()
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return s
}

func errCode(err error) string {
	if se, ok := err.(*smtp.SMTPError); ok {
		return fmt.Sprintf("%d %d.%d.%d", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	}
	return errText(err)
}

// smtpTLS is an SMTP client of the submission port after EHLO and STARTTLS.
func (s *secured) smtpTLS() *smtp.Client {
	s.t.Helper()
	c, err := smtp.DialStartTLS(fmt.Sprintf("127.0.0.1:%d", s.sub), &tls.Config{RootCAs: s.ca.pool(), ServerName: "127.0.0.1"})
	if err != nil {
		s.t.Fatal(err)
	}
	if err := c.Hello("client.test"); err != nil {
		s.t.Fatal(err)
	}
	return c
}

func sendMail(c *smtp.Client, from, to, msg string) error {
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	if err := c.Rcpt(to, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	return w.Close()
}

// rawSMTP is a line-level SMTP conversation, for what a library client would not send.
type rawSMTP struct {
	t *testing.T
	c net.Conn
	r *textproto.Reader
}

func (s *secured) dialSMTP(port int) *rawSMTP {
	s.t.Helper()
	c, err := dialTCP(port)
	if err != nil {
		s.t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := &rawSMTP{s.t, c, textproto.NewReader(bufio.NewReader(c))}
	r.read()
	return r
}

// cmd sends a line and returns the whole reply, its lines joined by newlines.
func (r *rawSMTP) cmd(line string) string {
	fmt.Fprintf(r.c, "%s\r\n", line)
	return r.read()
}

func (r *rawSMTP) read() string {
	code, msg, err := r.r.ReadResponse(0)
	if err != nil && code == 0 {
		return err.Error()
	}
	lines := strings.Split(msg, "\n")
	for i := range lines {
		lines[i] = fmt.Sprintf("%d %s", code, lines[i])
	}
	return strings.Join(lines, "\n")
}

func (r *rawSMTP) close() { r.c.Close() }

// httpClient presents the certificate issued to name ("" for none) and trusts the test CA.
func (s *secured) httpClient(name string) *http.Client {
	conf := &tls.Config{RootCAs: s.ca.pool()}
	if name != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(s.dir, name+".crt"), filepath.Join(s.dir, name+".key"))
		if err != nil {
			s.t.Fatal(err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: conf}, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// strangerClient presents a certificate of a CA the servers do not trust.
func (s *secured) strangerClient() *http.Client {
	dir := s.t.TempDir()
	other := newTestPKI(s.t, dir)
	other.issue(s.t, "tester", "tester")
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "tester.crt"), filepath.Join(dir, "tester.key"))
	if err != nil {
		s.t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.ca.pool(), Certificates: []tls.Certificate{cert}}},
		Timeout: 30 * time.Second}
}

// testPKI is a certificate authority of the test's own, in dir/ca.pem, that issues
// certificates good for both ends of a TLS connection.
type testPKI struct {
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestPKI(t *testing.T, dir string) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "koukan test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	writeFile(t, filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return &testPKI{dir, cert, key}
}

func (p *testPKI) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.cert)
	return pool
}

// issue writes file.crt and file.key for cn, with an IP address SAN when cn is one.
func (p *testPKI) issue(t *testing.T, file, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	if ip := net.ParseIP(cn); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	writeFile(t, filepath.Join(p.dir, file+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, filepath.Join(p.dir, file+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}
