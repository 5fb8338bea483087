package tests

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/koukan/koukan/engine/rest/resttest"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/store/backends"
	"github.com/koukan/koukan/engine/tx"
)

// webhookConfig is a router whose sender "app" delivers to a REST receiver, with retries
// (3 attempts, a second apart), DSNs (as sender "bounces", to the same receiver) and a
// webhook.
const webhookConfig = `
global:
  mailer_daemon_mailbox: mailer-daemon@example.com
rest_listener:
  addr: [127.0.0.1, {{.Port}}]
  session_uri: http://127.0.0.1:{{.Port}}
storage:
  url: "{{.Storage}}"
  session_refresh_interval: 1
scripts:
  reload: false
sender:
  - name: app
    output_chain: out
    retry: output_chain
    notification: output_chain
    webhook:
      url: {{.Hook}}
      secret_file: webhook.key
      timeout: 2
  - name: bounces
    output_chain: bounces
endpoint:
  - name: out
    output_handler:
      retry_params: {max_attempts: 3, min_attempt_time: 1, max_attempt_time: 1, backoff_factor: 1}
      notification: {sender: bounces}
    chain:
      - {filter: rest_output, static_endpoint: "{{.Upstream}}", rcpt_timeout: 10, data_timeout: 10}
  - name: bounces
    chain:
      - {filter: rest_output, static_endpoint: "{{.Upstream}}", rcpt_timeout: 10, data_timeout: 10}
`

// The kinds of recipient the upstream scripts, and the events each one's transaction owes.
var webhookKinds = map[string][]string{
	"ok":    {"delivered"},
	"temp":  {"deferred", "delivered"},                      // 450 once, then 250
	"perm":  {"failed", "dsn_sent"},                         // 550
	"stuck": {"deferred", "deferred", "failed", "dsn_sent"}, // 450 until max_attempts
}

// hookMode is what the webhook receiver does with a POST.
type hookMode int

const (
	hookOK   hookMode = iota // 200
	hookFail                 // 503
	hookHold                 // takes the event, then answers only once released (never, to a killed router)
)

// arrival is an event as the webhook received it.
type arrival struct {
	ID, Transaction, Type string
	Attempt               int
}

// hookReceiver is the application's webhook: it checks each POST's signature the way
// docs/webhooks.md tells receivers to, and records what it took.
type hookReceiver struct {
	t       *testing.T
	secret  []byte
	url     string
	mu      sync.Mutex
	mode    hookMode
	got     []arrival // in arrival order, redeliveries included
	refused int
	release chan struct{}
}

func startHookReceiver(t *testing.T, secret []byte) *hookReceiver {
	h := &hookReceiver{t: t, secret: secret, release: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() {
		h.unhold()
		srv.Close()
	})
	h.url = "http://" + ln.Addr().String() + "/hooks/koukan"
	return h
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	ts := r.Header.Get("Koukan-Timestamp")
	mac := hmac.New(sha256.New, h.secret)
	mac.Write([]byte(ts + "." + string(body)))
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	sec, _ := strconv.ParseInt(ts, 10, 64)
	if !hmac.Equal([]byte(r.Header.Get("Koukan-Signature")), []byte(want)) || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		h.t.Errorf("bad signature on %s (timestamp %s)", body, ts)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev arrival
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != r.Header.Get("Koukan-Event-Id") {
		h.t.Errorf("event %s with id header %q: %v", body, r.Header.Get("Koukan-Event-Id"), err)
	}
	h.mu.Lock()
	mode, release := h.mode, h.release
	if mode == hookFail {
		h.refused++
	} else {
		h.got = append(h.got, ev)
	}
	h.mu.Unlock()
	switch mode {
	case hookFail:
		http.Error(w, "try later", http.StatusServiceUnavailable)
	case hookHold:
		<-release
	}
}

func (h *hookReceiver) set(m hookMode) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mode = m
}

// unhold lets held POSTs answer (to a router that is gone).
func (h *hookReceiver) unhold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.release:
	default:
		close(h.release)
	}
}

func (h *hookReceiver) counts() (arrived, refused int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got), h.refused
}

