package rest

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/rest/resttest"
	"github.com/koukan/koukan/engine/tx"
)

func newClient(t *testing.T, opts Options) *Client {
	t.Helper()
	c, err := NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newReceiver(t *testing.T, opts resttest.Options) *resttest.Receiver {
	rcv := resttest.NewReceiver(opts)
	t.Cleanup(rcv.Close)
	return rcv
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// envelope is a one-recipient transaction as rest_output creates it.
func envelope() *tx.Tx {
	return &tx.Tx{
		Sender:     &tx.Sender{Name: "router", Tag: "out"},
		MailFrom:   &tx.Mailbox{Address: "alice@example.com"},
		RcptTo:     []tx.Mailbox{{Address: "bob@example.com"}},
		RemoteHost: &tx.HostPort{Host: "203.0.113.9", Port: 25},
	}
}

func dataDone(s *tx.Tx) bool { return s.DataResponse != nil }

// seen is a request as a test server saw it.
type seen struct {
	method, path string
	header       http.Header
	proto        int
}

// recorder is a resttest middleware that records every request.
type recorder struct {
	mu   sync.Mutex
	reqs []seen
}

func (rec *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, seen{r.Method, r.URL.Path, r.Header.Clone(), r.ProtoMajor})
		rec.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// of lists the recorded requests with a method.
func (rec *recorder) of(method string) []seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []seen
	for _, s := range rec.reqs {
		if s.method == method {
			out = append(out, s)
		}
	}
	return out
}

// wantKind fails unless err is an *Error of kind k.
func wantKind(t *testing.T, err error, k Kind) *Error {
	t.Helper()
	e, ok := errors.AsType[*Error](err)
	if !ok || e.Kind != k {
		t.Fatalf("error %v (%T), want kind %v", err, err, k)
	}
	return e
}
