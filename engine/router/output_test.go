package router

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/chain/chaintest"
	"github.com/koukan/koukan/engine/tx"
)

// script is a fake upstream whose replies a test sets, shared by every chain a replica
// builds: each chain gets its own chaintest.Upstream that answers through it.
type script struct {
	mail, rcpt, data func(attempt int) tx.Response
	// rejectRcpt and refuseData answer these addresses so, whatever the attempt.
	rejectRcpt, refuseData map[string]tx.Response
	crash                  atomic.Bool

	// reportsTo, when set, is the envelope sender of the transactions under test: delivery
	// status notifications to it are accepted and kept in reports, and every envelope is
	// kept in envelopes ("from -> to").
	reportsTo string

	mu        sync.Mutex
	attempts  map[string]int // per rcpt address, how many times asked
	bodies    []string
	envelopes []string
	reports   []string
}

func newScript() *script {
	ok := func(code int) func(int) tx.Response {
		return func(int) tx.Response { return tx.Response{Code: code, Message: "ok"} }
	}
	return &script{mail: ok(201), rcpt: ok(202), data: ok(203), attempts: map[string]int{}}
}

func (s *script) factory() chain.Factory {
	f := s.upstreams()
	if s.reportsTo == "" {
		return f
	}
	return chain.FactoryFunc(func(cs *config.Step) (chain.Step, error) {
		step, err := f.NewStep(cs)
		return chaintest.Func(func(ctx context.Context, u *chain.Update) error {
			if u.Mail {
				s.mu.Lock()
				s.envelopes = append(s.envelopes, u.Tx.MailFrom.Address+" -> "+u.Tx.RcptTo[0].Address)
				s.mu.Unlock()
			}
			if u.Tx.RcptTo[0].Address != s.reportsTo {
				return step.Update(ctx, u)
			}
			u.SetMailResponse(tx.Response{Code: 250, Message: "ok"})
			u.SetRcptResponse(0, tx.Response{Code: 250, Message: "ok"})
			if u.Data {
				rc, err := u.Message.Open(ctx)
				if err != nil {
					return err
				}
				body, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					return err
				}
				s.mu.Lock()
				s.reports = append(s.reports, string(body))
				s.mu.Unlock()
				u.SetDataResponse(tx.Response{Code: 250, Message: "ok"})
			}
			return nil
		}), err
	})
}

// upstreams makes the scripted upstream steps.
func (s *script) upstreams() chain.Factory {
	return chain.FactoryFunc(func(cs *config.Step) (chain.Step, error) {
		if cs.Exploder != nil {
			return nil, chain.ErrUnknownStep // the router's own
		}
		if s.crash.Load() {
			return chaintest.Func(func(context.Context, *chain.Update) error { panic("upstream exploded") }), nil
		}
		var attempt int
		return &chaintest.Upstream{
			Mail: func(*tx.Tx) tx.Response { return s.mail(attempt) },
			Rcpt: func(t *tx.Tx, i int) tx.Response {
				s.mu.Lock()
				s.attempts[t.RcptTo[i].Address]++
				attempt = s.attempts[t.RcptTo[i].Address]
				r, reject := s.rejectRcpt[t.RcptTo[i].Address]
				s.mu.Unlock()
				if reject {
					return r
				}
				return s.rcpt(attempt)
			},
			Data: func(t *tx.Tx, body []byte) tx.Response {
				s.mu.Lock()
				s.bodies = append(s.bodies, string(body))
				r, refuse := s.refuseData[t.RcptTo[0].Address]
				s.mu.Unlock()
				if refuse {
					return r
				}
				return s.data(attempt)
			},
		}, nil
	})
}

// final waits with hanging GETs until the transaction at loc has a final reason, following
// redirects to whichever replica works on it.
func final(t *testing.T, loc string) map[string]any {
	t.Helper()
	etag := ""
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		res := do(t, "GET", loc, nil, "If-None-Match", etag, "Request-Timeout", "5")
		if res.status == 200 {
			m := res.json(t)
			if m["final_attempt_reason"] != nil {
				return m
			}
			etag = res.header.Get("ETag")
		} else if res.status == 308 {
			loc = res.header.Get("Location") // another replica works on it now
		} else if res.status != 304 {
			t.Fatalf("GET %s: %d %s", loc, res.status, res.body)
		}
	}
	t.Fatalf("%s never became final", loc)
	return nil
}

