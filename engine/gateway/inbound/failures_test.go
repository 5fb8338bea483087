package inbound

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/rest/resttest"
	"github.com/koukan/koukan/engine/tx"
)

// goErrorText is what Go error text looks like; none of it may reach a
// client.
var goErrorText = []string{"dial", "tcp", "refused", "127.0.0.1", "rest:", "context", "Put ", "Post ", "EOF"}

func checkNoGoText(t *testing.T, reply string) {
	t.Helper()
	for _, s := range goErrorText {
		if strings.Contains(reply, s) {
			t.Errorf("reply %q contains %q", reply, s)
		}
	}
}

func TestUpstreamDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	e := start(t, Options{Endpoint: "http://" + dead + "/senders/ingress/transactions"}, resttest.Options{})
	c := e.client()
	se := wantCode(t, c.Mail("alice@example.com", nil), 451, "4.3.0")
	if !strings.Contains(se.Message, "transaction ") || !strings.Contains(se.Message, "create: connection failed") {
		t.Errorf("reply %q: want the transaction id and the safe description", se.Message)
	}
	checkNoGoText(t, se.Message)
	if !strings.Contains(e.logs.String(), "connection refused") {
		t.Error("the cause is not in the log")
	}
	// The connection is still usable.
	if err := c.Noop(); err != nil {
		t.Fatal(err)
	}
}

// A router out of space (507) is 451 4.3.1: the client tries again later, and the reply
// says why.
func TestUpstreamFull(t *testing.T) {
	t.Parallel()
	full := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInsufficientStorage)
		io.WriteString(w, `{"error":{"code":"storage_full","message":"the router's storage is full; try again later"}}`)
	}))
	defer full.Close()
	e := start(t, Options{Endpoint: full.URL + "/senders/ingress/transactions"}, resttest.Options{})
	se := wantCode(t, e.client().Mail("alice@example.com", nil), 451, "4.3.1")
	checkNoGoText(t, se.Message)
}

func TestUpstreamTimeouts(t *testing.T) {
	t.Parallel()
	slow := func(r resttest.Request) resttest.Reply {
		addr := r.Tx.MailFrom.Address
		if r.Phase == resttest.PhaseRcpt {
			addr = r.Tx.RcptTo[r.Rcpt].Address
		}
		if strings.HasPrefix(addr, "slow-"+r.Phase.String()) {
			return resttest.Reply{Delay: 10 * time.Second}
		}
		if r.Phase == resttest.PhaseData && strings.Contains(string(r.Body), "slow") {
			return resttest.Reply{Delay: 10 * time.Second}
		}
		return resttest.Reply{}
	}
	e := start(t, Options{MailTimeout: 500 * time.Millisecond, RcptTimeout: 500 * time.Millisecond, DataTimeout: 700 * time.Millisecond},
		resttest.Options{Respond: slow})
	c := e.client()

	begin := time.Now()
	se := wantCode(t, c.Mail("slow-mail@example.com", nil), 451, "4.4.5")
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("MAIL answered after %v", d)
	}
	checkNoGoText(t, se.Message)
	e.waitFor("the MAIL transaction cancelled", func(txs []resttest.Received) bool { return len(txs) == 1 && txs[0].Tx.Cancelled })

	// A RCPT that times out gives the transaction up: it is cancelled, and
	// its other commands are refused until RSET.
	if err := c.Mail("alice@example.com", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("ok@example.com", nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Rcpt("slow-rcpt@example.com", nil), 451, "4.4.5")
	wantCode(t, c.Rcpt("other@example.com", nil), 451, "4.3.0")
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("x\r\n"))
	wantCode(t, w.Close(), 451, "4.3.0")
	txs := e.waitFor("the RCPT transaction cancelled", func(txs []resttest.Received) bool { return len(txs) == 2 && txs[1].Tx.Cancelled })
	if len(txs[1].Tx.RcptTo) != 2 || len(txs[1].Body) != 0 {
		t.Errorf("%s", describe(txs[1:]))
	}

	// DATA: the wait starts when the message is in.
	_, err = send(c, "alice@example.com", []string{"bob@example.com"}, "slow\r\n")
	wantCode(t, err, 451, "4.4.5")
	txs = e.waitFor("the DATA transaction cancelled", func(txs []resttest.Received) bool { return len(txs) == 3 && txs[2].Tx.Cancelled })
	if !txs[2].BodyFinalized {
		t.Errorf("%s", describe(txs[2:]))
	}
}

// RequestTimeout bounds one create or update inside the longer wait.
func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/transactions") {
				select {
				case <-time.After(5 * time.Second):
				case <-r.Context().Done():
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	e := start(t, Options{MailTimeout: 20 * time.Second, RequestTimeout: 300 * time.Millisecond}, resttest.Options{Middleware: mw})
	begin := time.Now()
	wantCode(t, e.client().Mail("a@example.com", nil), 451, "4.4.5")
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("answered after %v", d)
	}
}

