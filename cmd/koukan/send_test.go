package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/builtin"
	"github.com/koukan/koukan/engine/rest/resttest"
	"github.com/koukan/koukan/engine/router"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/store/sqlite"
	"github.com/koukan/koukan/engine/tx"
)

// sendRouterConfig is a router whose submission sender delivers, without retries, to a
// REST receiver.
const sendRouterConfig = `
rest_listener:
  addr: ["127.0.0.1", 1]
  session_uri: %[1]s
storage:
  url: sqlite:///unused.db
sender:
  - name: submission
    output_chain: submission
endpoint:
  - name: submission
    chain:
      - filter: rest_output
        static_endpoint: %[2]s
        rcpt_timeout: 5
        data_timeout: 5
`

// sendEnv is a real router on SQLite in a temp dir, delivering to a REST receiver.
type sendEnv struct {
	url  string
	recv *resttest.Receiver
	// uploads counts the blob and body PUTs the router got.
	uploads atomic.Int32
	dir     string
}

func startSendEnv(t *testing.T, respond func(resttest.Request) resttest.Reply) *sendEnv {
	t.Helper()
	env := &sendEnv{dir: t.TempDir()}
	env.recv = resttest.NewReceiver(resttest.Options{Respond: respond})
	t.Cleanup(env.recv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env.url = "http://" + ln.Addr().String()
	cfg, _, err := config.ParseRouter("router.yaml", fmt.Appendf(nil, sendRouterConfig, env.url, env.recv.URL()))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(env.dir, "router.db"), store.Options{SessionURI: env.url})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("KOUKAN_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	svc := router.New(cfg, st, builtin.New(builtin.Options{Config: cfg, Log: log}), log)
	api := svc.Handler()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			env.uploads.Add(1)
		}
		api.ServeHTTP(w, r)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-ran
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		svc.Shutdown(sctx)
		srv.Close()
		st.Close()
	})
	return env
}

