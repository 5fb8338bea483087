package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/emersion/go-smtp"
)

// queueConfig is koukan serve for the queue admin scenario: REST and SMTP submission (an
// msa exploder, no authentication on loopback) deliver through the gateway to the test's
// SMTP server for every domain, and temporary failures are retried only an hour later, so
// they stay queued until an operator acts.
const queueConfig = `
router:
  rest_listener:
    addr: [127.0.0.1, {{.Router}}]
    session_uri: http://127.0.0.1:{{.Router}}
  storage:
    url: "{{.Storage}}"
  scripts:
    reload: false
  sender:
    - name: submission
      output_chain: submission
      retry: output_chain
      tag:
        - name: smtp-msa
          output_chain: submission_exploder
          upstream_tag: smtp-msa-upstream
          retry: null
        - name: smtp-msa-upstream
          retry: null
  rest_endpoint:
    - {name: gateway, endpoint: "http://127.0.0.1:{{.Gateway}}", sender: router, tag: outbound}
  endpoint:
    - name: submission_exploder
      chain:
        - {filter: exploder, msa: true, rcpt_timeout: 2, data_timeout: 2}
    - name: submission
      output_handler:
        retry_params: {max_attempts: 10, min_attempt_time: 3600, max_attempt_time: 7200, backoff_factor: 1}
      chain:
        - filter: router
          policy:
            name: address_list
            domains: [slow.test, never.test, held.test]
            destination: {endpoint: gateway, host_list: [{host: 127.0.0.1, port: {{.Peer}}}]}
        - {filter: rest_output, rcpt_timeout: 10, data_timeout: 10}
gateway:
  rest_listener:
    addr: [127.0.0.1, {{.Gateway}}]
    session_uri: http://127.0.0.1:{{.Gateway}}
  smtp_output:
    hosts:
      outbound: {ehlo_host: mx.example.com, timeout: 10}
  smtp_listener:
    services:
      - addr: [127.0.0.1, {{.Submission}}]
        endpoint: router_submission
        sender: submission
        tag: smtp-msa
        hostname: smtp.example.com
  rest_output:
    - {name: router_submission, endpoint: "http://127.0.0.1:{{.Router}}/senders/submission/transactions"}
`

// queueRun is koukan serve with the queue config, its SMTP peer, and koukan queue aimed at it.
type queueRun struct {
	t          *testing.T
	dir, api   string
	srv        *server
	peer       *smtpPeer
	submission int
}

// queue runs koukan queue against the router; it fails the test unless the exit status is
// want.
func (q *queueRun) queue(want int, args ...string) string {
	q.t.Helper()
	r := runKoukan(q.t, q.dir, append(append([]string{"queue"}, args...), "--router", q.api)...)
	if r.code != want {
		q.t.Fatalf("koukan queue %s: exit %d, want %d\n%s%s\n--- koukan serve:\n%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr, q.logs())
	}
	return r.stdout + r.stderr
}

// queuedTx is what the test reads of koukan queue show --json.
type queuedTx struct {
	ID                 string `json:"id"`
	State              string `json:"state"`
	Attempts           int    `json:"attempt_count"`
	FinalAttemptReason string `json:"final_attempt_reason"`
}

// waitState runs koukan queue show until the transaction is in state after at least n
// attempts.
func (q *queueRun) waitState(id, state string, n int) queuedTx {
	q.t.Helper()
	var got queuedTx
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err := json.Unmarshal([]byte(q.queue(0, "show", id, "--json")), &got); err != nil {
			q.t.Fatal(err)
		}
		if got.State == state && got.Attempts >= n {
			return got
		}
	}
	q.t.Fatalf("%s is %s after %d attempts, want %s after %d\n--- koukan serve:\n%s", id, got.State, got.Attempts, state, n, q.logs())
	return got
}

