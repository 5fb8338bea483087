package tests

// The end-to-end suite of the real binary: `koukan serve --config` with an all-in-one config
// written per test (free loopback ports, retries in seconds), between
//   - "the internet": an in-test SMTP server whose replies each test scripts per recipient
//     and attempt, reached by MX records from a fake DNS server (dnstest);
//   - the local mail store: an in-test LMTP server, behind a dead port the gateway skips;
//   - an application: a REST receiver (resttest) that asks for parsed messages;
// and clients: swaks on the MX and submission ports (STARTTLS and AUTH), REST, koukan send.
// Every scenario runs on SQLite, and on PostgreSQL when KOUKAN_TEST_POSTGRES_URL is set.

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	"github.com/koukan/koukan/engine/dns/dnstest"
	"github.com/koukan/koukan/engine/rest/resttest"
	"github.com/koukan/koukan/engine/store/storetest"
)

// e2eConfig is the all-in-one config: example.com is our domain (alice and bob have
// mailboxes in the LMTP store), bob@rest-application.example.com is an application, and
// every other domain is the internet, reached by MX on the internet server's port.
const e2eConfig = `
router:
  global:
    mailer_daemon_mailbox: mailer-daemon@example.com
  rest_listener:
    addr: [127.0.0.1, {{.Router}}]
    session_uri: http://127.0.0.1:{{.Router}}
  storage:
    url: "{{.Storage}}"
  scripts:
    reload: false
  dns:
    servers: ["{{.DNS}}"]
    timeout: 1
  sender:
    - name: submission
      output_chain: submission
      retry: output_chain
      notification: output_chain
      tag:
        - name: smtp-msa
          output_chain: submission_exploder
          upstream_tag: smtp-msa-upstream
          retry: null
          notification: null
        - name: smtp-msa-upstream
          retry: null
          notification: null
        - name: notification
          notification: null
    - name: ingress
      output_chain: ingress
      tag:
        - name: smtp-mx
          output_chain: ingress_exploder
          upstream_tag: smtp-mx-upstream
        - name: smtp-mx-upstream
        # Our own mail for our own domains, from the submission chain (DSNs included).
        - name: short_circuit
          output_chain: {{if .DirectShortCircuit}}local{{else}}local_exploder{{end}}
          upstream_tag: short_circuit_upstream
        - name: short_circuit_upstream
          output_chain: local
  rest_endpoint:
    - {name: gateway, endpoint: "http://127.0.0.1:{{.Gateway}}", sender: router, tag: outbound}
    - {name: mailbox, endpoint: "http://127.0.0.1:{{.Gateway}}", sender: router, tag: mailbox}
    - {name: app, endpoint: "{{.App}}", sender: koukan, options: {receive_parsing: {max_inline: 8}, send_filter_output: true}}
    - {name: short_circuit, endpoint: "http://127.0.0.1:{{.Router}}/senders/ingress/transactions", sender: ingress, tag: short_circuit}
  endpoint:
    - name: submission_exploder
      chain:
        - &valid_mail_from
          {filter: policy_action, tag: valid_envelope, name: valid_mail_from, match: {matcher: invalid_mail_from},
           action: REJECT, code: 501, message: 5.1.3 Bad mailbox address syntax}
        - &valid_rcpt_to
          {filter: policy_action, tag: valid_envelope, name: valid_rcpt_to, mode: PER_RCPT, match: {matcher: invalid_rcpt_to},
           action: REJECT, code: 501, message: 5.1.3 Bad mailbox address syntax}
        - {filter: policy_action, tag: relay, match: {not: {matcher: smtp_auth}}, action: REJECT, code: 530,
           message: 5.7.0 authentication required}
        - {filter: exploder, msa: true}
    - name: submission
      output_handler:
        retry_params: {max_attempts: 4, min_attempt_time: 1, max_attempt_time: 2, backoff_factor: 1}
        notification: {sender: submission, tag: notification}
      chain:
        - *valid_mail_from
        - *valid_rcpt_to
        - {filter: message_validation}
        - &reject_invalid
          {filter: policy_action, tag: message_validation, match: {matcher: message_validation, validity_threshold: MEDIUM},
           action: REJECT, code: 550, message: 5.6.0 message rejected message_validation}
        - {filter: received_header, received_hostname: smtp.example.com}
        - filter: router
          policy: {name: address_list, domains: [example.com, rest-application.example.com], destination: {endpoint: short_circuit}}
        - filter: router
          policy: {name: dest_domain, dest_port: {{.Internet}}, destination: {endpoint: gateway}}
        - {filter: router}
        - {filter: dkim_sign, domain: example.com, selector: e2e, key: "{{.DKIMKey}}"}
        - {filter: dns_resolution}
        - {filter: policy_action, tag: dns, name: dns_nx, match: {matcher: dns_resolution, resolution_result: NX},
           action: REJECT, code: 550, message: 5.1.2 the recipient's domain does not exist}
        - {filter: policy_action, tag: dns, name: dns_temp, match: {matcher: dns_resolution, resolution_result: TEMP},
           action: REJECT, code: 451, message: 4.4.3 the recipient's domain cannot be resolved now}
        - {filter: rest_output, rcpt_timeout: 10, data_timeout: 10}
    - name: ingress_exploder
      chain:
{{- if .EHLOCheck}}
        - {filter: remote_host}
        - {filter: policy_action, tag: ehlo, match: {matcher: remote_host, ehlo_alignment: false},
           action: REJECT, code: 550, message: 5.7.1 your EHLO name does not match your address}
{{- end}}
        - *valid_mail_from
        - *valid_rcpt_to
        - {filter: policy_action, tag: max_rcpts, mode: PER_RCPT, match: {matcher: num_rcpts, max_rcpts: 1},
           action: REJECT, code: 451, message: 4.5.3 too many recipients}
        - &route_mailboxes
          filter: router
          dry_run: true
          policy:
            name: address_list
            domains: [example.com]
            prefixes: [alice, bob]
            delimiter: "+"
            destination:
              endpoint: mailbox
              host_list: [{host: 127.0.0.1, port: {{.Dead}}}, {host: 127.0.0.1, port: {{.Mailbox}}}]
        - &route_apps
          filter: router
          dry_run: true
          policy:
            name: address_list
            domains: [rest-application.example.com]
            prefixes: [bob]
            delimiter: "+"
            destination: {endpoint: app}
        - {filter: router, dry_run: true}
        - {filter: exploder, msa: false}
    - name: ingress
      chain:
        - {filter: received_header, received_hostname: mx.example.com}
        - {filter: message_validation}
        - *reject_invalid
        - {<<: *route_mailboxes, dry_run: false}
        - {<<: *route_apps, dry_run: false}
        - {filter: router}
        - {filter: rest_output, rcpt_timeout: 10, data_timeout: 10}
    - name: local_exploder
      chain:
        - {filter: exploder, msa: false}
    - name: local
      chain:
        - {<<: *route_mailboxes, dry_run: false}
        - {<<: *route_apps, dry_run: false}
        - {filter: router}
        - {filter: rest_output, rcpt_timeout: 10, data_timeout: 10}
gateway:
  rest_listener:
    addr: [127.0.0.1, {{.Gateway}}]
    session_uri: http://127.0.0.1:{{.Gateway}}
  smtp_output:
    hosts:
      outbound: {ehlo_host: mx.example.com, timeout: 10}
      mailbox: {ehlo_host: mx.example.com, protocol: lmtp, timeout: 10}
  smtp_listener:
    services:
      - addr: [127.0.0.1, {{.MX}}]
        endpoint: router_ingress
        sender: ingress
        tag: smtp-mx
        hostname: mx.example.com
        max_connections_per_ip: 200
      - addr: [127.0.0.1, {{.Submission}}]
        endpoint: router_submission
        sender: submission
        tag: smtp-msa
        hostname: smtp.example.com
        cert: "{{.Cert}}"
        key: "{{.Key}}"
        auth_secrets: "{{.Secrets}}"
        max_connections_per_ip: 200
  rest_output:
    - {name: router_ingress, endpoint: "http://127.0.0.1:{{.Router}}/senders/ingress/transactions"}
    - {name: router_submission, endpoint: "http://127.0.0.1:{{.Router}}/senders/submission/transactions"}
`