// file writes a file in the env's directory and returns its path.
func (env *sendEnv) file(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(env.dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// send runs koukan send against the env's router.
func (env *sendEnv) send(args ...string) (int, string, string) {
	return runCapture(append([]string{"send", "--router", env.url}, args...)...)
}

// received waits for n finished transactions at the receiver, by recipient.
func (env *sendEnv) received(t *testing.T, n int) map[string]resttest.Received {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	all, err := env.recv.WaitFor(ctx, n)
	if err != nil {
		t.Fatalf("waiting for %d transactions at the receiver: %v (got %d)", n, err, len(env.recv.Transactions()))
	}
	by := map[string]resttest.Received{}
	for _, rx := range all {
		by[rx.Tx.RcptTo[0].Address] = rx
	}
	return by
}

// getJSON reads a transaction from the router.
func getJSON(t *testing.T, url string) map[string]any {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// queuedURLs are the transaction URLs of "rcpt: queued as URL" lines, by recipient.
func queuedURLs(out string) map[string]string {
	urls := map[string]string{}
	for line := range strings.Lines(out) {
		if rcpt, url, ok := strings.Cut(strings.TrimSpace(line), ": queued as "); ok {
			urls[rcpt] = url
		}
	}
	return urls
}

// A built message (text, HTML, an attachment) to two recipients: both get it, and the
// attachment is uploaded once, with the first transaction, and reused by the second.
func TestSendBuilderTwoRecipients(t *testing.T) {
	env := startSendEnv(t, nil)
	pdf := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte{0, 1, 2, 0xff, 0xfe}, 3000)...)
	report := env.file(t, "report.pdf", pdf)
	html := env.file(t, "body.html", []byte("<p>Attached: the <b>report</b>.</p>\n"))

	code, out, errOut := env.send("--from", "Alice Example <alice@example.com>",
		"--to", "bob@example.com", "--to", "Carol <carol@example.com>",
		"--subject", "Q3 report", "--text", "Attached: the report.", "--html", "@"+html, "--attach", report)
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	urls := queuedURLs(out)
	if len(urls) != 2 || urls["bob@example.com"] == "" || urls["carol@example.com"] == "" {
		t.Fatalf("want a queued line per recipient, got:\n%s", out)
	}
	got := env.received(t, 2)
	b64 := base64.StdEncoding.EncodeToString(pdf)
	for _, rcpt := range []string{"bob@example.com", "carol@example.com"} {
		rx, ok := got[rcpt]
		if !ok {
			t.Fatalf("the receiver got nothing for %s", rcpt)
		}
		msg := string(rx.Body)
		unfolded := strings.NewReplacer("\r\n", "").Replace(msg)
		for _, want := range []string{"Subject: Q3 report", "Alice Example <alice@example.com>", "bob@example.com, Carol <carol@example.com>",
			"text/html", "text/plain", `filename=report.pdf`, "Message-ID: <", "Date: "} {
			if !strings.Contains(msg, want) && !strings.Contains(unfolded, want) {
				t.Errorf("%s: the message lacks %q:\n%s", rcpt, want, msg)
			}
		}
		if !strings.Contains(unfolded, b64) {
			t.Errorf("%s: the attachment is not in the message", rcpt)
		}
		if rx.Tx.MailFrom.Address != "alice@example.com" || rx.Tx.DataResponse == nil || rx.Tx.DataResponse.Code != 250 {
			t.Errorf("%s: mail from %q, data %v", rcpt, rx.Tx.MailFrom.Address, rx.Tx.DataResponse)
		}
	}
	if n := env.uploads.Load(); n != 1 {
		t.Errorf("the router got %d uploads, want 1 (the attachment, once)", n)
	}
	// The second transaction's parts are the first one's blobs: the same ids, finalized
	// from the start, under its own URL.
	second := urls["carol@example.com"]
	if strings.HasPrefix(urls["bob@example.com"], second) {
		t.Fatalf("bob went to %s", second)
	}
	body, _ := getJSON(t, second)["body"].(map[string]any)
	mb, _ := body["message_builder"].(map[string]any)
	status, _ := mb["blob_status"].(map[string]any)
	for _, id := range []string{"inline0", "inline1", "attachment1"} {
		b, _ := status[id].(map[string]any)
		if b["finalized"] != true || !strings.HasPrefix(b["uri"].(string), second+"/blob/") {
			t.Errorf("second transaction's blob %s: %v (all: %v)", id, b, status)
		}
	}
}

// --raw sends a message file as it is, uploaded once; --wait prints each recipient's reply.
func TestSendRawWait(t *testing.T) {
	env := startSendEnv(t, nil)
	msg := "From: alice@example.com\r\nTo: bob@example.com\r\nSubject: raw\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <raw-1@example.com>\r\n\r\nhello raw\r\n"
	eml := env.file(t, "message.eml", []byte(msg))
	code, out, errOut := env.send("--from", "alice@example.com", "--to", "bob@example.com,dave@example.com", "--raw", eml, "--wait", "--timeout", "30s")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	for _, want := range []string{"bob@example.com: delivered: 250 ok", "dave@example.com: delivered: 250 ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	got := env.received(t, 2)
	for _, rcpt := range []string{"bob@example.com", "dave@example.com"} {
		if string(got[rcpt].Body) != msg {
			t.Errorf("%s got %q", rcpt, got[rcpt].Body)
		}
	}
	if n := env.uploads.Load(); n != 1 {
		t.Errorf("the router got %d uploads, want 1", n)
	}
	urls := queuedURLs(out)
	body, _ := getJSON(t, urls["dave@example.com"])["body"].(map[string]any)
	if bs, _ := body["blob_status"].(map[string]any); bs["finalized"] != true {
		t.Errorf("second transaction's body: %v", body)
	}
}

// --wait reports a 5xx from upstream per recipient and exits 1.
func TestSendWaitPermanentFailure(t *testing.T) {
	env := startSendEnv(t, func(req resttest.Request) resttest.Reply {
		if req.Phase == resttest.PhaseRcpt && req.Tx.RcptTo[req.Rcpt].Address == "nobody@example.com" {
			return resttest.Reply{Response: tx.Response{Code: 550, Message: "5.1.1 no such user"}}
		}
		return resttest.Reply{}
	})
	code, out, errOut := env.send("--from", "alice@example.com", "--to", "bob@example.com", "--to", "nobody@example.com",
		"--subject", "hi", "--text", "hello", "--wait")
	if code != 1 {
		t.Errorf("exit %d, want 1\nstderr: %s", code, errOut)
	}
	for _, want := range []string{"bob@example.com: delivered: 250 ok",
		"nobody@example.com: failed: 550 5.1.1 no such user (upstream rcpt_response permfail)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(errOut, "goroutine") || strings.Contains(errOut, "panic") {
		t.Errorf("stderr: %s", errOut)
	}
}

// --json prints one object per transaction with its URL and final responses.
func TestSendJSON(t *testing.T) {
	env := startSendEnv(t, func(req resttest.Request) resttest.Reply {
		if req.Phase == resttest.PhaseData && req.Tx.RcptTo[0].Address == "full@example.com" {
			return resttest.Reply{Response: tx.Response{Code: 552, Message: "5.2.2 mailbox full"}}
		}
		return resttest.Reply{}
	})
	code, out, errOut := env.send("--from", "alice@example.com", "--to", "bob@example.com,full@example.com",
		"--text", "hello", "--wait", "--json")
	if code != 1 {
		t.Errorf("exit %d, want 1 (one recipient failed)\nstderr: %s", code, errOut)
	}
	var reps []sendReport
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	for dec.More() {
		var r sendReport
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("%v in:\n%s", err, out)
		}
		reps = append(reps, r)
	}
	if len(reps) != 2 || strings.Count(out, "\n") != 2 {
		t.Fatalf("want two JSON lines, got:\n%s", out)
	}
	ok, full := reps[0], reps[1]
	if ok.To != "bob@example.com" || ok.Status != "delivered" || !strings.HasPrefix(ok.URL, env.url+"/transactions/") ||
		ok.MailResponse == nil || ok.RcptResponse == nil || ok.DataResponse == nil || ok.DataResponse.Code != 250 ||
		ok.FinalAttemptReason != tx.ReasonUpstreamSuccess || ok.AttemptCount != 1 {
		t.Errorf("bob: %+v", ok)
	}
	if full.To != "full@example.com" || full.Status != "failed" || full.DataResponse == nil || full.DataResponse.Code != 552 ||
		full.FinalAttemptReason != tx.ReasonUpstreamPermfail {
		t.Errorf("full: %+v", full)
	}

	// Without --wait: queued, with the URL.
	code, out, _ = env.send("--from", "alice@example.com", "--to", "bob@example.com", "--text", "hi", "--json")
	var r sendReport
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 || r.Status != "queued" || r.URL == "" {
		t.Errorf("without --wait: exit %d, %+v %v", code, r, err)
	}
}

// Errors say what is wrong, plainly.
func TestSendErrors(t *testing.T) {
	// A router that is not there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	code, out, errOut := runCapture("send", "--router", down, "--from", "a@example.com", "--to", "b@example.com", "--text", "hi")
	if code != 1 || out != "" || !strings.Contains(errOut, "cannot reach the router at "+down) || !strings.Contains(errOut, "connection refused") {
		t.Errorf("router down: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	env := startSendEnv(t, nil)
	code, _, errOut = env.send("--sender", "nosuch", "--from", "a@example.com", "--to", "b@example.com", "--text", "hi")
	if code != 1 || !strings.Contains(errOut, `the router answered 404 Not Found (unknown_sender): unknown sender "nosuch"`) {
		t.Errorf("unknown sender: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = env.send("--tag", "bulk", "--from", "a@example.com", "--to", "b@example.com", "--text", "hi")
	if code != 1 || !strings.Contains(errOut, `(unknown_tag): sender "submission" has no tag "bulk"`) {
		t.Errorf("unknown tag: exit %d, stderr %q", code, errOut)
	}
	missing := filepath.Join(env.dir, "missing.pdf")
	code, _, errOut = env.send("--from", "a@example.com", "--to", "b@example.com", "--attach", missing)
	if code != 1 || !strings.Contains(errOut, "cannot read "+missing+": no such file or directory") {
		t.Errorf("missing attachment: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = env.send("--from", "a@example.com", "--to", "b@example.com", "--text", "@"+missing)
	if code != 1 || !strings.Contains(errOut, "--text: cannot read "+missing) {
		t.Errorf("missing text file: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = env.send("--from", "a@example.com", "--to", "b@example.com", "--raw", env.dir)
	if code != 1 || !strings.Contains(errOut, "not a regular file") {
		t.Errorf("a directory as --raw: exit %d, stderr %q", code, errOut)
	}
	if n := len(env.recv.Transactions()); n != 0 {
		t.Errorf("the receiver got %d transactions from failed sends", n)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--to", "b@example.com", "--text", "hi"}, "--from is required"},
		{[]string{"--from", "a@example.com", "--text", "hi"}, "--to is required"},
		{[]string{"--from", "a@example.com", "--to", "b@example.com"}, "nothing to send"},
		{[]string{"--from", "a@example.com", "--to", "not an address", "--text", "hi"}, `--to "not an address"`},
		{[]string{"--from", "a@example.com", "--to", "b@example.com", "--raw", "x.eml", "--text", "hi"}, "cannot be combined"},
		{[]string{"--router", "127.0.0.1:8000", "--from", "a@example.com", "--to", "b@example.com", "--text", "hi"}, "--router"},
		{[]string{"--from", "a@example.com", "--to", "b@example.com", "--text", "hi", "extra"}, `unexpected argument "extra"`},
		{[]string{"--from", "a@example.com", "--to", "b@example.com", "--text", "hi", "--timeout", "1s"}, "give --wait too"},
	} {
		code, _, errOut := runCapture(append([]string{"send"}, c.args...)...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q, want %q", c.args, code, errOut, c.want)
		}
	}
}

// Large uploads draw a progress bar on stderr (on a terminal; forced here).
func TestSendProgress(t *testing.T) {
	env := startSendEnv(t, nil)
	progressAlways, progressMin = true, 1000
	defer func() { progressAlways, progressMin = false, 1<<20 }()
	big := env.file(t, "big.bin", bytes.Repeat([]byte("x"), 5000))
	small := env.file(t, "small.txt", []byte("tiny"))
	code, _, errOut := env.send("--from", "a@example.com", "--to", "b@example.com", "--attach", big, "--attach", small)
	if code != 0 || !strings.Contains(errOut, "big.bin [") || !strings.Contains(errOut, "100% 4.9 KiB of 4.9 KiB\n") || strings.Contains(errOut, "small.txt") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	rx := env.received(t, 1)["b@example.com"]
	if !strings.Contains(string(rx.Body), "filename=small.txt") || !strings.Contains(string(rx.Body), "Content-Type: text/plain") {
		t.Errorf("message: %s", rx.Body)
	}
}

// An attachment that claims to be text but is not UTF-8 goes as bytes.
func TestSendAttachmentType(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"notes.txt", []byte("caf\xe9\n"), "application/octet-stream"},
		{"notes2.txt", []byte("café\n"), "text/plain"},
		{"image", []byte("\x89PNG\r\n\x1a\n0000"), "image/png"},
		{"blob", []byte{0, 1, 2, 3}, "application/octet-stream"},
	} {
		p := filepath.Join(dir, c.name)
		os.WriteFile(p, c.data, 0o644)
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := contentType(f)
		rest, _ := io.ReadAll(f)
		f.Close()
		if err != nil || got != c.want || !bytes.Equal(rest, c.data) {
			t.Errorf("%s: %q %v (left at %d)", c.name, got, err, len(c.data)-len(rest))
		}
	}
	long := bytes.Repeat([]byte("é"), 100000) // runes across read boundaries
	if ok, err := isUTF8(bytes.NewReader(long)); !ok || err != nil {
		t.Errorf("isUTF8 of long text: %v %v", ok, err)
	}
	if ok, _ := isUTF8(bytes.NewReader(append(long, 0xc3))); ok {
		t.Errorf("isUTF8 of text cut in a rune: true")
	}
}

// Behind API keys, koukan send needs its sender's key, from --api-key-file or
// $KOUKAN_API_KEY_FILE; without one it prints the router's refusal, sends nothing and exits 1.
func TestSendAPIKey(t *testing.T) {
	t.Setenv(apiKeyFileEnv, "")
	base, appKey, _ := startKeyedRouter(t)
	status, msg := refusal(t, "POST", base+"/senders/app/transactions", "")
	if status != http.StatusUnauthorized {
		t.Fatalf("the router answers a create without a key with %d", status)
	}
	args := []string{"send", "--router", base, "--sender", "app", "--from", "alice@example.com", "--to", "bob@fast.example", "--text", "hello", "--wait"}
	code, out, errOut := runCapture(args...)
	if want := "koukan send: the router answered 401 Unauthorized (unauthorized): " + msg + "; nothing was sent\n"; code != 1 || out != "" || errOut != want {
		t.Errorf("without a key: exit %d %q %q, want %q", code, out, errOut, want)
	}
	code, out, errOut = runCapture(append(args, "--api-key-file", appKey)...)
	if code != 0 || !strings.Contains(out, "bob@fast.example: delivered: 250") {
		t.Errorf("with --api-key-file: exit %d %q %q", code, out, errOut)
	}
	t.Setenv(apiKeyFileEnv, appKey)
	code, out, errOut = runCapture(args...)
	if code != 0 || !strings.Contains(out, "bob@fast.example: delivered: 250") {
		t.Errorf("with $%s: exit %d %q %q", apiKeyFileEnv, code, out, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	if err := os.WriteFile(bad, []byte("two words\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCapture(append(args, "--api-key-file", bad)...)
	if code != 1 || !strings.Contains(errOut, bad+" should hold one API key on one line") {
		t.Errorf("a key file with two words: exit %d %q", code, errOut)
	}
}