func codes(m map[string]any) string {
	code := func(v any) string {
		r, _ := v.(map[string]any)
		if r == nil {
			return "-"
		}
		return fmt.Sprint(r["code"])
	}
	var rc []string
	list, _ := m["rcpt_response"].([]any)
	for _, r := range list {
		rc = append(rc, code(r))
	}
	return fmt.Sprintf("%s/[%s]/%s", code(m["mail_response"]), strings.Join(rc, " "), code(m["data_response"]))
}

// §11.2 1 and 3: an inline body is delivered in one attempt; the client sees the upstream's
// answers and the final reason, in exactly the reference's JSON.
func TestDeliverInline(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		up := newScript()
		r := startReplicaWith(t, b, up.factory())
		loc := r.post("submission", inlineBody).header.Get("Location")
		got := final(t, loc)
		want := fmt.Sprintf(`{"sender":{},"mail_from":{},"rcpt_to":[{}],"body":{"blob_status":{"uri":"%s/body","finalized":true}},`+
			`"retry":{},"attempt_count":1,"mail_response":{"code":201,"message":"ok"},"rcpt_response":[{"code":202,"message":"ok"}],`+
			`"data_response":{"code":203,"message":"ok"},"final_attempt_reason":"upstream response success"}`, loc)
		if js, _ := json.Marshal(got); !jsonEqual(t, string(js), want) {
			t.Errorf("final JSON\n got %s\nwant %s", js, want)
		}
		if len(up.bodies) != 1 || up.bodies[0] != message {
			t.Errorf("upstream got %q", up.bodies)
		}
	})
}

func jsonEqual(t *testing.T, a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		t.Fatalf("not JSON: %s / %s", a, b)
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}

// §11.2 2, 4, 6 and 7: the envelope first, the body in two ranged PUTs; the recipient fails
// temporarily on the first attempt, so the transaction is retried once the body is complete
// and succeeds on attempt 2. A second transaction reusing the body delivers the same bytes.
func TestRetryThenSuccessAndReuse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		up := newScript()
		up.rcpt = func(attempt int) tx.Response {
			if attempt == 1 {
				return tx.Response{Code: 402, Message: "4.2.2 try again"}
			}
			return tx.Response{Code: 202, Message: "ok"}
		}
		r := startReplicaWith(t, b, up.factory())
		loc := r.post("submission", `{`+envelope+`}`).header.Get("Location")
		body := "Subject: x\r\n\r\nhi!\r\n" // 19 bytes
		if res := do(t, "PUT", loc+"/body", body[:7], "Content-Range", "bytes 0-6/19"); res.status != 200 {
			t.Fatalf("first chunk: %d %s", res.status, res.body)
		}
		if res := do(t, "PUT", loc+"/body", body[7:], "Content-Range", "bytes 7-18/19"); res.status != 200 {
			t.Fatalf("last chunk: %d %s", res.status, res.body)
		}
		got := final(t, loc)
		if codes(got) != "201/[202]/203" || got["attempt_count"] != 2.0 || got["final_attempt_reason"] != "upstream response success" {
			t.Errorf("after retry: %s attempt %v %v", codes(got), got["attempt_count"], got["final_attempt_reason"])
		}
		second := r.post("submission", `{"mail_from":{"m":"alice@example.com"},"rcpt_to":[{"m":"bob2@example.com"}],"body":{"reuse_uri":"`+loc+`/body"}}`)
		if got := final(t, second.header.Get("Location")); codes(got) != "201/[402]/-" && codes(got) != "201/[202]/203" {
			t.Errorf("reused: %s", codes(got))
		}
		up.mu.Lock()
		defer up.mu.Unlock()
		for _, bd := range up.bodies {
			if bd != body {
				t.Errorf("upstream got %q, want %q", bd, body)
			}
		}
	})
}