// The submission port's user.
const (
	e2eUser     = "alice"
	e2ePassword = "correct horse battery staple"
)

// e2e is one running system: koukan serve and its peers.
type e2e struct {
	t        *testing.T
	dir      string
	backend  string // "sqlite" or "postgres"
	srv      *server
	api      string // the router's REST API
	mx, sub  int    // SMTP ports: MX and submission (STARTTLS + AUTH)
	internet *smtpPeer
	mailbox  *smtpPeer // LMTP
	app      *resttest.Receiver
	zone     *dnstest.Server

	logsOnce sync.Once
	logs     string
	logged   bool // the output is in a failure message already
}

// e2eOptions script the peers.
type e2eOptions struct {
	internet, mailbox peerReply
	// directShortCircuit routes our own mail from the submission chain straight into the
	// one-recipient ingress chain "local", as config/examples/serve.yaml does, instead of
	// through an exploder (TestE2EShortCircuitToOneRecipientSender).
	directShortCircuit bool
	// ehloCheck rejects MX clients whose EHLO name is not their address's reverse name
	// (§11.1 policy_reject_mail); 127.0.0.1's is localhost.
	ehloCheck bool
}

// startE2E writes the config for storage (a storage URL) and starts koukan serve on it.
func startE2E(t *testing.T, storage string, o e2eOptions) *e2e {
	t.Helper()
	e := &e2e{t: t, dir: t.TempDir(), backend: "sqlite"}
	if strings.HasPrefix(storage, "postgres") {
		e.backend = "postgres"
	}
	e.internet = startPeer(t, false, o.internet)
	e.mailbox = startPeer(t, true, o.mailbox)
	e.app = resttest.NewReceiver(resttest.Options{Parsing: true})
	t.Cleanup(e.app.Close)

	keyFile, dkimTXT := dkimKey(t, e.dir)
	cert, key := selfSigned(t, e.dir, "smtp.example.com")
	hash, err := bcrypt.GenerateFromPassword([]byte(e2ePassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	secrets, _ := json.Marshal(map[string]string{e2eUser: string(hash)})
	writeFile(t, filepath.Join(e.dir, "users.json"), secrets)

	e.zone = dnstest.Start(t, dnstest.Zone{
		"remote.test":                    {MX: []dnstest.MX{{Pref: 10, Host: "mx.remote.test"}}},
		"mx.remote.test":                 {A: []string{"127.0.0.1"}},
		"bounce.test":                    {MX: []dnstest.MX{{Pref: 10, Host: "mx.bounce.test"}}},
		"mx.bounce.test":                 {A: []string{"127.0.0.1"}},
		"e2e._domainkey.example.com":     {TXT: []string{dkimTXT}},
		dnstest.ReverseName("127.0.0.1"): {PTR: []string{"localhost."}},
	})

	free := distinctPorts(t, 5)
	ports := map[string]any{
		"Router": free[0], "Gateway": free[1], "MX": free[2], "Submission": free[3],
		"Dead": free[4], "Internet": e.internet.port, "Mailbox": e.mailbox.port,
		"App": e.app.URL(), "DNS": e.zone.Addr, "Storage": storage, "DKIMKey": keyFile,
		"Cert": cert, "Key": key, "Secrets": filepath.Join(e.dir, "users.json"),
		"DirectShortCircuit": o.directShortCircuit, "EHLOCheck": o.ehloCheck,
	}
	var cfg bytes.Buffer
	if err := template.Must(template.New("serve").Parse(e2eConfig)).Execute(&cfg, ports); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(e.dir, "serve.yaml"), cfg.Bytes())
	if r := runKoukan(t, e.dir, "check", "serve.yaml"); r.code != 0 {
		t.Fatalf("koukan check serve.yaml: exit %d\n%s%s\n%s", r.code, r.stdout, r.stderr, cfg.String())
	}

	e.api = fmt.Sprintf("http://127.0.0.1:%d", ports["Router"])
	e.mx, e.sub = ports["MX"].(int), ports["Submission"].(int)
	e.srv = startServer(t, e.dir, e.api+"/openapi.json", "serve", "--config", "serve.yaml")
	// On any failure, the serve process's output goes with the test's.
	t.Cleanup(func() {
		if t.Failed() && !e.logged {
			t.Logf("koukan serve output:\n%s", e.output())
		}
	})
	for _, p := range []int{e.mx, e.sub, ports["Gateway"].(int)} {
		if err := waitPort(p, 10*time.Second); err != nil {
			e.fatalf("%v", err)
		}
	}
	return e
}

// output stops koukan serve (once) and returns everything it printed. Reading the output
// of a running process would race with the goroutine copying it.
func (e *e2e) output() string {
	e.logsOnce.Do(func() {
		if e.srv.cmd.ProcessState == nil {
			e.srv.stop(e.t)
		}
		e.logs = e.srv.out.String()
	})
	return e.logs
}

// fatalf fails the test with the serve process's output.
func (e *e2e) fatalf(format string, args ...any) {
	e.t.Helper()
	e.logged = true
	e.t.Fatalf(format+"\n--- koukan serve output:\n%s", append(args, e.output())...)
}

// stop ends koukan serve with SIGTERM and checks that it exits cleanly.
func (e *e2e) stop() {
	e.t.Helper()
	if e.srv.cmd.ProcessState != nil {
		return
	}
	code := e.srv.stop(e.t)
	if code != 0 {
		e.t.Errorf("koukan serve exited %d after SIGTERM", code)
	}
	if out := e.output(); !strings.Contains(out, "storage="+e.backend) {
		e.t.Errorf("koukan serve did not run on %s", e.backend)
	}
}

// eachBackend runs a scenario on SQLite and on PostgreSQL (storetest.PostgresDSN: a schema of
// its own per test, dropped after it; skipped without KOUKAN_TEST_POSTGRES_URL).
func eachBackend(t *testing.T, scenario func(t *testing.T, storage string)) {
	t.Run("sqlite", func(t *testing.T) { scenario(t, "sqlite:///router.db") })
	t.Run("postgres", func(t *testing.T) { scenario(t, storetest.PostgresDSN(t)) })
}

// mxSwaks talks to the MX port.
func (e *e2e) mxSwaks(args ...string) string {
	e.t.Helper()
	return swaks(e.t, e.mx, args...)
}

// subSwaks talks to the submission port: STARTTLS, then AUTH PLAIN as alice.
func (e *e2e) subSwaks(args ...string) string {
	e.t.Helper()
	return swaks(e.t, e.sub, append([]string{"--tls", "--auth", "PLAIN", "--auth-user", e2eUser, "--auth-password", e2ePassword}, args...)...)
}

// waitDeliveries waits until peer has accepted n messages for rcpt, and returns them.
func (e *e2e) waitDeliveries(p *smtpPeer, rcpt string, n int) []peerTx {
	e.t.Helper()
	var got []peerTx
	if !until(func() bool { got = p.deliveries(rcpt); return len(got) >= n }) {
		e.fatalf("%d messages for %s, want %d; the server saw %+v", len(got), rcpt, n, p.transactions())
	}
	return got
}

// waitDSN waits for a delivery status notification to rcpt in the mail store and returns it.
func (e *e2e) waitDSN(rcpt string) peerTx {
	e.t.Helper()
	var dsns []peerTx
	if !until(func() bool { dsns = dsnsFor(e.mailbox, rcpt); return len(dsns) > 0 }) {
		e.fatalf("no DSN for %s; the mail store saw %+v", rcpt, e.mailbox.transactions())
	}
	return dsns[0]
}

func dsnsFor(p *smtpPeer, rcpt string) []peerTx {
	var out []peerTx
	for _, d := range p.deliveries(rcpt) {
		if strings.Contains(header(d.Data, "Content-Type"), "multipart/report") {
			out = append(out, d)
		}
	}
	return out
}

// post creates a transaction through the REST API and returns its URL.
func (e *e2e) post(sender, body string) string {
	e.t.Helper()
	res, got := request(e.t, "POST", e.api+"/senders/"+sender+"/transactions", body, "Content-Type", "application/json")
	if res.StatusCode != 201 {
		e.fatalf("POST: %d %s", res.StatusCode, got)
	}
	return res.Header.Get("Location")
}

// restTx is what the tests read of a transaction.
type restTx struct {
	AttemptCount int `json:"attempt_count"`
	MailResponse *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"mail_response"`
	RcptResponse []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"rcpt_response"`
	DataResponse *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"data_response"`
	FinalAttemptReason string `json:"final_attempt_reason"`
}

// waitFinal follows a transaction (hanging GETs) until it has a final_attempt_reason.
func (e *e2e) waitFinal(url string) (restTx, string) {
	e.t.Helper()
	etag := ""
	var raw string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		req, _ := http.NewRequest("GET", url, nil)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
			req.Header.Set("Request-Timeout", "2")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			e.fatalf("GET %s: %v", url, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusNotModified {
			continue
		}
		if res.StatusCode != 200 {
			e.fatalf("GET %s: %d %s", url, res.StatusCode, b)
		}
		etag, raw = res.Header.Get("ETag"), string(b)
		var got restTx
		if err := json.Unmarshal(b, &got); err != nil {
			e.fatalf("GET %s: %v: %s", url, err, b)
		}
		if got.FinalAttemptReason != "" {
			return got, raw
		}
	}
	e.fatalf("%s is not final after 15 s: %s", url, raw)
	return restTx{}, ""
}

// replyTo is the server's (last line of) reply to the command that starts with cmd, e.g.
// "RCPT TO:<bob@example.com>", "DATA" or "." (the end of the message).
func replyTo(transcript, cmd string) string {
	lines := strings.Split(transcript, "\n")
	for i, line := range lines {
		c, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), " -> ")
		if !ok {
			c, ok = strings.CutPrefix(strings.TrimRight(line, "\r"), " ~> ") // over TLS
		}
		if !ok || !strings.HasPrefix(c, cmd) {
			continue
		}
		reply := ""
		for _, l := range lines[i+1:] {
			l = strings.TrimRight(l, "\r")
			r, ok := "", false
			for _, p := range []string{"<-  ", "<** ", "<~  ", "<~* "} {
				if r, ok = strings.CutPrefix(l, p); ok {
					break
				}
			}
			if !ok {
				if reply != "" {
					return reply
				}
				continue
			}
			reply = r
			if len(r) < 4 || r[3] != '-' {
				return reply
			}
		}
		return reply
	}
	return ""
}

// sent reports whether a swaks transcript (plain or TLS) ends with the message accepted.
func sent(transcript string) bool {
	return strings.HasPrefix(replyTo(transcript, "."), "250 ")
}

// §11.1 smoke: two recipients on the MX port, one of a domain we do not serve (550 at RCPT)
// and one of ours; the mail store (LMTP, behind a dead first host) gets the message once,
// with the envelope as sent: MAIL with exactly its SIZE parameter, RCPT without parameters.
func TestE2ESmoke(t *testing.T) {
	eachBackend(t, func(t *testing.T, storage string) {
		e := startE2E(t, storage, e2eOptions{})
		msg := "From: alice@example.com\r\nTo: bob@example.com\r\nSubject: smoke\r\nDate: Wed, 06 Mar 2024 10:42:31 -0800\r\n" +
			"Message-ID: <smoke@example.com>\r\n\r\nsmoke body\r\n"
		replies, err := smtpDialog(e.mx, "EHLO client.test", fmt.Sprintf("MAIL FROM:<alice@example.com> SIZE=%d", len(msg)),
			"RCPT TO:<bob@nowhere.com>", "RCPT TO:<bob@example.com>", "DATA", msg, "QUIT")
		want := []string{"220 ", "250 ", "250 ", "550 5.1.1", "250 ", "354 ", "250 ", "221 "}
		for i, w := range want {
			if err != nil || i >= len(replies) || !strings.HasPrefix(replies[i], w) {
				e.fatalf("replies %q (%v), want %q", replies, err, want)
			}
		}
		got := e.waitDeliveries(e.mailbox, "bob@example.com", 1)[0]
		if got.Helo != "mx.example.com" || got.From != "alice@example.com" || len(got.Rcpts) != 1 || got.RcptParams[0] {
			t.Errorf("the mail store saw LHLO %q MAIL %q RCPT %q (params %v)", got.Helo, got.From, got.Rcpts, got.RcptParams)
		}
		if o := got.MailOpts; o != (smtp.MailOptions{Size: int64(len(msg))}) {
			t.Errorf("MAIL parameters %+v, want SIZE=%d only", o, len(msg))
		}
		if !bytes.HasSuffix(got.Data, []byte(msg)) || !strings.Contains(header(got.Data, "Received"), "by mx.example.com") {
			t.Errorf("the mail store got %q", got.Data)
		}
		e.stop()
		if n := len(e.mailbox.transactions()); n != 1 {
			t.Errorf("the mail store saw %d transactions, want 1: %v", n, e.mailbox.transactions())
		}
	})
}

// §11.1 policy_reject_mail: the client at 127.0.0.1 (reverse name localhost) says EHLO
// nonlocalhost: MAIL is refused; with EHLO localhost it is accepted.
func TestE2EPolicyRejectMail(t *testing.T) {
	eachBackend(t, func(t *testing.T, storage string) {
		e := startE2E(t, storage, e2eOptions{ehloCheck: true})
		replies, err := smtpDialog(e.mx, "EHLO nonlocalhost", "MAIL FROM:<alice@example.com>", "QUIT")
		if err != nil || len(replies) < 3 || !strings.HasPrefix(replies[2], "550 5.7.1") {
			e.fatalf("EHLO nonlocalhost: replies %q (%v)", replies, err)
		}
		replies, err = smtpDialog(e.mx, "EHLO localhost", "MAIL FROM:<alice@example.com>", "QUIT")
		if err != nil || len(replies) < 3 || !strings.HasPrefix(replies[2], "250 ") {
			e.fatalf("EHLO localhost: replies %q (%v)", replies, err)
		}
	})
}

// §11.1 null_reverse_path: MAIL FROM:<> on the MX port; the mail store sees the null path and
// the message's own From.
func TestE2ENullReversePath(t *testing.T) {
	eachBackend(t, func(t *testing.T, storage string) {
		e := startE2E(t, storage, e2eOptions{})
		out := e.mxSwaks("--from", "<>", "--to", "bob@example.com", "--header", "From: alice@example.com", "--body", "bounce-like")
		if r := replyTo(out, "MAIL FROM:<>"); !strings.HasPrefix(r, "250 ") {
			e.fatalf("MAIL FROM:<>: %q\n%s", r, out)
		}
		if r := replyTo(out, "RCPT TO:<bob@example.com>"); !strings.HasPrefix(r, "250 ") || !sent(out) {
			e.fatalf("not accepted:\n%s", out)
		}
		got := e.waitDeliveries(e.mailbox, "bob@example.com", 1)[0]
		if got.From != "" || header(got.Data, "From") != "alice@example.com" {
			t.Errorf("the mail store saw MAIL FROM %q, From: %q", got.From, header(got.Data, "From"))
		}
		e.stop()
	})
}

// §11.1 policy_reject_rcpt: one recipient per transaction on the MX port (num_rcpts, PER_RCPT):
// the second gets 451 4.5.3 and the message goes to the first only.
func TestE2EPolicyRejectRcpt(t *testing.T) {
	eachBackend(t, func(t *testing.T, storage string) {
		e := startE2E(t, storage, e2eOptions{})
		out := e.mxSwaks("--from", "alice@example.org", "--to", "bob@example.com,bob+2@example.com", "--body", "one rcpt per tx")
		if r := replyTo(out, "RCPT TO:<bob@example.com>"); !strings.HasPrefix(r, "250 ") {
			e.fatalf("first RCPT: %q\n%s", r, out)
		}
		if r := replyTo(out, "RCPT TO:<bob+2@example.com>"); !strings.HasPrefix(r, "451 4.5.3") || !strings.Contains(r, "too many recipients") {
			e.fatalf("second RCPT: %q, want 451 4.5.3 too many recipients\n%s", r, out)
		}
		if r := replyTo(out, "."); !strings.HasPrefix(r, "250 ") {
			e.fatalf("DATA: %q\n%s", r, out)
		}
		got := e.waitDeliveries(e.mailbox, "", 1)
		if len(got) != 1 || len(got[0].Rcpts) != 1 || got[0].Rcpts[0] != "bob@example.com" {
			t.Errorf("the mail store got %+v", got)
		}
		e.stop()
	})
}

// §11.1 policy_reject_body: a message with a broken From (bad_from.msg) on the MX port: RCPT
// 250, DATA 550 5.6.0 (message_validation below MEDIUM); the mail store saw the envelope and
// never the message.
func TestE2EPolicyRejectBody(t *testing.T) {
	eachBackend(t, func(t *testing.T, storage string) {
		e := startE2E(t, storage, e2eOptions{})
		out := e.mxSwaks("--from", "alice@example.org", "--to", "bob@example.com", "--data", "testdata/e2e/bad_from.msg")
		if r := replyTo(out, "RCPT TO:<bob@example.com>"); !strings.HasPrefix(r, "250 ") {
			e.fatalf("RCPT: %q\n%s", r, out)
		}
		if r := replyTo(out, "."); r != "550 5.6.0 message rejected message_validation" {
			e.fatalf("DATA: %q, want 550 5.6.0 message rejected message_validation\n%s", r, out)
		}
		txs := e.mailbox.transactions()
		if len(txs) != 1 || !containsFold(txs[0].Rcpts, "bob@example.com") || txs[0].Data != nil {
			t.Errorf("the mail store saw %+v, want bob's envelope and no data", txs)
		}
		e.stop()
	})
}

// parsedPart is a part of the parsed-message JSON.
type parsedPart struct {
	ContentType string `json:"content_type"`
	ContentID   string `json:"content_id"`
	Filename    string `json:"filename"`
	Content     struct {
		Inline   *string `json:"inline"`
		CreateID string  `json:"create_id"`
	} `json:"content"`
}

type parsedMessage struct {
	Parts struct {
		Headers [][2]json.RawMessage `json:"headers"`
	} `json:"parts"`
	TextBody           []parsedPart `json:"text_body"`
	RelatedAttachments []parsedPart `json:"related_attachments"`
	FileAttachments    []parsedPart `json:"file_attachments"`
}

// §11.1 rest_receiving: multipart.msg to the application over the MX port; the REST receiver
// gets the raw message with our Received and the parsed message (max_inline 8: the html and
// both images as part blobs).
func TestE2ERestReceiving(t *testing.T) {
	eachBackend(t, func(t *testing.T, storage string) {
		e := startE2E(t, storage, e2eOptions{})
		out := e.mxSwaks("--from", "alice@example.com", "--to", "bob@rest-application.example.com", "--data", "testdata/e2e/multipart.msg")
		if !sent(out) {
			e.fatalf("not accepted:\n%s", out)
		}
		ctx, cancel := contextTimeout(t, 15*time.Second)
		defer cancel()
		all, err := e.app.WaitFor(ctx, 1)
		if err != nil {
			e.fatalf("the application got nothing: %v", err)
		}
		got := all[0]
		if len(got.Tx.RcptTo) != 1 || got.Tx.RcptTo[0].Address != "bob@rest-application.example.com" {
			t.Errorf("rcpt_to %+v", got.Tx.RcptTo)
		}
		if !bytes.HasPrefix(got.Body, []byte("Received: from ")) || !bytes.Contains(got.Body, []byte("eW9sb2NhdDI=")) {
			t.Errorf("raw body %q", got.Body)
		}
		var pm parsedMessage
		if err := json.Unmarshal(got.Parsed, &pm); err != nil {
			e.fatalf("parsed message %s: %v", got.Parsed, err)
		}
		from := ""
		for _, h := range pm.Parts.Headers {
			if string(h[0]) == `"from"` {
				from = string(h[1])
			}
		}
		if from != `[{"display_name":"alice a","address":"alice@example.com"}]` {
			t.Errorf("parsed From %s", from)
		}
		blob := func(p parsedPart) string {
			if p.Content.Inline != nil {
				return "inline:" + *p.Content.Inline
			}
			return string(got.Parts[p.Content.CreateID])
		}
		if len(pm.TextBody) != 2 || pm.TextBody[0].ContentType != "text/plain" || blob(pm.TextBody[0]) != "inline:hello" ||
			pm.TextBody[1].ContentType != "text/html" || blob(pm.TextBody[1]) != "<b>hello</b>" {
			t.Errorf("text_body %+v (parts %q)", pm.TextBody, got.Parts)
		}
		if len(pm.RelatedAttachments) != 1 || pm.RelatedAttachments[0].ContentID != "xyz" || blob(pm.RelatedAttachments[0]) != "yolocat" {
			t.Errorf("related_attachments %+v (parts %q)", pm.RelatedAttachments, got.Parts)
		}
		if len(pm.FileAttachments) != 1 || pm.FileAttachments[0].Filename != "funny cats.png" || blob(pm.FileAttachments[0]) != "yolocat2" {
			t.Errorf("file_attachments %+v (parts %q)", pm.FileAttachments, got.Parts)
		}
		e.stop()
	})
}

// §11.1 rest_receiving, the filter outputs: with send_filter_output, the application also
// gets the results of the chain's steps, message_validation's among them ({status: 3,
// received_header_count: 1} for multipart.msg after our Received).
func TestE2ERestReceivingFilterOutput(t *testing.T) {
	eachBackend(t, func(t *testing.T, storage string) {
		e := startE2E(t, storage, e2eOptions{})
		out := e.mxSwaks("--from", "alice@example.com", "--to", "bob@rest-application.example.com", "--data", "testdata/e2e/multipart.msg")
		if !sent(out) {
			e.fatalf("not accepted:\n%s", out)
		}
		ctx, cancel := contextTimeout(t, 15*time.Second)
		defer cancel()
		all, err := e.app.WaitFor(ctx, 1)
		if err != nil {
			e.fatalf("the application got nothing: %v", err)
		}
		var mv struct {
			Status              *int `json:"status"`
			ReceivedHeaderCount *int `json:"received_header_count"`
		}
		fo := all[0].Tx.FilterOutput
		raw, ok := fo["koukan.message_validation_filter.MessageValidationFilter"]
		if ok {
			json.Unmarshal(raw, &mv)
		}
		if mv.Status == nil || *mv.Status != 3 || mv.ReceivedHeaderCount == nil || *mv.ReceivedHeaderCount != 1 {
			e.fatalf("filter_output %s: want MessageValidationFilter {status: 3, received_header_count: 1}", fo)
		}
		e.stop()
	})
}

// verifyDKIM checks the message's DKIM signatures against the test zone's key: one at least,
// all valid, by example.com.
func (e *e2e) verifyDKIM(msg []byte) error {
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) { return e.zone.Resolver(e.t).LookupTXT(e.t.Context(), name) },
	})
	if err != nil {
		return err
	}
	if len(vs) == 0 {
		return fmt.Errorf("no DKIM-Signature")
	}
	for _, v := range vs {
		if v.Err != nil || v.Domain != "example.com" {
			return fmt.Errorf("signature by %s: %v", v.Domain, v.Err)
		}
	}
	return nil
}

// §11.1 msa: trivial.msg on the submission port (STARTTLS, AUTH) to one of our mailboxes
// (routed back into the router by short_circuit): the mail store gets it once, signed
// (the signature verifies against the published key) and with our Received.
func TestE2EMSA(t *testing.T) {
	eachBackend(t, func(t *testing.T, storage string) {
		e := startE2E(t, storage, e2eOptions{})
		out := e.subSwaks("--from", "alice@example.com", "--to", "bob@example.com", "--data", "testdata/e2e/trivial.msg")
		if !sent(out) {
			e.fatalf("not accepted:\n%s", out)
		}
		got := e.waitDeliveries(e.mailbox, "bob@example.com", 1)[0]
		if header(got.Data, "DKIM-Signature") == "" || !strings.Contains(header(got.Data, "Received"), "by smtp.example.com") {
			t.Errorf("no DKIM-Signature or Received by smtp.example.com:\n%s", got.Data)
		}
		if err := e.verifyDKIM(got.Data); err != nil {
			t.Errorf("DKIM: %v\n%s", err, got.Data)
		}
		if !bytes.Contains(got.Data, []byte("Subject: hello\r\nMessage-id: <abc@xyz>\r\n")) || !bytes.Contains(got.Data, []byte("\r\n\r\nworld!\r\n")) {
			t.Errorf("the message changed:\n%q", got.Data)
		}
		e.stop()
		if n := len(e.mailbox.deliveries("")); n != 1 {
			t.Errorf("%d deliveries, want exactly 1: %+v", n, e.mailbox.transactions())
		}
	})
}

// attachmentOf finds the part of msg with filename and returns its decoded bytes.
func attachmentOf(msg []byte, filename string) ([]byte, error) {
	r, err := mail.CreateReader(bytes.NewReader(msg))
	if err != nil {
		return nil, err
	}
	for {
		p, err := r.NextPart()
		if err != nil {
			return nil, fmt.Errorf("no part named %s: %v", filename, err)
		}
		if h, ok := p.Header.(*mail.AttachmentHeader); ok {
			if name, _ := h.Filename(); name == filename {
				return io.ReadAll(p.Body)
			}
		}
	}
}

// §11.1 submission_mime and submission_message_builder: koukan send to two recipients on the
// internet, the message uploaded once and reused by the second transaction: as a raw file,
// then built by the router with an attachment. Each recipient gets it once, signed.
func TestE2ESubmissionReuse(t *testing.T) {
	eachBackend(t, func(t *testing.T, storage string) {
		e := startE2E(t, storage, e2eOptions{})
		send := runKoukan(t, "testdata/e2e", "send", "--router", e.api, "--from", "alice@example.com",
			"--to", "bob@remote.test", "--to", "bob2@remote.test", "--raw", "trivial.msg", "--wait")
		if send.code != 0 || strings.Count(send.stdout, "delivered: 250") != 2 {
			e.fatalf("koukan send --raw: exit %d\n%s%s", send.code, send.stdout, send.stderr)
		}
		for _, rcpt := range []string{"bob@remote.test", "bob2@remote.test"} {
			got := e.waitDeliveries(e.internet, rcpt, 1)
			if len(got) != 1 || !bytes.HasSuffix(got[0].Data, []byte("\r\nworld!\r\n")) || header(got[0].Data, "Received") == "" {
				t.Errorf("%s got %+v", rcpt, got)
			} else if err := e.verifyDKIM(got[0].Data); err != nil {
				t.Errorf("%s: DKIM: %v", rcpt, err)
			}
		}

		dir := t.TempDir()
		attachment := make([]byte, 20000)
		rand.Read(attachment)
		writeFile(t, filepath.Join(dir, "cats.png"), attachment)
		writeFile(t, filepath.Join(dir, "body.txt"), []byte("hello, world!\n"))
		send = runKoukan(t, dir, "send", "--router", e.api, "--from", "alice a <alice@example.com>",
			"--to", "carol@remote.test", "--to", "dave@remote.test", "--subject", "built", "--text", "@body.txt",
			"--attach", "cats.png", "--wait")
		if send.code != 0 || strings.Count(send.stdout, "delivered: 250") != 2 {
			e.fatalf("koukan send --attach: exit %d\n%s%s", send.code, send.stdout, send.stderr)
		}
		for _, rcpt := range []string{"carol@remote.test", "dave@remote.test"} {
			got := e.waitDeliveries(e.internet, rcpt, 1)
			if len(got) != 1 {
				t.Errorf("%s got %d messages", rcpt, len(got))
				continue
			}
			msg := got[0].Data
			if from := header(msg, "From"); !strings.Contains(from, "alice a") || !strings.Contains(from, "<alice@example.com>") {
				t.Errorf("%s: From: %q", rcpt, from)
			}
			if a, err := attachmentOf(msg, "cats.png"); err != nil || !bytes.Equal(a, attachment) {
				t.Errorf("%s: attachment: %v (%d bytes)\n%s", rcpt, err, len(a), msg)
			}
			if err := e.verifyDKIM(msg); err != nil || header(msg, "Received") == "" {
				t.Errorf("%s: DKIM: %v, Received: %q", rcpt, err, header(msg, "Received"))
			}
		}
		e.stop()
		if n := len(e.internet.deliveries("")); n != 4 {
			t.Errorf("the internet got %d messages, want 4", n)
		}
	})
}

// SMTP submission with AUTH over STARTTLS: the authenticated client relays to the internet
// (Received says ESMTPSA); without AUTH, MAIL is refused (530); a wrong password gets 535;
// AUTH is not offered before STARTTLS.
func TestE2ESubmissionAuthSTARTTLS(t *testing.T) {
	eachBackend(t, func(t *testing.T, storage string) {
		e := startE2E(t, storage, e2eOptions{})
		out := e.subSwaks("--from", "alice@example.com", "--to", "carol@remote.test", "--header", "Subject: authenticated", "--body", "via 587")
		if !sent(out) || !strings.Contains(out, "<~  235 ") {
			e.fatalf("authenticated submission:\n%s", out)
		}
		got := e.waitDeliveries(e.internet, "carol@remote.test", 1)[0]
		if rcv := header(got.Data, "Received"); !strings.Contains(rcv, "ESMTPSA") || !strings.Contains(rcv, "by smtp.example.com") {
			t.Errorf("Received: %q", rcv)
		}
		if got.Helo != "mx.example.com" || got.From != "alice@example.com" || !bytes.Contains(got.Data, []byte("via 587")) {
			t.Errorf("the internet got %+v", got)
		}

		out = swaks(t, e.sub, "--tls", "--from", "alice@example.com", "--to", "carol@remote.test")
		if r := replyTo(out, "MAIL FROM:"); !strings.HasPrefix(r, "530 5.7.0") {
			t.Errorf("MAIL without AUTH: %q, want 530 5.7.0\n%s", r, out)
		}
		out = swaks(t, e.sub, "--tls", "--auth", "PLAIN", "--auth-user", e2eUser, "--auth-password", "wrong",
			"--from", "alice@example.com", "--to", "carol@remote.test")
		if !strings.Contains(out, "<~* 535 5.7.8") {
			t.Errorf("wrong password:\n%s", out)
		}
		out = swaks(t, e.sub, "--auth", "PLAIN", "--auth-user", e2eUser, "--auth-password", e2ePassword,
			"--from", "alice@example.com", "--to", "carol@remote.test")
		if sent(out) || strings.Contains(out, "AUTH PLAIN") {
			t.Errorf("AUTH without TLS:\n%s", out)
		}
		e.stop()
		if n := len(e.internet.deliveries("")); n != 1 {
			t.Errorf("the internet got %d messages, want 1", n)
		}
	})
}

// A remote 4xx at RCPT, then 250 on the retry: the REST transaction ends delivered at
// attempt 2, and the message arrives once.
func TestE2ERetryAfterTempFailure(t *testing.T) {
	eachBackend(t, func(t *testing.T, storage string) {
		e := startE2E(t, storage, e2eOptions{internet: func(stage, rcpt string, attempt int) *smtp.SMTPError {
			if stage == "rcpt" && rcpt == "later@remote.test" && attempt == 1 {
				return smtpErr(451, "4.3.0", "try again later")
			}
			return nil
		}})
		url := e.post("submission", `{"mail_from":{"m":"alice@example.com"},"rcpt_to":[{"m":"later@remote.test"}],
			"body":{"inline":"From: alice@example.com\r\nTo: later@remote.test\r\nSubject: retry\r\nDate: Wed, 06 Mar 2024 10:42:31 -0800\r\nMessage-ID: <retry@example.com>\r\n\r\nsecond time lucky\r\n"}}`)
		got, raw := e.waitFinal(url)
		if got.FinalAttemptReason != "upstream response success" || got.AttemptCount != 2 || got.DataResponse == nil || got.DataResponse.Code != 250 {
			e.fatalf("final state %s, want delivered at attempt 2", raw)
		}
		if n := e.internet.attemptsFor("later@remote.test"); n != 2 {
			t.Errorf("the internet saw RCPT %d times, want 2", n)
		}
		if d := e.waitDeliveries(e.internet, "later@remote.test", 1); len(d) != 1 || !bytes.Contains(d[0].Data, []byte("second time lucky")) {
			t.Errorf("delivered %+v", d)
		}
		e.stop()
	})
}

// dsnFields checks a DSN: a multipart/report for delivery-status from the null path, failing
// rcpt with Action: failed and status.
func checkDSN(t *testing.T, d peerTx, rcpt, status string) {
	t.Helper()
	ct := header(d.Data, "Content-Type")
	body := string(d.Data)
	if d.From != "" || !strings.Contains(ct, "multipart/report") || !strings.Contains(ct, "delivery-status") ||
		!strings.Contains(body, "Action: failed") || !strings.Contains(strings.ToLower(body), "final-recipient: rfc822; "+rcpt) ||
		!strings.Contains(body, "Status: "+status) {
		t.Errorf("DSN (MAIL FROM %q) for %s: want a multipart/report, Action: failed, Status: %s:\n%s", d.From, rcpt, status, d.Data)
	}
}

// A permanent 5xx from the internet: the transaction fails at once, and the sender (one of
// our mailboxes) gets a DSN in the mail store.
func TestE2EPermanentFailureDSN(t *testing.T) {
	eachBackend(t, func(t *testing.T, storage string) {
		e := startE2E(t, storage, e2eOptions{internet: func(stage, rcpt string, attempt int) *smtp.SMTPError {
			if stage == "rcpt" && rcpt == "nobody@remote.test" {
				return smtpErr(550, "5.1.1", "no such user here")
			}
			return nil
		}})
		url := e.post("submission", `{"mail_from":{"m":"alice@example.com"},"rcpt_to":[{"m":"nobody@remote.test"}],
			"body":{"inline":"From: alice@example.com\r\nTo: nobody@remote.test\r\nSubject: doomed\r\nDate: Wed, 06 Mar 2024 10:42:31 -0800\r\nMessage-ID: <doomed@example.com>\r\n\r\nnobody reads this\r\n"}}`)
		got, raw := e.waitFinal(url)
		if got.FinalAttemptReason != "upstream rcpt_response permfail" || got.AttemptCount != 1 ||
			len(got.RcptResponse) != 1 || got.RcptResponse[0].Code != 550 {
			e.fatalf("final state %s", raw)
		}
		checkDSN(t, e.waitDSN("alice@example.com"), "nobody@remote.test", "5.1.1")
		e.stop()
		if n := len(e.internet.deliveries("")); n != 0 {
			t.Errorf("the internet got %d messages", n)
		}
	})
}

// An unknown recipient of our own domain is refused at RCPT on the MX port.
func TestE2EUnknownLocalRecipient(t *testing.T) {
	eachBackend(t, func(t *testing.T, storage string) {
		e := startE2E(t, storage, e2eOptions{})
		out := e.mxSwaks("--from", "someone@example.org", "--to", "nobody@example.com")
		if r := replyTo(out, "RCPT TO:<nobody@example.com>"); !strings.HasPrefix(r, "550 5.1.1") {
			e.fatalf("RCPT nobody@example.com: %q, want 550 5.1.1\n%s", r, out)
		}
		if sent(out) {
			t.Errorf("accepted:\n%s", out)
		}
		e.stop()
		if txs := e.mailbox.transactions(); len(txs) != 0 {
			t.Errorf("the mail store saw %+v", txs)
		}
	})
}

// A multi-recipient submission with mixed results: good@remote.test is accepted,
// bad@bounce.test passes RCPT and is refused at DATA (550), gone@bounce.test is refused at
// RCPT. The client sees the exploder's answers (250, 250, 550; DATA 250 store-and-forward);
// the good recipient gets the message once; the sender gets a DSN for bad@ only.
func TestE2EMixedResults(t *testing.T) {
	eachBackend(t, func(t *testing.T, storage string) {
		e := startE2E(t, storage, e2eOptions{internet: func(stage, rcpt string, attempt int) *smtp.SMTPError {
			switch {
			case rcpt == "gone@bounce.test" && stage == "rcpt":
				return smtpErr(550, "5.1.1", "gone away")
			case rcpt == "bad@bounce.test" && stage == "data":
				return smtpErr(550, "5.7.1", "content refused")
			}
			return nil
		}})
		out := e.subSwaks("--from", "alice@example.com", "--to", "good@remote.test,bad@bounce.test,gone@bounce.test",
			"--header", "Subject: mixed", "--body", "mixed results")
		for rcpt, want := range map[string]string{"good@remote.test": "250 ", "bad@bounce.test": "250 ", "gone@bounce.test": "550 5.1.1"} {
			if r := replyTo(out, "RCPT TO:<"+rcpt+">"); !strings.HasPrefix(r, want) {
				e.fatalf("RCPT %s: %q, want %s\n%s", rcpt, r, want, out)
			}
		}
		if r := replyTo(out, "."); !strings.HasPrefix(r, "250 ") {
			e.fatalf("DATA: %q\n%s", r, out)
		}
		e.waitDeliveries(e.internet, "good@remote.test", 1)
		checkDSN(t, e.waitDSN("alice@example.com"), "bad@bounce.test", "5.7.1")
		e.stop()
		if n := len(e.internet.deliveries("good@remote.test")); n != 1 {
			t.Errorf("good@remote.test got %d messages, want 1", n)
		}
		dsns := dsnsFor(e.mailbox, "alice@example.com")
		if len(dsns) != 1 || bytes.Contains(bytes.ToLower(dsns[0].Data), []byte("final-recipient: rfc822; gone@bounce.test")) {
			t.Errorf("%d DSNs, want one, for bad@bounce.test only: %v", len(dsns), dsns)
		}
	})
}

// Router to router: submission routes our own domains (DSNs included) to the ingress
// sender's short_circuit tag, a one-recipient sender whose chain ends in rest_output, as
// config/examples/serve.yaml does. rest_output creates the upstream transaction with its
// recipient, which such a sender requires (it once PATCHed it in after a mail-only create,
// and every attempt failed).
func TestE2EShortCircuitToOneRecipientSender(t *testing.T) {
	eachBackend(t, func(t *testing.T, storage string) {
		e := startE2E(t, storage, e2eOptions{directShortCircuit: true})
		url := e.post("submission", `{"mail_from":{"m":"alice@example.com"},"rcpt_to":[{"m":"bob@example.com"}],
			"body":{"inline":"From: alice@example.com\r\nTo: bob@example.com\r\nSubject: local\r\nDate: Wed, 06 Mar 2024 10:42:31 -0800\r\nMessage-ID: <local@example.com>\r\n\r\nto our own domain\r\n"}}`)
		got, raw := e.waitFinal(url)
		if got.FinalAttemptReason != "upstream response success" {
			e.fatalf("final state %s", raw)
		}
		e.waitDeliveries(e.mailbox, "bob@example.com", 1)
		e.stop()
	})
}
