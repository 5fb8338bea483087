package router

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/exploder"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/tx"
)

// smtp drives a transaction the way the SMTP gateway does (reference §2.6): POST the sender,
// PATCH each recipient, PUT the body, and wait for the data answer. It returns the final
// downstream JSON.
func smtp(t *testing.T, r *replica, sender string, rcpts []string, body string) map[string]any {
	t.Helper()
	return smtpInto(t, r.post(sender, `{"mail_from":{"m":"alice@example.com"}}`).header.Get("Location"), rcpts, body)
}

// smtpInto is smtp on a transaction already created at loc.
func smtpInto(t *testing.T, loc string, rcpts []string, body string) map[string]any {
	t.Helper()
	for i, rcpt := range rcpts {
		for {
			etag := do(t, "GET", loc, nil).header.Get("ETag")
			res := do(t, "PATCH", loc, fmt.Sprintf(`{"rcpt_to":[{"m":%q}],"rcpt_to_list_offset":%d}`, rcpt, i),
				"Content-Type", jsonType, "If-Match", etag)
			if res.status == 200 {
				break
			}
			if res.status != 412 {
				t.Fatalf("PATCH rcpt %d: %d %s", i, res.status, res.body)
			}
		}
	}
	if res := do(t, "PUT", loc+"/body", body); res.status != 200 {
		t.Fatalf("PUT: %d %s", res.status, res.body)
	}
	var got map[string]any
	eventually(t, "data answered", func() bool {
		got = do(t, "GET", loc, nil).json(t)
		return got["data_response"] != nil
	})
	return got
}

func replyText(m map[string]any, field string) string {
	r, _ := m[field].(map[string]any)
	s, _ := r["message"].(string)
	return s
}

// §11.2 8: two recipients fanned out and in; both delivered with the same answer.
func TestExploderSameResponse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		up := newScript()
		r := startReplicaWith(t, b, up.factory())
		got := smtp(t, r, "ingress", []string{"bob1@example.com", "bob2@example.com"}, message)
		if codes(got) != "250/[202 202]/203" || !strings.HasSuffix(replyText(got, "data_response"), "(exploder same response)") {
			t.Errorf("downstream: %s %q", codes(got), replyText(got, "data_response"))
		}
		eventually(t, "both delivered", func() bool {
			up.mu.Lock()
			defer up.mu.Unlock()
			return len(up.bodies) == 2 && up.bodies[0] == message && up.bodies[1] == message
		})
	})
}

// On ingress a recipient's permanent failure is its own answer; the others still get the
// message, and a lone accepted recipient's data answer is passed on verbatim.
func TestExploderIngressReject(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		up := newScript()
		up.rejectRcpt = map[string]tx.Response{"nobody@example.com": {Code: 550, Message: "5.1.1 no such user"}}
		r := startReplicaWith(t, b, up.factory())
		got := smtp(t, r, "ingress", []string{"nobody@example.com", "bob@example.com"}, message)
		if codes(got) != "250/[550 202]/203" || replyText(got, "data_response") != "ok" {
			t.Errorf("downstream: %s %q", codes(got), replyText(got, "data_response"))
		}
		// The refused recipient's transaction gets no body: it is cancelled when the others
		// get theirs, not left to its downstream timeout.
		var reasons []string
		eventually(t, "every transaction final", func() bool {
			all, err := r.store.List(context.Background(), store.ListQuery{})
			if err != nil {
				t.Fatal(err)
			}
			reasons = reasons[:0]
			for _, s := range all {
				reasons = append(reasons, s.FinalAttemptReason)
			}
			return len(all) == 3 && !slices.Contains(reasons, "") && !slices.Contains(reasons, store.FinalOneshot)
		})
		if slices.Contains(reasons, tx.ReasonDownstreamTimeout) || !slices.Contains(reasons, tx.ReasonDownstreamCancelled) {
			t.Errorf("final reasons %q: the refused recipient's transaction should end cancelled", reasons)
		}
	})
}

// §11.2 9 and 10, submission: a temporary recipient failure is accepted for store-and-forward
// and retried until delivered; mixed data answers are accepted for all, and the permanent
// failure bounces.
func TestExploderStoreAndForward(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		up := newScript()
		up.rcpt = func(attempt int) tx.Response {
			if attempt == 1 {
				return tx.Response{Code: 402, Message: "4.2.2 over quota, try later"}
			}
			return tx.Response{Code: 202, Message: "ok"}
		}
		r := startReplicaWith(t, b, up.factory())
		got := smtp(t, r, "msa", []string{"later@example.com"}, message)
		if codes(got) != "250/[250]/250" || replyText(got, "data_response") != "2.0.0 DATA ok (exploder store&forward)" {
			t.Errorf("downstream: %s %q", codes(got), replyText(got, "data_response"))
		}
		eventually(t, "delivered on retry", func() bool {
			up.mu.Lock()
			defer up.mu.Unlock()
			return up.attempts["later@example.com"] == 2 && len(up.bodies) == 1
		})

		// Mixed: one accepted, one refused for good → 250 for the client, a bounce for the
		// refused one.
		up.mu.Lock()
		up.rcpt = func(int) tx.Response { return tx.Response{Code: 202, Message: "ok"} }
		up.refuseData = map[string]tx.Response{"bad@example.com": {Code: 550, Message: "5.7.1 content refused"}}
		up.mu.Unlock()
		got = smtp(t, r, "msa", []string{"good@example.com", "bad@example.com"}, message)
		if codes(got) != "250/[202 202]/250" || replyText(got, "data_response") != "2.0.0 DATA ok (exploder store&forward)" {
			t.Errorf("mixed: %s %q", codes(got), replyText(got, "data_response"))
		}
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			up.mu.Lock()
			n := up.attempts["alice@example.com"]
			up.mu.Unlock()
			if n > 0 {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("no bounce for the refused recipient")
	})
}