// A transaction that keeps failing temporarily ends with "retry policy max attempts"; one
// that fails permanently ends at once.
func TestRetryExhaustedAndPermfail(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		up := newScript()
		up.data = func(int) tx.Response { return tx.Response{Code: 451, Message: "4.3.0 later"} }
		r := startReplicaWith(t, b, up.factory())
		got := final(t, r.post("submission", inlineBody).header.Get("Location"))
		if got["final_attempt_reason"] != "retry policy max attempts" || got["attempt_count"] != 3.0 {
			t.Errorf("temp failures: %v after %v attempts", got["final_attempt_reason"], got["attempt_count"])
		}
		up.data = func(int) tx.Response { return tx.Response{Code: 550, Message: "5.7.1 no"} }
		got = final(t, r.post("submission", `{"mail_from":{"m":"a@x"},"rcpt_to":[{"m":"perm@x"}],"body":{"inline":"x"}}`).header.Get("Location"))
		if got["final_attempt_reason"] != "upstream response permfail" || got["attempt_count"] != 1.0 {
			t.Errorf("perm failure: %v after %v attempts", got["final_attempt_reason"], got["attempt_count"])
		}
		// Without retry (tag oneshot) a temporary failure is the end too, with no reason shown.
		up.data = func(int) tx.Response { return tx.Response{Code: 451, Message: "4.3.0 later"} }
		loc := r.post("submission", `{"mail_from":{"m":"a@x"},"rcpt_to":[{"m":"once@x"}],"sender":{"tag":"oneshot"},"body":{"inline":"x"}}`).header.Get("Location")
		var res resp
		eventually(t, "oneshot answered", func() bool {
			res = do(t, "GET", loc, nil)
			return strings.Contains(string(res.body), `"data_response"`)
		})
		if strings.Contains(string(res.body), "final_attempt_reason") || !strings.Contains(string(res.body), `"attempt_count":1`) {
			t.Errorf("oneshot: %s", res.body)
		}
	})
}

// The retry of a temporary failure survives a restart: another replica on the same database
// picks it up and delivers it.
func TestRetryAfterRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		up := newScript()
		up.rcpt = func(attempt int) tx.Response {
			if attempt == 1 {
				return tx.Response{Code: 450, Message: "4.2.1 busy"}
			}
			return tx.Response{Code: 202, Message: "ok"}
		}
		first := startReplicaWith(t, b, up.factory())
		loc := first.post("submission", inlineBody).header.Get("Location")
		eventually(t, "first attempt over", func() bool {
			return strings.Contains(string(do(t, "GET", loc, nil).body), `"rcpt_response":[{"code":450`)
		})
		path := strings.TrimPrefix(loc, first.url)
		first.stop()
		second := startReplicaWith(t, b, up.factory())
		got := final(t, second.url+path)
		if codes(got) != "201/[202]/203" || got["attempt_count"] != 2.0 {
			t.Errorf("after restart: %s, attempt %v", codes(got), got["attempt_count"])
		}
	})
}

// §11.2 18: a step that panics fails the attempt with 450, never the process, and the
// transaction is retried after bug_retry (and fails the same way).
func TestStepPanicBecomes450(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		up := newScript()
		up.crash.Store(true)
		r := startReplicaWith(t, b, up.factory())
		loc := r.post("submission", inlineBody).header.Get("Location")
		eventually(t, "second attempt", func() bool {
			return strings.Contains(string(do(t, "GET", loc, nil).body), `"attempt_count":2`)
		})
		eventually(t, "second attempt answered", func() bool {
			return strings.Contains(string(do(t, "GET", loc, nil).body), `"mail_response":{"code":450`)
		})
		got := do(t, "GET", loc, nil).json(t)
		if codes(got) != "450/[450]/450" {
			t.Errorf("after a crashing step: %s", codes(got))
		}
		// It is not retried forever: max_attempts (3) ends it.
		eventually(t, "parked", func() bool {
			return strings.Contains(string(do(t, "GET", loc, nil).body), `"final_attempt_reason":"retry policy max attempts"`)
		})
	})
}

