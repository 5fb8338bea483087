package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/admin"
	"github.com/koukan/koukan/engine/rest/resttest"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/tx"
)

// queueRouterConfig is a router whose app sender retries temporary failures an hour later,
// delivering to a REST receiver.
const queueRouterConfig = `
rest_listener:
  addr: ["127.0.0.1", %[1]d]
  session_uri: http://127.0.0.1:%[1]d
%[3]sstorage:
  url: sqlite:///router.db
sender:
  - name: app
    output_chain: out
    retry: output_chain
endpoint:
  - name: out
    output_handler:
      retry_params: {max_attempts: 10, min_attempt_time: 3600, max_attempt_time: 7200, backoff_factor: 1}
    chain:
      - filter: rest_output
        static_endpoint: %[2]s
        rcpt_timeout: 5
        data_timeout: 5
`

// startQueueRouter runs the router as koukan router does (startRouter) on a free port;
// the receiver behind it refuses recipients at slow.example with 451. apiKeys, unless "",
// are the lines of its rest_listener's api_keys_file.
func startQueueRouter(t *testing.T, apiKeys string) string {
	t.Helper()
	recv := resttest.NewReceiver(resttest.Options{Respond: func(r resttest.Request) resttest.Reply {
		if r.Phase == resttest.PhaseRcpt && strings.HasSuffix(r.Tx.RcptTo[r.Rcpt].Address, "@slow.example") {
			return resttest.Reply{Response: tx.Response{Code: 451, Message: "4.3.0 try again later"}}
		}
		return resttest.Reply{}
	}})
	t.Cleanup(recv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	keys := ""
	if apiKeys != "" {
		keys = "  api_keys_file: " + filepath.Join(dir, "api_keys") + "\n"
		if err := os.WriteFile(filepath.Join(dir, "api_keys"), []byte(apiKeys), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "router.yaml")
	if err := os.WriteFile(path, fmt.Appendf(nil, queueRouterConfig, port, recv.URL(), keys), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir) // sqlite:///router.db is relative to the working directory
	cfg, _, err := config.LoadRouter(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	failed := make(chan error, 2)
	r, err := startRouter(ctx, cfg, slog.New(slog.DiscardHandler), nil, failed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		r.shutdown()
	})
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// queuePost creates a transaction to rcpt, with the key in keyFile unless it is "", and
// returns its id.
func queuePost(t *testing.T, base, rcpt, keyFile string) string {
	t.Helper()
	res := apiRequest(t, "POST", base+"/senders/app/transactions", keyFile,
		`{"mail_from":{"m":"alice@example.com"},"rcpt_to":[{"m":"`+rcpt+`"}],"body":{"inline":"Subject: hi\r\n\r\nhello\r\n"}}`)
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("POST: %d", res.StatusCode)
	}
	loc := res.Header.Get("Location")
	return loc[strings.LastIndexByte(loc, '/')+1:]
}

// queueWait runs koukan queue show until the transaction is in state after at least
// attempts attempts.
func queueWait(t *testing.T, base, id string, state store.State, attempts int) admin.DetailView {
	t.Helper()
	var d admin.DetailView
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		code, out, errOut := runCapture("queue", "show", id, "--json", "--router", base)
		if code != 0 {
			t.Fatalf("queue show: exit %d %s", code, errOut)
		}
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatalf("queue show --json: %v: %q", err, out)
		}
		if d.State == state && d.Attempts >= attempts {
			return d
		}
	}
	t.Fatalf("%s is %s after %d attempts, want %s after %d", id, d.State, d.Attempts, state, attempts)
	return d
}