func (h *hookReceiver) arrivals() []arrival {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// A sender's webhook gets every event of its transactions' outcomes, signed and in order per
// transaction, across a webhook outage and router restarts (SIGTERM, and kill -9 while a POST
// is in flight): none is lost, and the only duplicates are redeliveries of one event id.
func TestWebhookDeliveryAcrossRestarts(t *testing.T) {
	eachBackend(t, func(t *testing.T, storage string) {
		dir := t.TempDir()
		secret := []byte(strings.ToLower(rand.Text()))
		writeFile(t, filepath.Join(dir, "webhook.key"), append(secret, '\n'))
		hook := startHookReceiver(t, secret)

		var mu sync.Mutex
		rcpts := map[string]int{}
		upstream := resttest.NewReceiver(resttest.Options{Respond: func(req resttest.Request) resttest.Reply {
			if req.Phase != resttest.PhaseRcpt {
				return resttest.Reply{}
			}
			addr := req.Tx.RcptTo[req.Rcpt].Address
			mu.Lock()
			rcpts[addr]++
			n := rcpts[addr]
			mu.Unlock()
			switch kind, _, _ := strings.Cut(addr, "-"); {
			case kind == "temp" && n == 1:
				return resttest.Reply{Response: tx.Response{Code: 450, Message: "4.2.1 mailbox busy"}}
			case kind == "perm":
				return resttest.Reply{Response: tx.Response{Code: 550, Message: "5.1.1 no such user"}}
			case kind == "stuck":
				return resttest.Reply{Response: tx.Response{Code: 450, Message: "4.4.1 no answer"}}
			}
			return resttest.Reply{}
		}})
		t.Cleanup(upstream.Close)

		port := freePort(t)
		api := fmt.Sprintf("http://127.0.0.1:%d", port)
		var cfg strings.Builder
		if err := template.Must(template.New("router").Parse(webhookConfig)).Execute(&cfg, map[string]any{
			"Port": port, "Storage": storage, "Hook": hook.url, "Upstream": upstream.URL(),
		}); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "router.yaml"), []byte(cfg.String()))
		if r := runKoukan(t, dir, "check", "router.yaml"); r.code != 0 {
			t.Fatalf("koukan check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		var runs []*server
		start := func() {
			runs = append(runs, startServer(t, dir, api+"/openapi.json", "router", "--config", "router.yaml"))
		}
		t.Cleanup(func() {
			if t.Failed() {
				for i, s := range runs {
					if s.cmd.ProcessState == nil {
						s.stop(t)
					}
					t.Logf("router run %d:\n%s", i+1, s.out)
				}
			}
		})
		start()

		kind := map[string]string{} // transaction -> kind
		send := func(round int) []string {
			var ids []string
			for _, k := range slices.Sorted(maps.Keys(webhookKinds)) {
				body := fmt.Sprintf(`{"mail_from":{"m":"sender@example.com"},"rcpt_to":[{"m":"%s-%d@example.com"}],"body":{"inline":"Subject: hi\r\n\r\nhello\r\n"}}`, k, round)
				res, got := request(t, "POST", api+"/senders/app/transactions", body, "Content-Type", "application/json")
				if res.StatusCode != 201 {
					t.Fatalf("POST: %d %s", res.StatusCode, got)
				}
				id := path.Base(res.Header.Get("Location"))
				kind[id] = k
				ids = append(ids, id)
			}
			return ids
		}
		// waitFinal waits until every transaction has a final reason (and so its DSN, which is
		// sent before the attempt lets go of the transaction, if it owes one).
		waitFinal := func(ids []string) {
			for _, id := range ids {
				if !untilFor(60*time.Second, func() bool {
					_, body := request(t, "GET", api+"/transactions/"+id, "")
					return strings.Contains(body, `"final_attempt_reason"`)
				}) {
					t.Fatalf("transaction %s (%s) is not final", id, kind[id])
				}
			}
		}
		// byTx groups arrivals by transaction.
		byTx := func() map[string][]arrival {
			out := map[string][]arrival{}
			for _, a := range hook.arrivals() {
				out[a.Transaction] = append(out[a.Transaction], a)
			}
			return out
		}
		typesOf := func(as []arrival) []string {
			var out []string
			for _, a := range as {
				out = append(out, a.Type)
			}
			return out
		}

		// Round 1: the webhook is up; each transaction's events arrive once, in order.
		first := send(1)
		waitFinal(first)
		if !untilFor(30*time.Second, func() bool {
			got := byTx()
			for _, id := range first {
				if len(got[id]) < len(webhookKinds[kind[id]]) {
					return false
				}
			}
			return true
		}) {
			t.Fatalf("round 1: the webhook got %+v", byTx())
		}
		got := byTx()
		for _, id := range first {
			if want := webhookKinds[kind[id]]; !slices.Equal(typesOf(got[id]), want) {
				t.Errorf("round 1, %s (%s): got %q, want %q", id, kind[id], typesOf(got[id]), want)
			}
		}

		// Round 2: the webhook fails while the transactions run; their events wait.
		hook.set(hookFail)
		second := send(2)
		waitFinal(second)
		if !untilFor(30*time.Second, func() bool { _, refused := hook.counts(); return refused >= 4 }) {
			t.Fatalf("the failing webhook was tried less than 4 times")
		}
		// A clean restart with events pending; the new run tries them too.
		if code := runs[len(runs)-1].stop(t); code != 0 {
			t.Fatalf("router exit %d after SIGTERM", code)
		}
		_, refused := hook.counts()
		start()
		if !untilFor(60*time.Second, func() bool { _, r := hook.counts(); return r > refused }) {
			t.Fatalf("the restarted router sent nothing")
		}
		// The webhook takes events and never answers; the router dies with them in flight.
		hook.set(hookHold)
		arrived, _ := hook.counts()
		if !untilFor(60*time.Second, func() bool { a, _ := hook.counts(); return a > arrived }) {
			t.Fatalf("no event reached the held webhook")
		}
		last := runs[len(runs)-1]
		last.cmd.Process.Kill()
		last.cmd.Wait()
		hook.unhold()
		hook.set(hookOK)
		start()

		// After recovery, every recorded event arrives.
		all := append(first, second...)
		loc, err := store.ParseURL(storage)
		if err != nil {
			t.Fatal(err)
		}
		if loc.Backend == store.SQLite {
			loc.Path = filepath.Join(dir, loc.Path)
		}
		st, err := backends.Open(context.Background(), loc, store.Options{SessionURI: "http://webhook-test-inspector"})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		recorded := map[string][]store.WebhookEvent{}
		if !untilFor(90*time.Second, func() bool {
			for _, id := range all {
				evs, err := st.WebhookEvents(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				recorded[id] = evs
				for _, ev := range evs {
					if ev.Finished.IsZero() {
						return false
					}
				}
			}
			return true
		}) {
			t.Fatalf("events still pending: %+v", recorded)
		}

		got = byTx()
		duplicates := 0
		for _, id := range all {
			want := webhookKinds[kind[id]]
			var wantIDs []string
			for _, ev := range recorded[id] {
				if !ev.Delivered() {
					t.Errorf("%s (%s): event %s was not delivered: %+v", id, kind[id], ev.ID, ev)
				}
				wantIDs = append(wantIDs, ev.ID)
			}
			// Arrivals follow the recorded order: a redelivery may repeat the latest event,
			// never go back to an earlier one.
			var firstSeen []string
			pos := -1
			for _, a := range got[id] {
				i := slices.Index(wantIDs, a.ID)
				switch {
				case i < 0:
					t.Errorf("%s: event %s arrived but was never recorded", id, a.ID)
				case i < pos:
					t.Errorf("%s: event %s arrived after a later one: %+v", id, a.ID, got[id])
				case i == pos:
					duplicates++
					t.Logf("%s: event %s (%s) arrived again (at-least-once)", id, a.ID, a.Type)
				default:
					pos = i
					firstSeen = append(firstSeen, a.ID)
				}
			}
			if !slices.Equal(firstSeen, wantIDs) {
				t.Errorf("%s (%s): arrived %q, recorded %q", id, kind[id], firstSeen, wantIDs)
			}
			var types []string
			for _, ev := range recorded[id] {
				var e arrival
				if err := json.Unmarshal(ev.Payload, &e); err != nil {
					t.Fatal(err)
				}
				types = append(types, e.Type)
			}
			if !slices.Equal(types, want) {
				t.Errorf("%s (%s): recorded %q, want %q", id, kind[id], types, want)
			}
		}
		arrived, refused = hook.counts()
		t.Logf("%s: %d POSTs taken (%d duplicates), %d refused", loc.Backend, arrived, duplicates, refused)
		if duplicates == 0 {
			t.Errorf("the event in flight when the router was killed was not sent again")
		}
		if code := runs[len(runs)-1].stop(t); code != 0 {
			t.Errorf("router exit %d after SIGTERM", code)
		}
	})
}

// untilFor polls cond every 50 ms for up to d; false if it never held.
func untilFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
