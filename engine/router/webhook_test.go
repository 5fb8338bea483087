package router

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/builtin"
	"github.com/koukan/koukan/engine/rest/resttest"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/tx"
	"github.com/koukan/koukan/engine/webhook"
)

// A sender's webhook gets an event per attempt outcome and DSN, signed, in order per
// transaction, with the remote server's reply; a sender without one gets none.
func TestWebhookEvents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		var busy atomic.Int32
		recv := resttest.NewReceiver(resttest.Options{Respond: func(req resttest.Request) resttest.Reply {
			if req.Phase != resttest.PhaseRcpt {
				return resttest.Reply{}
			}
			switch req.Tx.RcptTo[req.Rcpt].Address {
			case "later@example.com":
				if busy.Add(1) == 1 {
					return resttest.Reply{Response: tx.Response{Code: 450, Message: "4.2.1 mailbox busy"}}
				}
			case "nobody@example.com":
				return resttest.Reply{Response: tx.Response{Code: 550, Message: "5.1.1 no such user"}}
			}
			return resttest.Reply{}
		}})
		defer recv.Close()
		secret := config.Secret("router-test-secret")
		var mu sync.Mutex
		got := map[string][]webhook.Event{} // by transaction
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			body, _ := io.ReadAll(req.Body)
			var ev webhook.Event
			if err := webhook.Verify(secret, req.Header.Get(webhook.HeaderTimestamp), body, req.Header.Get(webhook.HeaderSignature), time.Now(), time.Minute); err != nil {
				t.Errorf("POST %s: %v", body, err)
			} else if err := json.Unmarshal(body, &ev); err != nil {
				t.Errorf("POST %s: %v", body, err)
			}
			mu.Lock()
			got[ev.Transaction] = append(got[ev.Transaction], ev)
			mu.Unlock()
		}))
		defer hook.Close()
		r := startReplicaUpstream(t, b, builtin.New(builtin.Options{}), recv.URL(), func(cfg *config.Router) {
			cfg.Sender("notifying").Webhook = &config.Webhook{URL: hook.URL, Secret: secret, Timeout: 5 * time.Second, MaxAge: time.Hour}
		})
		post := func(sender, rcpt string) string {
			loc := r.post(sender, `{"mail_from":{"m":"alice@example.com"},"rcpt_to":[{"m":"`+rcpt+`"}],"body":{"inline":"Subject: hi\r\n\r\nhello\r\n"}}`).header.Get("Location")
			final(t, loc)
			return path.Base(loc)
		}
		ok, later, nobody := post("notifying", "bob@example.com"), post("notifying", "later@example.com"), post("notifying", "nobody@example.com")
		plain := post("submission", "nobody@example.com")

		types := func(id string) (out []string) {
			mu.Lock()
			defer mu.Unlock()
			for _, ev := range got[id] {
				out = append(out, ev.Type)
			}
			return out
		}
		eventually(t, "webhook events", func() bool {
			return len(types(ok)) == 1 && len(types(later)) == 2 && len(types(nobody)) == 2
		})
		mu.Lock()
		defer mu.Unlock()
		for id, evs := range got {
			for _, ev := range evs {
				if ev.ID == "" || ev.Sender != "notifying" || ev.Tag != "" || ev.Transaction != id || ev.Time.IsZero() {
					t.Errorf("event %+v", ev)
				}
			}
		}
		if ev := got[ok][0]; ev.Type != webhook.Delivered || ev.Recipient != "bob@example.com" || ev.Attempt != 1 ||
			ev.Reply == nil || ev.Reply.Code != 250 || ev.NextAttempt != nil || ev.FinalReason != tx.ReasonUpstreamSuccess {
			t.Errorf("delivered: %+v", ev)
		}
		deferred, delivered := got[later][0], got[later][1]
		if deferred.Type != webhook.Deferred || deferred.Attempt != 1 || deferred.NextAttempt == nil || !deferred.NextAttempt.After(deferred.Time) ||
			*deferred.Reply != (webhook.Reply{Code: 450, EnhancedCode: "4.2.1", Message: "mailbox busy"}) || deferred.FinalReason != "" {
			t.Errorf("deferred: %+v", deferred)
		}
		if delivered.Type != webhook.Delivered || delivered.Attempt != 2 {
			t.Errorf("then delivered: %+v", delivered)
		}
		failed, dsn := got[nobody][0], got[nobody][1]
		if failed.Type != webhook.Failed || failed.Attempt != 1 || failed.NextAttempt != nil || failed.FinalReason != tx.ReasonRcptPermfail ||
			*failed.Reply != (webhook.Reply{Code: 550, EnhancedCode: "5.1.1", Message: "no such user"}) {
			t.Errorf("failed: %+v", failed)
		}
		if dsn.Type != webhook.DSNSent || dsn.Recipient != "nobody@example.com" || dsn.DSN == nil || dsn.DSN.Action != "failed" ||
			dsn.DSN.Transaction == "" || dsn.Reply == nil || dsn.Reply.Code != 550 {
			t.Errorf("dsn_sent: %+v %+v", dsn, dsn.DSN)
		}
		if len(got[plain]) != 0 || len(got) != 3 {
			t.Errorf("events of transactions without a webhook: %+v", got)
		}
	})
}

