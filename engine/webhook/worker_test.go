package webhook

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/metrics"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/store/sqlite"
)

var secret = config.Secret("worker-test-secret")

// receiver is a webhook on loopback that checks signatures and records what arrives; answer
// decides the reply to each POST (nil: 204).
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	got    []Event // in arrival order, redeliveries included
	answer func(ev Event, n int) int
}

func newReceiver(t *testing.T, answer func(ev Event, n int) int) *receiver {
	r := &receiver{t: t, answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := Verify(secret, req.Header.Get(HeaderTimestamp), body, req.Header.Get(HeaderSignature), time.Now(), time.Minute); err != nil {
			t.Errorf("POST %s: %v", body, err)
		}
		var ev Event
		if err := json.Unmarshal(body, &ev); err != nil || ev.ID != req.Header.Get(HeaderID) || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("POST %s with headers %v: %v", body, req.Header, err)
		}
		r.mu.Lock()
		r.got = append(r.got, ev)
		n := 0
		for _, g := range r.got {
			if g.ID == ev.ID {
				n++
			}
		}
		r.mu.Unlock()
		status := http.StatusNoContent
		if r.answer != nil {
			status = r.answer(ev, n)
		}
		if status == 0 { // hang until the client gives up
			<-req.Context().Done()
			return
		}
		if status/100 == 3 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func openStore(t *testing.T) store.Store {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "koukan.db"), store.Options{SessionURI: "http://worker-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// queue records an attempt of a new transaction restID that reports events with ids.
func queue(t *testing.T, st store.Store, sender, restID string, ids ...string) {
	t.Helper()
	var events []store.NewWebhookEvent
	for _, id := range ids {
		payload, err := Event{ID: id, Type: Delivered, Time: time.Now(), Transaction: restID, Sender: sender}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, store.NewWebhookEvent{ID: id, RestID: restID, Sender: sender, Payload: payload})
	}
	ctx := context.Background()
	if _, err := st.Create(ctx, store.NewTx{RestID: restID, JSON: []byte(`{}`), Leased: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.StartAttempt(ctx, restID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.FinishAttempt(ctx, restID, store.Finish{Events: events}); err != nil {
		t.Fatal(err)
	}
}

// run starts a worker with fast retries for the hooks by sender name.
func run(t *testing.T, st store.Store, hooks map[string]*config.Webhook) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var log io.Writer = io.Discard
	if os.Getenv("KOUKAN_TEST_LOG") != "" {
		log = os.Stderr
	}
	w := New(Options{Store: st, Hook: func(sender, _ string) *config.Webhook { return hooks[sender] },
		Log: slog.New(slog.NewTextHandler(log, nil)), Poll: 20 * time.Millisecond, RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// eventually polls cond for up to 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func finished(t *testing.T, st store.Store, restID string) []store.WebhookEvent {
	evs, err := st.WebhookEvents(context.Background(), restID)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Finished.IsZero() {
			return nil
		}
	}
	return evs
}

// counted reads koukan_webhook_events_total for sender and result from the registry.
func counted(t *testing.T, sender, result string) float64 {
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "koukan_webhook_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["sender"] == sender && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// Events are POSTed signed, a failure is retried after a backoff, and a transaction's
// events arrive in order, the next only once the one before is delivered.
func TestWorkerDeliversInOrder(t *testing.T) {
	st := openStore(t)
	r := newReceiver(t, func(ev Event, n int) int {
		if ev.ID == "a1" && n == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	delivered := counted(t, "app", "delivered")
	failed := counted(t, "app", "failed")
	queue(t, st, "app", "a", "a1", "a2", "a3")
	queue(t, st, "app", "b", "b1")
	run(t, st, map[string]*config.Webhook{"app": {URL: r.srv.URL, Secret: secret, Timeout: 5 * time.Second, MaxAge: time.Hour}})

	var a []store.WebhookEvent
	eventually(t, "a's events delivered", func() bool { a = finished(t, st, "a"); return a != nil && finished(t, st, "b") != nil })
	var order []string
	for _, ev := range r.events() {
		if ev.Transaction == "a" {
			order = append(order, ev.ID)
		}
	}
	if want := []string{"a1", "a1", "a2", "a3"}; !slices.Equal(order, want) {
		t.Errorf("a's events arrived as %q, want %q", order, want)
	}
	for _, ev := range a {
		if !ev.Delivered() {
			t.Errorf("%s: %+v, want delivered", ev.ID, ev)
		}
	}
	if a[0].Attempts != 2 || a[0].LastError != "HTTP 503 Service Unavailable" {
		t.Errorf("a1 = %+v, want 2 attempts after a 503", a[0])
	}
	if d := counted(t, "app", "delivered") - delivered; d != 4 {
		t.Errorf("delivered counter moved by %v, want 4", d)
	}
	if d := counted(t, "app", "failed") - failed; d != 1 {
		t.Errorf("failed counter moved by %v, want 1", d)
	}
}

// A webhook that does not answer in time, or redirects, is retried until max_age; then the
// event is dropped with the reason. Events of a sender without a webhook are dropped.
func TestWorkerTimeoutRedirectAndDrop(t *testing.T) {
	st := openStore(t)
	r := newReceiver(t, func(ev Event, n int) int {
		switch ev.ID {
		case "slow":
			return 0
		case "moved":
			return http.StatusFound
		}
		return http.StatusOK
	})
	queue(t, st, "app", "t", "slow", "after-slow")
	queue(t, st, "app", "u", "moved")
	queue(t, st, "gone", "v", "orphan")
	run(t, st, map[string]*config.Webhook{"app": {URL: r.srv.URL, Secret: secret, Timeout: 300 * time.Millisecond, MaxAge: 1500 * time.Millisecond}})

	var tEvents, uEvents, vEvents []store.WebhookEvent
	eventually(t, "events finished", func() bool {
		tEvents, uEvents, vEvents = finished(t, st, "t"), finished(t, st, "u"), finished(t, st, "v")
		return tEvents != nil && uEvents != nil && vEvents != nil
	})
	slow := tEvents[0]
	if slow.Delivered() || !strings.Contains(slow.Dropped, "max_age") || !strings.Contains(slow.Dropped, "no answer within the timeout (300ms)") || slow.Attempts < 2 {
		t.Errorf("slow = %+v, want dropped after timeouts", slow)
	}
	// The event behind it waited for it, then went, or expired unsent if it had waited as
	// long.
	after := tEvents[1]
	if after.Finished.Before(slow.Finished) || !after.Delivered() && !strings.Contains(after.Dropped, "max_age") {
		t.Errorf("after-slow = %+v, want delivered or expired after slow = %+v", after, slow)
	}
	if moved := uEvents[0]; moved.Delivered() || !strings.Contains(moved.Dropped, "HTTP 302 Found") {
		t.Errorf("moved = %+v, want dropped after redirects", moved)
	}
	if orphan := vEvents[0]; orphan.Delivered() || orphan.Dropped != "the sender has no webhook in the config" {
		t.Errorf("orphan = %+v", orphan)
	}
	for _, ev := range r.events() {
		if ev.ID == "orphan" || ev.ID == "after-slow" && !after.Delivered() {
			t.Errorf("a dropped event was sent: %+v", ev)
		}
	}
}