// The downstream timeout counts only while the client is idle: hanging GETs keep the
// transaction alive, silence ends it.
func TestDownstreamTimeout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := startReplicaWith(t, b, newScript().factory())
		loc := r.post("submission", `{`+envelope+`}`).header.Get("Location")
		// 2.5 s of hanging GETs, longer than downstream_timeout (1.5 s).
		for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); {
			res := do(t, "GET", loc, nil, "If-None-Match", r.settled(loc), "Request-Timeout", "1")
			if strings.Contains(string(res.body), "final_attempt_reason") {
				t.Fatalf("timed out while the client was waiting: %s", res.body)
			}
		}
		// Then silence; plain GETs are no sign of life.
		eventually(t, "downstream timeout", func() bool {
			return strings.Contains(string(do(t, "GET", loc, nil).body), `"final_attempt_reason":"downstream timeout"`)
		})
	})
}

// §11.2 19: cancelling a transaction that waits for its body ends it.
func TestCancelEndsAttempt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := startReplicaWith(t, b, newScript().factory())
		loc := r.post("submission", `{`+envelope+`}`).header.Get("Location")
		r.settled(loc)
		do(t, "POST", loc+"/cancel", nil)
		eventually(t, "attempt over", func() bool {
			h, err := r.store.Head(t.Context(), strings.TrimPrefix(loc, r.url+"/transactions/"))
			return err == nil && !h.Lease.Here
		})
		got := do(t, "GET", loc, nil).json(t)
		if got["final_attempt_reason"] != "downstream cancelled" || !strings.HasPrefix(codes(got), "201/[202]") {
			t.Errorf("cancel: %v %s", got["final_attempt_reason"], codes(got))
		}
	})
}

// Two replicas dequeue the retries of 200 transactions: each is retried, and delivered,
// exactly once.
func TestTwoReplicasDequeueExactlyOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		up := newScript()
		up.rcpt = func(attempt int) tx.Response {
			if attempt == 1 {
				return tx.Response{Code: 450, Message: "4.2.1 later"}
			}
			return tx.Response{Code: 202, Message: "ok"}
		}
		// The test config's 1 s session lifetime is shorter than a heartbeat can stall on a
		// loaded two-core machine; a replica declared dead would rightly have its work
		// taken over, which is not what this test is about.
		longSessions := func(cfg *config.Router) { cfg.Storage.SessionRefreshInterval = time.Second }
		a := startReplicaUpstream(t, b, up.factory(), "http://127.0.0.1:9", longSessions)
		startReplicaUpstream(t, b, up.factory(), "http://127.0.0.1:9", longSessions) // the other replica: it only dequeues
		const n = 200
		for i := range n {
			a.post("submission", fmt.Sprintf(`{"mail_from":{"m":"a@x"},"rcpt_to":[{"m":"r%d@x"}],"body":{"inline":"hi"}}`, i))
		}
		delivered := func() int {
			up.mu.Lock()
			defer up.mu.Unlock()
			return len(up.bodies)
		}
		eventually(t, "every transaction delivered", func() bool { return delivered() >= n })
		time.Sleep(time.Second) // and nothing delivered twice afterwards
		up.mu.Lock()
		defer up.mu.Unlock()
		for i := range n {
			if got := up.attempts[fmt.Sprintf("r%d@x", i)]; got != 2 {
				t.Errorf("r%d asked %d times, want 2", i, got)
			}
		}
		if len(up.bodies) != n {
			t.Errorf("%d deliveries of %d transactions", len(up.bodies), n)
		}
	})
}

