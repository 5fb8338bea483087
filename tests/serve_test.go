package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serveAt runs `koukan serve` with the built-in config on free loopback ports, in dir.
type serveAt struct {
	*server
	api, data      string
	mx, submission int
}

func startServe(t *testing.T, dir string) *serveAt {
	t.Helper()
	s := &serveAt{data: filepath.Join(dir, "data"), mx: freePort(t), submission: freePort(t)}
	router, gateway := freePort(t), freePort(t)
	s.api = fmt.Sprintf("http://127.0.0.1:%d", router)
	started := time.Now()
	s.server = startServer(t, dir, s.api+"/mailbox", "serve", "--data", s.data,
		"--router", fmt.Sprintf("127.0.0.1:%d", router), "--gateway", fmt.Sprintf("127.0.0.1:%d", gateway),
		"--smtp", fmt.Sprintf("127.0.0.1:%d", s.mx), "--submission", fmt.Sprintf("127.0.0.1:%d", s.submission))
	if d := time.Since(started); d > 5*time.Second {
		t.Errorf("serve took %v to start", d)
	}
	return s
}

type mailboxEntry struct {
	ID, To, From, Subject string
}

// waitMailbox waits until the local mailbox holds n messages and returns them.
func (s *serveAt) waitMailbox(t *testing.T, n int) []mailboxEntry {
	t.Helper()
	var list []mailboxEntry
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, body := request(t, "GET", s.api+"/mailbox", "")
		list = nil
		json.Unmarshal([]byte(body), &list)
		if len(list) >= n {
			return list
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mailbox has %d messages, want %d:\n%s", len(list), n, s.out)
		}
	}
}