// A message-builder body reaches every recipient's transaction: the spec and its part blobs
// by reference.
func TestExploderMessageBuilderBody(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		up := newScript()
		r := startReplicaWith(t, b, up.factory())
		loc := r.post("ingress", `{"mail_from":{"m":"alice@example.com"},"rcpt_to":[{"m":"bob1@example.com"},{"m":"bob2@example.com"}],`+
			`"body":{"message_builder":{"headers":[["subject","built"]],"text_body":[{"content_type":"text/plain","content":{"inline":"hello from the builder"}}]}}}`).header.Get("Location")
		var got map[string]any
		eventually(t, "data answered", func() bool {
			got = do(t, "GET", loc, nil).json(t)
			return got["data_response"] != nil
		})
		if codes(got) != "250/[202 202]/203" {
			t.Errorf("downstream: %s %q", codes(got), replyText(got, "data_response"))
		}
		up.mu.Lock()
		defer up.mu.Unlock()
		if len(up.bodies) != 2 {
			t.Fatalf("%d bodies delivered", len(up.bodies))
		}
		for _, body := range up.bodies {
			if !strings.Contains(body, "subject: built\r\n") || !strings.Contains(body, "hello from the builder") {
				t.Errorf("delivered %q", body)
			}
		}
	})
}

// Submission: a recipient whose data answer is a temporary failure is made store-and-
// forward after its one attempt has ended, and is tried again when the retry policy says
// (2.5 s here, less a jitter of at most 20%), not at the next look at the queue.
func TestExploderStoreAndForwardAfterTheAttemptWaitsForTheRetry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		up := newScript()
		var mu sync.Mutex
		var tried []time.Time
		up.data = func(attempt int) tx.Response {
			mu.Lock()
			tried = append(tried, time.Now())
			mu.Unlock()
			if attempt == 1 {
				return tx.Response{Code: 451, Message: "4.3.0 try again later"}
			}
			return tx.Response{Code: 250, Message: "ok"}
		}
		r := startReplicaUpstream(t, b, up.factory(), "http://127.0.0.1:9", func(c *config.Router) {
			p := c.Endpoint("submission").OutputHandler.RetryParams
			p.MinAttemptTime, p.MaxAttemptTime = 2500*time.Millisecond, 2500*time.Millisecond
		})
		got := smtp(t, r, "msa-oneshot", []string{"later@example.com"}, message)
		if codes(got) != "250/[202]/250" {
			t.Errorf("downstream: %s %q", codes(got), replyText(got, "data_response"))
		}
		eventually(t, "delivered on retry", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(tried) == 2
		})
		mu.Lock()
		defer mu.Unlock()
		t.Logf("gap %v", tried[1].Sub(tried[0]))
		if gap := tried[1].Sub(tried[0]); gap < 2*time.Second {
			t.Errorf("tried again %v after the temporary failure, before the retry policy's minimum", gap)
		}
	})
}

// A transaction whose chain starts with the exploder has its answer to MAIL in the create's
// response: the client need not wait for the attempt, and the attempt writes it no more.
func TestExploderAnswersMailWithTheCreate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := startReplicaWith(t, b, newScript().factory())
		res := r.post("ingress", `{"mail_from":{"m":"alice@example.com"}}`)
		if got := replyText(res.json(t), "mail_response"); got != exploder.MailOK.Message {
			t.Fatalf("create's mail_response %q, want %q: %s", got, exploder.MailOK.Message, res.body)
		}
		loc, etag := res.header.Get("Location"), res.header.Get("ETag")
		// The attempt runs the exploder, which gives the same answer: nothing to write.
		time.Sleep(300 * time.Millisecond)
		if got := do(t, "GET", loc, nil).header.Get("ETag"); got != etag {
			t.Errorf("ETag %s after the attempt ran, want the create's %s", got, etag)
		}
		// And the transaction goes on as any: recipients, body, answers.
		if got := smtpInto(t, loc, []string{"bob@example.com"}, message); codes(got) != "250/[202]/203" {
			t.Errorf("downstream: %s", codes(got))
		}
	})
}