// listed runs koukan queue ls --json with args and returns the ids, newest first.
func (q *queueRun) listed(args ...string) []string {
	q.t.Helper()
	var page struct {
		Transactions []queuedTx `json:"transactions"`
	}
	if err := json.Unmarshal([]byte(q.queue(0, append([]string{"ls", "--json"}, args...)...)), &page); err != nil {
		q.t.Fatal(err)
	}
	var ids []string
	for _, t := range page.Transactions {
		ids = append(ids, t.ID)
	}
	return ids
}

// logs stops koukan serve, if it runs, and returns its output: reading it while the
// process writes would race.
func (q *queueRun) logs() string {
	if q.srv.cmd.ProcessState == nil {
		q.srv.stop(q.t)
	}
	return q.srv.out.String()
}

// post creates a transaction through the REST API and returns its id.
func (q *queueRun) post(rcpt string) string {
	q.t.Helper()
	res, body := request(q.t, "POST", q.api+"/senders/submission/transactions",
		`{"mail_from":{"m":"alice@example.com"},"rcpt_to":[{"m":"`+rcpt+`"}],"body":{"inline":"From: alice@example.com\r\nTo: `+rcpt+`\r\nSubject: queued\r\n\r\nhello\r\n"}}`,
		"Content-Type", "application/json")
	if res.StatusCode != 201 {
		q.t.Fatalf("POST: %d %s", res.StatusCode, body)
	}
	loc := res.Header.Get("Location")
	return loc[strings.LastIndexByte(loc, '/')+1:]
}