// A 412 on PATCH (the router moved the version on meanwhile) is retried.
func TestUpdateConflictIsRetried(t *testing.T) {
	t.Parallel()
	var patches atomic.Int64
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPatch && patches.Add(1) == 1 {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusPreconditionFailed)
				w.Write([]byte(`{"error":{"code":"version_conflict","message":"stale"}}`))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	e := start(t, Options{}, resttest.Options{Middleware: mw})
	if _, err := send(e.client(), "a@example.com", []string{"b@example.com"}, "x\r\n"); err != nil {
		t.Fatal(err)
	}
	if txs := e.finished(1); len(txs[0].Tx.RcptTo) != 1 || patches.Load() != 2 {
		t.Errorf("%d PATCHes; %s", patches.Load(), describe(txs))
	}
}

// A cancel the router cannot take now (503: its database is away) is tried
// again until it can, so the router lets the transaction go at once rather
// than at its downstream timeout; a refusal (404) is not tried again.
func TestCancelIsRetried(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		status  int
		code    string
		cancels int64 // POSTs to cancel the router sees
		done    bool  // whether the last one reaches the receiver
	}{
		{"storage unavailable", http.StatusServiceUnavailable, "storage_unavailable", 3, true},
		{"unknown transaction", http.StatusNotFound, "unknown_transaction", 1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var cancels atomic.Int64
			mw := func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if strings.HasSuffix(r.URL.Path, "/cancel") && cancels.Add(1) < 3 {
						w.Header().Set("Content-Type", "application/json")
						w.WriteHeader(c.status)
						w.Write([]byte(`{"error":{"code":"` + c.code + `","message":"not now"}}`))
						return
					}
					next.ServeHTTP(w, r)
				})
			}
			e := start(t, Options{}, resttest.Options{Middleware: mw})
			cl := e.client()
			if err := cl.Mail("a@example.com", nil); err != nil {
				t.Fatal(err)
			}
			if err := cl.Rcpt("b@example.com", nil); err != nil {
				t.Fatal(err)
			}
			if err := cl.Reset(); err != nil {
				t.Fatal(err)
			}
			if c.done {
				if txs := e.finished(1); !txs[0].Tx.Cancelled {
					t.Errorf("not cancelled: %s", describe(txs))
				}
			} else {
				time.Sleep(2 * time.Second) // past two retries, had there been any
			}
			if n := cancels.Load(); n != c.cancels {
				t.Errorf("%d cancels, want %d", n, c.cancels)
			}
		})
	}
}

func TestMaxErrors(t *testing.T) {
	t.Parallel()
	reject := func(r resttest.Request) resttest.Reply {
		if r.Phase == resttest.PhaseRcpt {
			return resttest.Reply{Response: tx.Response{Code: 550, Message: "5.1.1 no such user"}}
		}
		return resttest.Reply{}
	}
	e := start(t, Options{MaxErrors: 2}, resttest.Options{Respond: reject})
	r := e.dialRaw()
	r.expect("220 ")
	r.cmd("EHLO client.test", "250")
	r.cmd("MAIL FROM:<a@example.com>", "250")
	r.cmd("RCPT TO:<u1@example.com>", "550 5.1.1")
	r.cmd("RCPT TO:<u2@example.com>", "550 5.1.1")
	text := r.cmd("RCPT TO:<u3@example.com>", "421 4.7.0")
	if !strings.Contains(text, "550 5.1.1 no such user") {
		t.Errorf("the 421 does not say what the last error was: %q", text)
	}
	r.closed()
	e.waitFor("the transaction cancelled", func(txs []resttest.Received) bool { return len(txs) == 1 && txs[0].Tx.Cancelled })
}

func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	e := start(t, Options{MaxConnsPerIP: 2, MaxConns: 3}, resttest.Options{})
	r1, r2 := e.dialRaw(), e.dialRaw()
	r1.expect("220 ")
	r2.expect("220 ")
	r3 := e.dialRaw()
	r3.expect("421 4.7.0 gw.test Too many connections from your address")
	r3.closed()

	// Once one closes, there is room again.
	r1.cmd("QUIT", "221")
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := e.dialRaw()
		code, text := r.reply()
		if code == 220 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused: %q", text)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTotalConnectionLimit(t *testing.T) {
	t.Parallel()
	e := start(t, Options{MaxConns: 1}, resttest.Options{})
	r1 := e.dialRaw()
	r1.expect("220 ")
	r2 := e.dialRaw()
	r2.expect("421 4.7.0 gw.test Too many connections, try again later")
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	rcv := resttest.NewReceiver(resttest.Options{})
	defer rcv.Close()
	srv, err := New(Options{Endpoint: rcv.URL() + "/senders/ingress/transactions", Hostname: "gw.test", Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	e := &env{t: t, addr: ln.Addr().String(), rcv: rcv}

	idle := e.dialRaw()
	idle.expect("220 ")
	idle.cmd("EHLO client.test", "250")
	busy := e.dialRaw()
	busy.expect("220 ")
	busy.cmd("EHLO client.test", "250")
	busy.cmd("MAIL FROM:<a@example.com>", "250")

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	// The idle connection is ended at once...
	idle.expect("421")
	idle.closed()
	// ...the busy one finishes its message, and is then ended.
	busy.cmd("RCPT TO:<b@example.com>", "250")
	busy.cmd("DATA", "354")
	busy.cmd("last words\r\n.", "250")
	busy.expect("421")
	busy.closed()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if txs := rcv.Transactions(); len(txs) != 1 || txs[0].Tx.DataResponse == nil {
		t.Errorf("%s", describe(txs))
	}
	if _, err := net.Dial("tcp", e.addr); err == nil {
		t.Error("still listening")
	}
}