// A failure the sender asked to hear about comes back as a DSN to the envelope sender,
// itself delivered through the notification sender's chain; bounces are never bounced.
func TestBounce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		up := newScript()
		up.reportsTo = "alice@example.com"
		up.data = func(int) tx.Response { return tx.Response{Code: 550, Message: "5.7.1 rejected by policy"} }
		r := startReplicaWith(t, b, up.factory())
		orig := "Message-ID: <orig@example.com>\r\nSubject: hello\r\n\r\nbody\r\n"
		got := final(t, r.post("notifying", `{"mail_from":{"m":"alice@example.com","e":[{"k":"ENVID","p":"env+2B1"}]},`+
			`"rcpt_to":[{"m":"bob@example.com"}],"body":{"inline":"`+strings.ReplaceAll(orig, "\r\n", `\r\n`)+`"}}`).header.Get("Location"))
		if got["final_attempt_reason"] != "upstream response permfail" {
			t.Fatalf("original: %v", got["final_attempt_reason"])
		}
		var report string
		eventually(t, "bounce delivered", func() bool {
			up.mu.Lock()
			defer up.mu.Unlock()
			for _, b := range up.reports {
				if strings.Contains(b, "multipart/report") {
					report = b
					return true
				}
			}
			return false
		})
		for _, want := range []string{"report-type=delivery-status", "Final-Recipient: rfc822; bob@example.com", "Action: failed",
			"Status: 5.7.1", "Diagnostic-Code: smtp; 550 5.7.1 rejected by policy", "Original-Envelope-Id: env+1",
			"In-Reply-To: <orig@example.com>", "Subject: hello", "From: \"Mail Delivery Subsystem\" <mailer-daemon@router.example>"} {
			if !strings.Contains(report, want) {
				t.Errorf("the DSN lacks %q:\n%s", want, report)
			}
		}
		up.mu.Lock()
		if !slices.Contains(up.envelopes, " -> alice@example.com") {
			t.Errorf("envelopes %q: no bounce from the null reverse path to alice", up.envelopes)
		}
		up.mu.Unlock()

		// NOTIFY=SUCCESS asks for a report of the delivery too.
		up.mu.Lock()
		up.data = func(int) tx.Response { return tx.Response{Code: 250, Message: "2.0.0 queued as 42"} }
		up.mu.Unlock()
		final(t, r.post("notifying", `{"mail_from":{"m":"alice@example.com"},"rcpt_to":[{"m":"carol@example.com","e":[{"k":"NOTIFY","p":"SUCCESS,FAILURE"}]}],"body":{"inline":"x"}}`).header.Get("Location"))
		eventually(t, "success report", func() bool {
			up.mu.Lock()
			defer up.mu.Unlock()
			for _, b := range up.reports {
				if strings.Contains(b, "Action: delivered") && strings.Contains(b, "carol@example.com") {
					return true
				}
			}
			return false
		})
		up.mu.Lock()
		up.data = func(int) tx.Response { return tx.Response{Code: 550, Message: "5.7.1 rejected by policy"} }
		up.mu.Unlock()

		// No bounce for a bounce (null reverse path), none when NOTIFY=NEVER.
		up.mu.Lock()
		n := len(up.envelopes)
		up.mu.Unlock()
		final(t, r.post("notifying", `{"mail_from":{"m":""},"rcpt_to":[{"m":"bob@example.com"}],"body":{"inline":"x"}}`).header.Get("Location"))
		final(t, r.post("notifying", `{"mail_from":{"m":"carol@example.com"},"rcpt_to":[{"m":"bob@example.com","e":[{"k":"NOTIFY","p":"NEVER"}]}],"body":{"inline":"x"}}`).header.Get("Location"))
		time.Sleep(500 * time.Millisecond)
		up.mu.Lock()
		defer up.mu.Unlock()
		if len(up.envelopes) != n+2 {
			t.Errorf("bounced a bounce or a NOTIFY=NEVER recipient: %q", up.envelopes[n:])
		}
	})
}

