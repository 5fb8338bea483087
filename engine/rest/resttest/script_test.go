package resttest_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/rest"
	"github.com/koukan/koukan/engine/rest/resttest"
	"github.com/koukan/koukan/engine/tx"
)

func client(t *testing.T) *rest.Client {
	c, err := rest.NewClient(rest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// script answers by phase and recipient, and logs what it was asked.
type script struct {
	mu      sync.Mutex
	asked   []string
	replies map[string]resttest.Reply // by "mail", "rcpt0", "data"...
}

func (s *script) respond(r resttest.Request) resttest.Reply {
	key := r.Phase.String()
	if r.Phase == resttest.PhaseRcpt {
		key += fmt.Sprint(r.Rcpt)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, fmt.Sprintf("%s(%d rcpts, %d bytes)", key, len(r.Tx.RcptTo), len(r.Body)))
	return s.replies[key]
}

func (s *script) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.asked, " ")
}

func TestScriptedReplies(t *testing.T) {
	t.Parallel()
	s := &script{replies: map[string]resttest.Reply{
		"mail":  {Delay: 100 * time.Millisecond},
		"rcpt1": {Response: tx.Response{Code: 550, Message: "5.1.1 no such user"}},
		"data":  {Response: tx.Response{Code: 452, Message: "4.3.1 full"}, Delay: 200 * time.Millisecond},
	}}
	rcv := resttest.NewReceiver(resttest.Options{Respond: s.respond})
	defer rcv.Close()
	ctx := ctxFor(t, 5*time.Second)

	up, err := client(t).Create(ctx, rcv.URL()+"/senders/x/transactions", &tx.Tx{
		MailFrom: &tx.Mailbox{Address: "a@example.com"},
		RcptTo:   []tx.Mailbox{{Address: "b@example.com"}, {Address: "c@example.com"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := up.State(); st.MailResponse != nil {
		t.Fatalf("a delayed reply is in the 201: %+v", st)
	}
	st, err := up.Wait(ctx, func(s *tx.Tx) bool { return len(s.RcptResponse) == 2 })
	if err != nil {
		t.Fatal(err)
	}
	if st.MailResponse.Code != 250 || st.RcptResponse[0].Code != 250 || st.RcptResponse[1].Code != 550 {
		t.Errorf("responses %+v", st)
	}
	if err := up.PutBlob(ctx, st.Body.(*tx.Blob).URI, strings.NewReader("hello"), 5); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	st, err = up.Wait(ctx, func(s *tx.Tx) bool { return s.DataResponse != nil })
	if err != nil {
		t.Fatal(err)
	}
	if *st.DataResponse != (tx.Response{Code: 452, Message: "4.3.1 full"}) || time.Since(start) < 150*time.Millisecond {
		t.Errorf("data %v after %v", st.DataResponse, time.Since(start))
	}
	if want := "mail(2 rcpts, 0 bytes) rcpt0(2 rcpts, 0 bytes) rcpt1(2 rcpts, 0 bytes) data(2 rcpts, 5 bytes)"; s.log() != want {
		t.Errorf("asked %s, want %s", s.log(), want)
	}
}

// Nothing is answered after a failed MAIL, and DATA is not answered when
// every recipient failed; both transactions are finished.
func TestScriptFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		fail string
		want string
	}{
		{"mail failed", "mail", "mail(1 rcpts, 0 bytes)"},
		{"rcpt failed", "rcpt0", "mail(1 rcpts, 0 bytes) rcpt0(1 rcpts, 0 bytes)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &script{replies: map[string]resttest.Reply{tc.fail: {Response: tx.Response{Code: 550}}}}
			rcv := resttest.NewReceiver(resttest.Options{Respond: s.respond})
			defer rcv.Close()
			ctx := ctxFor(t, 5*time.Second)
			up, err := client(t).Create(ctx, rcv.URL()+"/senders/x/transactions", &tx.Tx{
				MailFrom: &tx.Mailbox{Address: "a@example.com"}, RcptTo: []tx.Mailbox{{Address: "b@example.com"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := up.PutBlob(ctx, up.State().Body.(*tx.Blob).URI, strings.NewReader("hello"), 5); err != nil {
				t.Fatal(err)
			}
			got, err := rcv.WaitFor(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if got[0].Tx.DataResponse != nil || s.log() != tc.want {
				t.Errorf("asked %s, data %v", s.log(), got[0].Tx.DataResponse)
			}
		})
	}
}

// WaitFor counts finished transactions, and gives up with its context.
func TestWaitFor(t *testing.T) {
	t.Parallel()
	rcv := resttest.NewReceiver(resttest.Options{})
	defer rcv.Close()
	c := client(t)
	ctx := ctxFor(t, 5*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() {
			up, err := c.Create(ctx, rcv.URL()+"/senders/x/transactions", &tx.Tx{
				MailFrom: &tx.Mailbox{Address: "a@example.com"}, RcptTo: []tx.Mailbox{{Address: "b@example.com"}},
			})
			if err == nil {
				err = up.PutBlob(ctx, up.State().Body.(*tx.Blob).URI, strings.NewReader("hi"), 2)
			}
			errs <- err
		})
	}
	got, err := rcv.WaitFor(ctx, 3)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err != nil || len(got) != 3 {
		t.Fatalf("%d transactions, %v", len(got), err)
	}
	for _, r := range got {
		if !r.Finished() || string(r.Body) != "hi" {
			t.Errorf("%s: finished %v body %q", r.ID, r.Finished(), r.Body)
		}
	}
	if _, err := rcv.WaitFor(ctxFor(t, 100*time.Millisecond), 4); err != context.DeadlineExceeded {
		t.Errorf("WaitFor(4) = %v", err)
	}
}

// Close ends hanging GETs at once, and drops replies still delayed.
func TestClose(t *testing.T) {
	t.Parallel()
	rcv := resttest.NewReceiver(resttest.Options{Respond: func(resttest.Request) resttest.Reply {
		return resttest.Reply{Delay: 300 * time.Millisecond}
	}})
	ctx := ctxFor(t, 10*time.Second)
	up, err := client(t).Create(ctx, rcv.URL()+"/senders/x/transactions", &tx.Tx{MailFrom: &tx.Mailbox{Address: "a@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := up.Wait(ctx, func(*tx.Tx) bool { return false })
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	rcv.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := <-done; err == nil {
		t.Error("Wait returned without error after Close")
	}
	time.Sleep(400 * time.Millisecond)
	if r := rcv.Transactions()[0]; r.Tx.MailResponse != nil {
		t.Errorf("a reply given after Close: %v", r.Tx.MailResponse)
	}
}