// `koukan serve` out of the box: the REST API, koukan send and SMTP on the MX and submission
// ports all deliver to the local mailbox; the MX port relays for nobody; SIGTERM stops it
// cleanly.
func TestServeOutOfTheBox(t *testing.T) {
	s := startServe(t, t.TempDir())
	for _, probe := range []string{"/healthz", "/readyz"} {
		if res, body := request(t, "GET", s.api+probe, ""); res.StatusCode != 200 {
			t.Errorf("%s: %d %s", probe, res.StatusCode, body)
		}
	}
	res, body := request(t, "POST", s.api+"/senders/submission/transactions",
		`{"mail_from":{"m":"me@localhost"},"rcpt_to":[{"m":"you@localhost"}],"body":{"inline":"Subject: by curl\r\n\r\nhello\r\n"}}`,
		"Content-Type", "application/json")
	if res.StatusCode != 201 {
		t.Fatalf("POST: %d %s", res.StatusCode, body)
	}
	send := runKoukan(t, s.data, "send", "--router", s.api, "--from", "me@localhost", "--to", "you@localhost",
		"--subject", "by send", "--text", "hello", "--wait")
	if send.code != 0 || !strings.Contains(send.stdout, "delivered: 250") {
		t.Errorf("koukan send: exit %d\n%s%s", send.code, send.stdout, send.stderr)
	}
	if out := swaks(t, s.mx, "--from", "a@example.org", "--to", "you@localhost", "--header", "Subject: by mx"); !accepted(out) {
		t.Errorf("MX:\n%s", out)
	}
	if out := swaks(t, s.submission, "--from", "me@localhost", "--to", "them@localhost", "--header", "Subject: by submission"); !accepted(out) {
		t.Errorf("submission:\n%s", out)
	}
	if out := swaks(t, s.mx, "--from", "a@example.org", "--to", "someone@example.com"); !strings.Contains(out, "<** 550 5.1.1") {
		t.Errorf("the MX port relayed:\n%s", out)
	}
	list := s.waitMailbox(t, 4)
	var subjects []string
	for _, m := range list {
		subjects = append(subjects, m.Subject)
	}
	for _, want := range []string{"by curl", "by send", "by mx", "by submission"} {
		if !strings.Contains(strings.Join(subjects, "|"), want) {
			t.Errorf("mailbox subjects %q lack %q", subjects, want)
		}
	}
	_, raw := request(t, "GET", s.api+"/mailbox/"+list[0].ID, "")
	if !strings.HasPrefix(raw, "Delivered-To: ") || !strings.Contains(raw, "Received: ") {
		t.Errorf("stored message %q", raw)
	}
	_, metrics := request(t, "GET", s.api+"/metrics", "")
	for _, want := range []string{
		`koukan_transactions_created_total{sender="submission"}`,
		`koukan_transactions_finished_total{reason="upstream response success",sender="submission"}`,
		`koukan_attempts_total{outcome="final",sender="submission"}`,
		`koukan_http_requests_total{route="POST /senders/{sender}/transactions",status="201"}`,
		`koukan_smtp_sessions_open{service="ingress/smtp-mx"}`,
		`koukan_smtp_replies_total{class="2xx",side="inbound"}`,
		`koukan_smtp_replies_total{class="2xx",side="outbound"}`,
		`koukan_script_calls_total{result="ok",script="received_header"}`,
		`koukan_script_reloads_total{result="ok"}`,
		`koukan_queue_transactions{state="due"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	files, _ := filepath.Glob(filepath.Join(s.data, "mailbox", "*.eml"))
	if len(files) != 4 {
		t.Errorf("%d .eml files", len(files))
	}
	if code := s.stop(t); code != 0 {
		t.Errorf("exit %d after SIGTERM:\n%s", code, s.out)
	}
}

// A script dropped into DATA/scripts while serve runs takes effect (SIGHUP forces it).
func TestServeScriptEdit(t *testing.T) {
	s := startServe(t, t.TempDir())
	script := filepath.Join(s.data, "scripts", "filters", "received_header.lua")
	os.MkdirAll(filepath.Dir(script), 0o755)
	// Shadow the shipped received_header with one that also stamps the message.
	saveFile(t, script, "local opts = ...\nlocal M = {}\nfunction M.data(tx, msg)\n  msg:prepend(\"X-Local-Edit\", opts.received_hostname or \"yes\")\nend\nreturn M\n")
	s.cmd.Process.Signal(syscall.SIGHUP)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, body := request(t, "GET", s.api+"/admin/scripts", "")
		if strings.Contains(body, script) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edit was not loaded: %s\n%s", body, s.out)
		}
	}
	if out := swaks(t, s.mx, "--from", "a@example.org", "--to", "you@localhost"); !accepted(out) {
		t.Fatalf("MX:\n%s", out)
	}
	list := s.waitMailbox(t, 1)
	_, raw := request(t, "GET", s.api+"/mailbox/"+list[0].ID, "")
	if !strings.Contains(raw, "X-Local-Edit: localhost") {
		t.Errorf("the edited script did not run: %q", raw)
	}
}

// kill -9 with mail in flight: everything acknowledged is delivered after a restart.
func TestServeKillNine(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir)
	const n = 20
	for i := range n {
		res, body := request(t, "POST", s.api+"/senders/submission/transactions",
			fmt.Sprintf(`{"mail_from":{"m":"me@localhost"},"rcpt_to":[{"m":"r%d@localhost"}],"body":{"inline":"Subject: m%d\r\n\r\nhello\r\n"}}`, i, i),
			"Content-Type", "application/json")
		if res.StatusCode != 201 {
			t.Fatalf("POST %d: %d %s", i, res.StatusCode, body)
		}
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
	args := s.cmd.Args[1:]
	s2 := &serveAt{data: s.data, api: s.api, mx: s.mx, submission: s.submission}
	s2.server = startServer(t, dir, s.api+"/mailbox", args...)
	// Wait for every acknowledged message, not for a count: duplicates count too.
	var list []mailboxEntry
	seen := map[string]int{}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		list = s2.waitMailbox(t, n)
		clear(seen)
		for _, m := range list {
			seen[m.Subject]++
		}
		missing := 0
		for i := range n {
			if seen[fmt.Sprintf("m%d", i)] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged messages never delivered:\n%s", missing, s2.out)
		}
	}
	t.Logf("%d acknowledged, %d delivered (duplicates: messages the mailbox stored before the kill and was asked for again)", n, len(list))
}