// §11.2 11: a message_builder body, one part inline and one uploaded, is rendered to RFC 5322
// for delivery; a second transaction reuses the uploaded part by URI.
func TestDeliverMessageBuilder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		up := newScript()
		r := startReplicaWith(t, b, up.factory())
		mb := `{` + envelope + `,"body":{"message_builder":{"headers":[["subject","hello"],["from",[{"address":"alice@example.com","display_name":"alice a"}]]],
			"text_body":[{"content_type":"text/plain","content":{"create_id":"plain"}},
			             {"content_type":"text/html","content":{"inline":"<b>hello</b>"}}]}}}`
		loc := r.post("submission", mb).header.Get("Location")
		if res := do(t, "PUT", loc+"/blob/plain", "hello, world!\n"); res.status != 200 {
			t.Fatalf("PUT part: %d %s", res.status, res.body)
		}
		if got := final(t, loc); codes(got) != "201/[202]/203" {
			t.Fatalf("message builder: %s %v", codes(got), got["final_attempt_reason"])
		}
		reuse := `{"mail_from":{"m":"alice@example.com"},"rcpt_to":[{"m":"bob2@example.com"}],"body":{"message_builder":{"headers":[["subject","hello"]],
			"text_body":[{"content_type":"text/plain","content":{"reuse_uri":"` + loc + `/blob/plain"}}]}}}`
		if got := final(t, r.post("submission", reuse).header.Get("Location")); codes(got) != "201/[202]/203" {
			t.Fatalf("reuse: %s", codes(got))
		}
		up.mu.Lock()
		defer up.mu.Unlock()
		if len(up.bodies) != 2 {
			t.Fatalf("%d bodies delivered", len(up.bodies))
		}
		for _, want := range []string{"subject: hello\r\n", "from: alice a <alice@example.com>\r\n", "multipart/alternative", "<b>hello</b>", "hello, world!"} {
			if !strings.Contains(up.bodies[0], want) {
				t.Errorf("rendered message lacks %q:\n%s", want, up.bodies[0])
			}
		}
		if !strings.Contains(up.bodies[1], "hello, world!") || !strings.Contains(up.bodies[1], "subject: hello\r\n") {
			t.Errorf("reused part not delivered:\n%s", up.bodies[1])
		}
	})
}

// A transaction still being retried after notification.delay gets one delay DSN; when it
// fails for good, a failure DSN follows.
func TestDelayNotification(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		up := newScript()
		up.reportsTo = "alice@example.com"
		up.refuseData = map[string]tx.Response{"slow@example.com": {Code: 451, Message: "4.3.0 try later"}}
		r := startReplicaWith(t, b, up.factory())
		loc := r.post("delaying", `{"mail_from":{"m":"alice@example.com"},"rcpt_to":[{"m":"slow@example.com"}],"body":{"inline":"hi"}}`).header.Get("Location")
		got := final(t, loc)
		if got["final_attempt_reason"] != "retry policy max attempts" {
			t.Fatalf("final: %v", got["final_attempt_reason"])
		}
		eventually(t, "two reports", func() bool {
			up.mu.Lock()
			defer up.mu.Unlock()
			return len(up.reports) >= 2
		})
		time.Sleep(300 * time.Millisecond)
		up.mu.Lock()
		defer up.mu.Unlock()
		var delayed, failed int
		for _, rep := range up.reports {
			switch {
			case strings.Contains(rep, "Action: delayed"):
				delayed++
			case strings.Contains(rep, "Action: failed"):
				failed++
			}
		}
		if delayed != 1 || failed != 1 {
			t.Errorf("%d delay and %d failure reports, want 1 and 1", delayed, failed)
		}
	})
}

// The dequeue loop runs no more attempts at once than global.executor.output.max_inflight.
func TestDequeueBoundedByMaxInflight(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		var running, most atomic.Int32
		up := newScript()
		up.rcpt = func(attempt int) tx.Response {
			if attempt == 1 {
				return tx.Response{Code: 450, Message: "4.2.1 later"}
			}
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(100 * time.Millisecond)
			running.Add(-1)
			return tx.Response{Code: 202, Message: "ok"}
		}
		r := startReplicaUpstream(t, b, up.factory(), "http://127.0.0.1:9", func(cfg *config.Router) {
			cfg.Global.Executor.Output.MaxInflight = 2
		})
		const n = 8
		for i := range n {
			r.post("submission", fmt.Sprintf(`{"mail_from":{"m":"a@x"},"rcpt_to":[{"m":"r%d@x"}],"body":{"inline":"hi"}}`, i))
		}
		eventually(t, "every transaction delivered", func() bool {
			up.mu.Lock()
			defer up.mu.Unlock()
			return len(up.bodies) >= n
		})
		if m := most.Load(); m > 2 || m < 1 {
			t.Errorf("%d retries ran at once, want at most 2", m)
		}
	})
}