func startQueueRun(t *testing.T, storage string, reply peerReply) *queueRun {
	t.Helper()
	q := &queueRun{t: t, dir: t.TempDir(), peer: startPeer(t, false, reply)}
	free := distinctPorts(t, 3)
	vars := map[string]any{"Router": free[0], "Gateway": free[1], "Submission": free[2], "Peer": q.peer.port, "Storage": storage}
	var cfg bytes.Buffer
	if err := template.Must(template.New("serve").Parse(queueConfig)).Execute(&cfg, vars); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(q.dir, "serve.yaml"), cfg.Bytes())
	if r := runKoukan(t, q.dir, "check", "serve.yaml"); r.code != 0 {
		t.Fatalf("koukan check serve.yaml: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	q.api, q.submission = fmt.Sprintf("http://127.0.0.1:%d", free[0]), free[2]
	q.srv = startServer(t, q.dir, q.api+"/healthz", "serve", "--config", "serve.yaml")
	if err := waitPort(q.submission, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return q
}

// The queue admin CLI against the real binary: mail to a domain that fails temporarily
// waits deferred and is listed; a suspended domain holds mail (REST and an SMTP
// submission's exploded recipient) while other mail flows, and resuming it delivers at
// once; retry now and cancel act on single transactions.
func TestQueueAdmin(t *testing.T) {
	eachBackend(t, func(t *testing.T, storage string) {
		var slowOpen atomic.Bool
		q := startQueueRun(t, storage, func(stage, rcpt string, attempt int) *smtp.SMTPError {
			switch {
			case stage == "rcpt" && strings.HasSuffix(rcpt, "@never.test"),
				stage == "rcpt" && strings.HasSuffix(rcpt, "@slow.test") && !slowOpen.Load():
				return smtpErr(451, "4.3.0", "try again later")
			}
			return nil
		})
		if out := q.queue(0, "domains"); out != "no domain is suspended\n" {
			t.Errorf("domains: %q", out)
		}

		// A temporary failure waits an hour, deferred, with its reply.
		slow := q.post("bob@slow.test")
		q.waitState(slow, "deferred", 1)
		out := q.queue(0, "ls", "--state", "deferred")
		if !strings.Contains(out, slow) || !strings.Contains(out, "bob@slow.test") || !strings.Contains(out, "451 4.3.0 try again later (rcpt)") {
			t.Errorf("ls --state deferred:\n%s", out)
		}

		// A suspended domain holds new mail, by REST and by SMTP (the exploder's recipient
		// transaction), and no attempt reaches its server.
		if out := q.queue(0, "suspend", "Held.TEST"); !strings.HasPrefix(out, "held.test: suspended since ") {
			t.Errorf("suspend: %q", out)
		}
		held := q.post("carol@held.test")
		replies, err := smtpDialog(q.submission, "EHLO client.example", "MAIL FROM:<alice@example.com>", "RCPT TO:<dave@held.test>",
			"DATA", "From: alice@example.com\r\nTo: dave@held.test\r\nSubject: by smtp\r\n\r\nheld by smtp\r\n", "QUIT")
		if err != nil || len(replies) < 6 || !strings.HasPrefix(replies[3], "250") || !strings.HasPrefix(replies[5], "250") {
			t.Fatalf("SMTP submission: %v %q\n%s", err, replies, q.logs())
		}
		var heldIDs []string
		for deadline := time.Now().Add(20 * time.Second); len(heldIDs) < 2 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			heldIDs = q.listed("--state", "held", "--domain", "held.test")
		}
		if len(heldIDs) != 2 || !strings.Contains(strings.Join(heldIDs, " "), held) {
			t.Fatalf("held for held.test: %v, want the REST transaction %s and the SMTP recipient's\n%s", heldIDs, held, q.logs())
		}
		if out := q.queue(0, "domains"); !strings.Contains(out, "held.test") || !strings.HasSuffix(strings.TrimSpace(out), " 2") {
			t.Errorf("domains:\n%s", out)
		}

		// Meanwhile other mail flows: retry now sends the deferred one at once.
		slowOpen.Store(true)
		if out := q.queue(0, "retry", slow); !strings.HasPrefix(out, slow+": ") {
			t.Errorf("retry: %q", out)
		}
		q.waitState(slow, "delivered", 2)
		if len(q.peer.deliveries("bob@slow.test")) != 1 {
			t.Errorf("bob@slow.test got %d messages", len(q.peer.deliveries("bob@slow.test")))
		}
		for _, rcpt := range []string{"carol@held.test", "dave@held.test"} {
			if n := q.peer.attemptsFor(rcpt); n != 0 {
				t.Errorf("%s was tried %d times while its domain was suspended", rcpt, n)
			}
		}
		if ids := q.listed("--state", "held"); len(ids) != 2 {
			t.Errorf("held after the retried one went: %v", ids)
		}

		// Resume: the held mail goes at once.
		if out := q.queue(0, "resume", "held.test"); out != "held.test: resumed\n" {
			t.Errorf("resume: %q", out)
		}
		for _, id := range heldIDs {
			q.waitState(id, "delivered", 1)
		}
		for _, rcpt := range []string{"carol@held.test", "dave@held.test"} {
			if d := q.peer.deliveries(rcpt); len(d) != 1 {
				t.Errorf("%s got %d messages after resume", rcpt, len(d))
			}
		}
		if out := q.queue(1, "resume", "held.test"); !strings.Contains(out, "held.test is not suspended") {
			t.Errorf("second resume: %q", out)
		}

		// Cancel one that would wait forever; it is final for the REST API too.
		never := q.post("erin@never.test")
		q.waitState(never, "deferred", 1)
		if out := q.queue(0, "cancel", never); out != never+": cancelled\n" {
			t.Errorf("cancel: %q", out)
		}
		if res, body := request(t, "GET", q.api+"/transactions/"+never, ""); res.StatusCode != 200 ||
			!strings.Contains(body, `"final_attempt_reason":"downstream cancelled"`) {
			t.Errorf("the cancelled transaction over REST: %d %s", res.StatusCode, body)
		}
		if out := q.queue(1, "retry", never); !strings.Contains(out, "the transaction is final") {
			t.Errorf("retry of a cancelled transaction: %q", out)
		}
		if code := q.srv.stop(t); code != 0 {
			t.Errorf("koukan serve exited %d:\n%s", code, q.srv.out)
		}
	})
}