func TestQueueCommand(t *testing.T) {
	base := startQueueRouter(t, "")
	q := func(args ...string) (int, string, string) {
		return runCapture(append(append([]string{"queue"}, args...), "--router", base)...)
	}
	if code, out, _ := q("ls"); code != 0 || out != "no transactions\n" {
		t.Errorf("ls of an empty queue: %d %q", code, out)
	}
	slow := queuePost(t, base, "bob@slow.example", "")
	fast := queuePost(t, base, "carol@fast.example", "")
	queueWait(t, base, slow, store.StateDeferred, 1)
	queueWait(t, base, fast, store.StateDelivered, 1)

	code, out, errOut := q("ls")
	if code != 0 || !strings.HasPrefix(out, "ID ") || !strings.Contains(out, "LAST REPLY") {
		t.Fatalf("ls: %d %q %s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], fast+" ") || !strings.HasPrefix(lines[2], slow+" ") {
		t.Errorf("ls lines, want the header then newest first:\n%s", out)
	}
	for _, want := range []string{"deferred", "delivered", "bob@slow.example", "451 4.3.0 try again later (rcpt)"} {
		if !strings.Contains(out, want) {
			t.Errorf("ls lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(lines[2], " in ") {
		t.Errorf("ls shows no next attempt for the deferred transaction: %q", lines[2])
	}
	if code, out, _ := q("ls", "--state", "deferred", "--domain", "SLOW.example"); code != 0 || !strings.Contains(out, slow) || strings.Contains(out, fast) {
		t.Errorf("ls --state deferred --domain: %d\n%s", code, out)
	}
	code, out, _ = q("ls", "--limit", "1")
	if code != 0 || !strings.Contains(out, fast) || strings.Contains(out, slow) || !strings.Contains(out, "more: koukan queue ls --cursor ") {
		t.Fatalf("ls --limit 1: %d\n%s", code, out)
	}
	cursor := strings.Fields(out[strings.Index(out, "--cursor "):])[1]
	if code, out, _ := q("ls", "--limit", "1", "--cursor", cursor); code != 0 || !strings.Contains(out, slow) || strings.Contains(out, "more:") {
		t.Errorf("ls of the second page: %d\n%s", code, out)
	}
	var page admin.ListView
	if code, out, _ := q("ls", "--json"); code != 0 || json.Unmarshal([]byte(out), &page) != nil || len(page.Transactions) != 2 {
		t.Errorf("ls --json: %d %q", code, out)
	}

	if code, out, _ := q("show", slow); code != 0 || !strings.Contains(out, "state:         deferred") ||
		!strings.Contains(out, "attempt 1, started") || !strings.Contains(out, "  rcpt  451 4.3.0 try again later") {
		t.Errorf("show: %d\n%s", code, out)
	}
	if code, _, errOut := q("retry", fast); code != 1 || !strings.Contains(errOut, "koukan queue retry: the transaction is final") {
		t.Errorf("retry of a delivered transaction: %d %q", code, errOut)
	}
	if code, out, errOut := q("retry", slow); code != 0 || !strings.HasPrefix(out, slow+": ") {
		t.Errorf("retry: %d %q %s", code, out, errOut)
	}
	queueWait(t, base, slow, store.StateDeferred, 2) // tried again at once: the receiver still says 451
	if code, out, errOut := q("cancel", slow, fast, "nope"); code != 1 || !strings.Contains(out, slow+": cancelled") ||
		!strings.Contains(out, fast+": delivered") || !strings.Contains(errOut, "nope: unknown transaction") || !strings.Contains(errOut, "1 of 3 failed") {
		t.Errorf("cancel of three: %d %q %q", code, out, errOut)
	}

	if code, out, _ := q("domains"); code != 0 || out != "no domain is suspended\n" {
		t.Errorf("domains: %d %q", code, out)
	}
	if code, out, errOut := q("suspend", "Example.ORG"); code != 0 || !strings.HasPrefix(out, "example.org: suspended since ") {
		t.Errorf("suspend: %d %q %s", code, out, errOut)
	}
	if code, out, _ := q("domains"); code != 0 || !strings.Contains(out, "DOMAIN") || !strings.Contains(out, "example.org") {
		t.Errorf("domains: %d %q", code, out)
	}
	if code, out, _ := q("resume", "example.org"); code != 0 || out != "example.org: resumed\n" {
		t.Errorf("resume: %d %q", code, out)
	}
	if code, _, errOut := q("resume", "example.org"); code != 1 || errOut != "koukan queue resume: example.org is not suspended\n" {
		t.Errorf("resume of a domain not suspended: %d %q", code, errOut)
	}
	if code, _, errOut := q("ls", "--state", "lost"); code != 1 || !strings.Contains(errOut, `state: "lost" is not a state`) {
		t.Errorf("ls with a bad state: %d %q", code, errOut)
	}
	// Flags after the arguments, and ids that start with "-" (base64url), with -- or not.
	if code, out, _ := runCapture("queue", "show", slow, "--router", base, "--json"); code != 0 || !strings.HasPrefix(out, "{") {
		t.Errorf("show ID --router URL --json: %d %q", code, out)
	}
	for _, args := range [][]string{{"show", "-abc", "--router=" + base}, {"show", "--router", base, "--", "-abc"}, {"retry", "--abc", "--router", base}} {
		if code, _, errOut := runCapture(append([]string{"queue"}, args...)...); code != 1 || !strings.Contains(errOut, "unknown transaction") {
			t.Errorf("%q: %d %q, want the router's unknown transaction", args, code, errOut)
		}
	}
}

func TestQueueUsage(t *testing.T) {
	for _, args := range [][]string{
		{"queue"}, {"queue", "frob"}, {"queue", "show"}, {"queue", "show", "a", "b"}, {"queue", "ls", "extra"},
		{"queue", "retry"}, {"queue", "suspend"}, {"queue", "ls", "--state"}, {"queue", "show", "x", "--state", "due"},
		{"queue", "ls", "--router", "ftp://example.com"},
	} {
		if code, _, errOut := runCapture(args...); code != 2 || errOut == "" {
			t.Errorf("%q: exit %d %q, want 2 and a message", args, code, errOut)
		}
	}
	if code, out, _ := runCapture("queue", "ls", "--help"); code != 0 || !strings.Contains(out, "Usage: koukan queue") || !strings.Contains(out, "-state") {
		t.Errorf("queue ls --help: %d %q", code, out)
	}
	code, _, errOut := runCapture("queue", "ls", "--router", "http://127.0.0.1:1")
	if code != 1 || !strings.Contains(errOut, "did not answer") {
		t.Errorf("an unreachable router: %d %q", code, errOut)
	}
}

// apiRequest sends a request to the router, with the key in keyFile unless it is "", and a
// JSON body unless body is "".
func apiRequest(t *testing.T, method, url, keyFile, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if keyFile != "" {
		key, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(key)))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// refusal is the status and problem message the router answers a request with, for
// comparing with what a command prints.
func refusal(t *testing.T, method, url, keyFile string) (int, string) {
	t.Helper()
	res := apiRequest(t, method, url, keyFile, "")
	defer res.Body.Close()
	var p struct{ Error struct{ Message string } }
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil || p.Error.Message == "" {
		t.Fatalf("%s %s: %d without a problem body (%v)", method, url, res.StatusCode, err)
	}
	return res.StatusCode, p.Error.Message
}

// mintKey makes a key with koukan apikey new (args: --sender NAME or --admin NAME) into a new
// file in dir, and returns the file and its api_keys_file line.
func mintKey(t *testing.T, dir, name string, args ...string) (file, line string) {
	t.Helper()
	file = filepath.Join(dir, name)
	code, out, errOut := runCapture(append([]string{"apikey", "new", "--key-out", file}, args...)...)
	if code != 0 {
		t.Fatalf("apikey new %q: exit %d %s", args, code, errOut)
	}
	return file, out
}

// startKeyedRouter is startQueueRouter with API keys: it returns the router's URL and the
// key files of its app sender and of an admin.
func startKeyedRouter(t *testing.T) (base, appKey, adminKey string) {
	t.Helper()
	dir := t.TempDir()
	appKey, appLine := mintKey(t, dir, "app.key", "--sender", "app")
	adminKey, adminLine := mintKey(t, dir, "admin.key", "--admin", "ops")
	return startQueueRouter(t, appLine+adminLine), appKey, adminKey
}

// Behind API keys, koukan queue needs an admin key, from --api-key-file or
// $KOUKAN_API_KEY_FILE; without one it prints the router's refusal and exits 1.
func TestQueueAPIKey(t *testing.T) {
	t.Setenv(apiKeyFileEnv, "")
	base, appKey, adminKey := startKeyedRouter(t)
	status, msg := refusal(t, "GET", base+"/admin/transactions", "")
	if status != http.StatusUnauthorized {
		t.Fatalf("the router answers a request without a key with %d", status)
	}
	if code, out, errOut := runCapture("queue", "ls", "--router", base); code != 1 || out != "" || errOut != "koukan queue ls: "+msg+"\n" {
		t.Errorf("ls without a key: exit %d %q %q, want the router's %q", code, out, errOut, msg)
	}
	status, msg = refusal(t, "GET", base+"/admin/domains", appKey)
	if status != http.StatusForbidden {
		t.Fatalf("the router answers an admin request with a sender's key with %d", status)
	}
	if code, _, errOut := runCapture("queue", "domains", "--router", base, "--api-key-file", appKey); code != 1 || errOut != "koukan queue domains: "+msg+"\n" {
		t.Errorf("domains with a sender's key: exit %d %q, want the router's %q", code, errOut, msg)
	}
	if code, out, errOut := runCapture("queue", "ls", "--router", base, "--api-key-file", adminKey); code != 0 || out != "no transactions\n" {
		t.Errorf("ls with the admin key: exit %d %q %q", code, out, errOut)
	}
	id := queuePost(t, base, "bob@slow.example", appKey)
	t.Setenv(apiKeyFileEnv, adminKey)
	if code, out, errOut := runCapture("queue", "cancel", id, "--router", base); code != 0 || out != id+": cancelled\n" {
		t.Errorf("cancel with the admin key from $%s: exit %d %q %q", apiKeyFileEnv, code, out, errOut)
	}
	// The flag wins over the variable.
	if code, _, errOut := runCapture("queue", "ls", "--router", base, "--api-key-file", appKey); code != 1 || errOut != "koukan queue ls: "+msg+"\n" {
		t.Errorf("ls with --api-key-file of a sender's key over $%s: exit %d %q", apiKeyFileEnv, code, errOut)
	}
	if code, _, errOut := runCapture("queue", "ls", "--router", base, "--api-key-file", filepath.Join(t.TempDir(), "nope")); code != 1 ||
		!strings.Contains(errOut, "nope: no such file") {
		t.Errorf("a key file that does not exist: exit %d %q", code, errOut)
	}
}
