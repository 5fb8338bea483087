package rest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/rest/resttest"
	"github.com/koukan/koukan/engine/tx"
)

// A reply slower than the caller's deadline: Wait gives up at the deadline,
// having asked for hanging GETs that end before it.
func TestWaitTimeout(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	rcv := newReceiver(t, resttest.Options{Middleware: rec.wrap, Respond: func(resttest.Request) resttest.Reply {
		return resttest.Reply{Delay: 5 * time.Second}
	}})
	c := newClient(t, Options{})
	up, err := c.Create(testCtx(t, 5*time.Second), rcv.URL()+"/senders/x/transactions", envelope())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = up.Wait(testCtx(t, 2500*time.Millisecond), func(s *tx.Tx) bool { return s.MailResponse != nil })
	wantKind(t, err, KindTimeout)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 4*time.Second {
		t.Errorf("%v after %v", err, time.Since(start))
	}
	gets := rec.of("GET")
	if len(gets) == 0 || len(gets) > 3 {
		t.Fatalf("%d GETs", len(gets))
	}
	if h := gets[0].header; h.Get("Request-Timeout") != "1" || h.Get("If-None-Match") != "1" {
		t.Errorf("GET headers %v", h)
	}
}

// Receivers that answer a hanging GET at once without a change are polled
// about once a second, with backoff, not in a loop.
func TestWaitNoSpin(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusOK, http.StatusNotModified} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			var gets atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("ETag", "1")
				switch r.Method {
				case http.MethodPost:
					w.Header().Set("Location", "/transactions/t")
					w.WriteHeader(http.StatusCreated)
				case http.MethodGet:
					gets.Add(1)
					w.WriteHeader(status)
				}
				if status == http.StatusOK || r.Method == http.MethodPost {
					_, _ = w.Write([]byte(`{"mail_from":{},"rcpt_to":[{}]}`))
				}
			}))
			defer srv.Close()
			ctx := testCtx(t, 2*time.Second)
			up, err := newClient(t, Options{}).Create(ctx, srv.URL+"/senders/x/transactions", envelope())
			if err != nil {
				t.Fatal(err)
			}
			_, err = up.Wait(ctx, dataDone)
			wantKind(t, err, KindTimeout)
			if n := gets.Load(); n < 2 || n > 3 {
				t.Errorf("%d GETs in 2 s", n)
			}
		})
	}
}

// Every read form must extend the previous one; an upstream that goes back
// on what it said is a protocol error.
func TestWaitInconsistent(t *testing.T) {
	t.Parallel()
	const first = `{"mail_from":{},"rcpt_to":[{}],"body":{"blob_status":{"uri":"/b","finalized":true}},"mail_response":{"code":250,"message":"ok"},"rcpt_response":[{"code":250,"message":"ok"}]}`
	for _, tc := range []struct {
		name, status, etag, body string
	}{
		{"changed response", "200", "2", `{"mail_from":{},"rcpt_to":[{}],"body":{"blob_status":{"uri":"/b","finalized":true}},"mail_response":{"code":550,"message":"no"},"rcpt_response":[{"code":250,"message":"ok"}]}`},
		{"removed response", "200", "2", `{"mail_from":{},"rcpt_to":[{}],"body":{"blob_status":{"uri":"/b","finalized":true}},"mail_response":{"code":250,"message":"ok"}}`},
		{"unfinalized body", "200", "2", `{"mail_from":{},"rcpt_to":[{}],"body":{"blob_status":{"uri":"/b"}},"mail_response":{"code":250,"message":"ok"},"rcpt_response":[{"code":250,"message":"ok"}]}`},
		{"no etag", "200", "", first},
		{"not json", "200", "2", `{"mail_from":`},
		{"304 with another etag", "304", "7", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost {
					w.Header().Set("ETag", "1")
					w.Header().Set("Location", "/transactions/t")
					w.WriteHeader(http.StatusCreated)
					_, _ = w.Write([]byte(first))
					return
				}
				if tc.etag != "" {
					w.Header().Set("ETag", tc.etag)
				}
				if tc.status == "304" {
					w.WriteHeader(http.StatusNotModified)
					return
				}
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			ctx := testCtx(t, 5*time.Second)
			up, err := newClient(t, Options{}).Create(ctx, srv.URL+"/senders/x/transactions", envelope())
			if err != nil {
				t.Fatal(err)
			}
			_, err = up.Wait(ctx, dataDone)
			wantKind(t, err, KindProtocol)
			if up.ETag() != "1" || up.State().MailResponse.Code != 250 {
				t.Errorf("state changed to %s %+v", up.ETag(), up.State())
			}
		})
	}
}

func TestWaitStatus(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, resttest.Options{Middleware: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				http.Error(w, "overloaded", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		})
	}})
	ctx := testCtx(t, 5*time.Second)
	up, err := newClient(t, Options{}).Create(ctx, rcv.URL()+"/senders/x/transactions", envelope())
	if err != nil {
		t.Fatal(err)
	}
	_, err = up.Wait(ctx, dataDone)
	if e := wantKind(t, err, KindStatus); e.Status != 503 || e.Safe() != "wait: http status 503" {
		t.Errorf("error %+v safe %q", e, e.Safe())
	}
}

func TestRequestTimeout(t *testing.T) {
	for _, tc := range []struct {
		left time.Duration
		want int
	}{
		{0, 30}, // no deadline
		{500 * time.Millisecond, 1},
		{10500 * time.Millisecond, 9},
		{time.Hour, 30},
	} {
		ctx := context.Background()
		if tc.left > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, tc.left)
			defer cancel()
		}
		if got := requestTimeout(ctx); got != tc.want {
			t.Errorf("%v left: %d, want %d", tc.left, got, tc.want)
		}
	}
}