// Each recipient's event type follows its reply and the retry decision.
func TestWebhookEventTypes(t *testing.T) {
	cfg, _, err := config.ParseRouter("router.yaml", fmt.Appendf(nil, testConfig, "http://127.0.0.1:1", "http://127.0.0.1:9"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sender("notifying").Webhook = &config.Webhook{URL: "http://127.0.0.1:9", Secret: config.Secret("k")}
	s := &Service{cfg: cfg, log: testLogger()}
	r := func(code int, msg string) tx.Response { return tx.Response{Code: code, Message: msg} }
	ptr := func(r tx.Response) *tx.Response { return &r }
	rcpts := func(addrs ...string) (out []tx.Mailbox) {
		for _, a := range addrs {
			out = append(out, tx.Mailbox{Address: a})
		}
		return out
	}
	next := time.Now().Add(time.Minute)
	for _, c := range []struct {
		name   string
		sender string
		retry  bool
		view   tx.Tx
		f      store.Finish
		want   []string // type/recipient/reply code
	}{
		{"delivered, failed and deferred recipients", "notifying", true, tx.Tx{
			RcptTo:       rcpts("a@x", "b@x", "c@x"),
			MailResponse: ptr(r(250, "ok")), RcptResponse: []tx.Response{r(250, "ok"), r(550, "5.1.1 no"), r(450, "4.2.1 busy")},
			DataResponse: ptr(r(250, "2.0.0 queued")),
		}, store.Finish{NextAttempt: next}, []string{"delivered/a@x/250", "failed/b@x/550", "deferred/c@x/450"}},
		{"a temporary failure without retries", "notifying", false, tx.Tx{
			RcptTo: rcpts("a@x"), MailResponse: ptr(r(250, "ok")), RcptResponse: []tx.Response{r(450, "busy")},
		}, store.Finish{}, []string{"failed/a@x/450"}},
		{"the last attempt", "notifying", true, tx.Tx{
			RcptTo: rcpts("a@x"), MailResponse: ptr(r(250, "ok")), RcptResponse: []tx.Response{r(450, "busy")},
		}, store.Finish{FinalReason: tx.ReasonMaxAttempts}, []string{"failed/a@x/450"}},
		{"MAIL refused", "notifying", true, tx.Tx{
			RcptTo: rcpts("a@x", "b@x"), MailResponse: ptr(r(550, "5.7.1 go away")),
		}, store.Finish{FinalReason: tx.ReasonMailPermfail}, []string{"failed/a@x/550", "failed/b@x/550"}},
		{"cancelled before any recipient", "notifying", true, tx.Tx{Cancelled: true},
			store.Finish{FinalReason: tx.ReasonDownstreamCancelled}, []string{"failed//0"}},
		{"no reply yet, retried", "notifying", true, tx.Tx{RcptTo: rcpts("a@x")},
			store.Finish{NextAttempt: next}, []string{"deferred/a@x/0"}},
		{"a sender without a webhook", "submission", true, tx.Tx{RcptTo: rcpts("a@x"), RcptResponse: []tx.Response{r(250, "ok")}},
			store.Finish{}, nil},
	} {
		view := c.view
		view.Sender = &tx.Sender{Name: c.sender}
		var got []string
		for _, ne := range s.webhookEvents(&store.Tx{RestID: "tx", AttemptCount: 2, Retry: c.retry}, &view, c.f) {
			var ev webhook.Event
			if err := json.Unmarshal(ne.Payload, &ev); err != nil || ev.ID != ne.ID || ne.RestID != "tx" || ev.Attempt != 2 {
				t.Errorf("%s: %+v %s: %v", c.name, ne, ne.Payload, err)
			}
			code := 0
			if ev.Reply != nil {
				code = ev.Reply.Code
			}
			if (ev.Type == webhook.Deferred) != (ev.NextAttempt != nil) {
				t.Errorf("%s: %s event with next_attempt %v", c.name, ev.Type, ev.NextAttempt)
			}
			got = append(got, fmt.Sprintf("%s/%s/%d", ev.Type, ev.Recipient, code))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// A submission recipient (one-shot until store-and-forward) whose one attempt ends with a
// temporary failure is reported as deferred, not failed, once the exploder has made it
// store-and-forward after the attempt; then delivered on the retry.
func TestWebhookStoreAndForwardAfterTheAttempt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		up := newScript()
		up.data = func(attempt int) tx.Response {
			if attempt == 1 {
				return tx.Response{Code: 451, Message: "4.3.0 try again later"}
			}
			return tx.Response{Code: 250, Message: "2.0.0 ok"}
		}
		var mu sync.Mutex
		var got []webhook.Event
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			var ev webhook.Event
			if err := json.NewDecoder(req.Body).Decode(&ev); err != nil {
				t.Error(err)
			}
			mu.Lock()
			got = append(got, ev)
			mu.Unlock()
		}))
		defer hook.Close()
		r := startReplicaUpstream(t, b, up.factory(), "http://127.0.0.1:9", func(cfg *config.Router) {
			st, _ := cfg.Sender("submission").ForTag("msa-upstream")
			st.Webhook = &config.Webhook{URL: hook.URL, Secret: config.Secret("s"), Timeout: 5 * time.Second, MaxAge: time.Hour}
		})
		smtp(t, r, "msa-oneshot", []string{"later@example.com"}, message)
		eventually(t, "deferred, then delivered", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) >= 2
		})
		time.Sleep(2500 * time.Millisecond) // past the window a failed event would be held for
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 2 || got[0].Type != webhook.Deferred || got[0].Attempt != 1 || got[0].NextAttempt == nil ||
			got[0].Reply == nil || got[0].Reply.Code != 451 || got[1].Type != webhook.Delivered || got[1].Attempt != 2 {
			t.Fatalf("events: %+v", got)
		}
	})
}
