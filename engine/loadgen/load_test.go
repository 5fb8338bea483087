package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/koukan/koukan/engine/rest/resttest"
	"github.com/koukan/koukan/engine/tx"
)

func load(n, c int) Load {
	return Load{Messages: n, Concurrency: c, Size: 2048, From: "bench@example.com", To: "sink@example.net", Timeout: 10 * time.Second}
}

func startSink(t *testing.T, o SinkOptions) *Sink {
	t.Helper()
	s, err := ListenSink("127.0.0.1:0", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSMTPThroughStartTLSAndAuth(t *testing.T) {
	s := startSink(t, SinkOptions{StartTLS: true, Auth: "u:p"})
	run, err := StartSMTP(t.Context(), load(50, 3), SMTPOptions{Target: s.Addr().String(), StartTLS: true, Insecure: true, Auth: "u:p", EHLO: "bench.test"})
	if err != nil {
		t.Fatal(err)
	}
	r := run.Wait()
	if r.Sent != 50 || r.OK != 50 || len(r.Errors) != 0 || r.Incomplete {
		t.Fatalf("result %+v", r)
	}
	if c := s.Counts(); c.Messages != 50 || c.Connections != 3 || c.Bytes != 50*2048 {
		t.Errorf("sink counts %+v", c)
	}
	// A wrong password fails every message, with the server's reply.
	run, _ = StartSMTP(t.Context(), load(4, 2), SMTPOptions{Target: s.Addr().String(), StartTLS: true, Insecure: true, Auth: "u:wrong"})
	if r := run.Wait(); r.OK != 0 || len(r.Errors) != 1 || r.Errors[0] != (Group{"535 5.7.8", 4}) {
		t.Errorf("wrong password: %+v", r)
	}
	// Verifying the self-signed certificate fails, as a TLS failure, not a crash.
	run, _ = StartSMTP(t.Context(), load(2, 1), SMTPOptions{Target: s.Addr().String(), StartTLS: true})
	if r := run.Wait(); r.OK != 0 || r.Failed != 2 || !strings.HasPrefix(r.Errors[0].Code, "starttls: ") {
		t.Errorf("unverified certificate: %+v", r)
	}
}

func TestSinkFailsAtTheRates(t *testing.T) {
	s := startSink(t, SinkOptions{TempfailRate: 0.3, PermfailRate: 0.2})
	run, _ := StartSMTP(t.Context(), load(600, 4), SMTPOptions{Target: s.Addr().String()})
	r := run.Wait()
	groups := map[string]int{}
	for _, g := range r.Errors {
		groups[g.Code] = g.Count
	}
	if r.Sent != 600 || len(groups) != 2 || groups["451 4.3.0"]+groups["550 5.7.1"] != r.Failed {
		t.Fatalf("result %+v", r)
	}
	// 180 and 120 expected; these bounds are many standard deviations wide.
	if n := groups["451 4.3.0"]; n < 110 || n > 250 {
		t.Errorf("%d tempfails of 600 at rate 0.3", n)
	}
	if n := groups["550 5.7.1"]; n < 60 || n > 180 {
		t.Errorf("%d permfails of 600 at rate 0.2", n)
	}
	c := s.Counts()
	if c.Messages != int64(r.OK) || c.Tempfailed != int64(groups["451 4.3.0"]) || c.Permfailed != int64(groups["550 5.7.1"]) {
		t.Errorf("sink counts %+v, client %+v", c, r)
	}
	if c.Connections != 4 {
		t.Errorf("%d connections: failed transactions must not cost the session", c.Connections)
	}
}

func TestSinkDelay(t *testing.T) {
	s := startSink(t, SinkOptions{Delay: 20 * time.Millisecond})
	run, _ := StartSMTP(t.Context(), load(8, 4), SMTPOptions{Target: s.Addr().String()})
	r := run.Wait()
	if r.OK != 8 || r.Latency.P50 < 20 {
		t.Errorf("result %+v, want every latency at least the 20ms delay", r)
	}
}

// TestSinkSpeaksHELOAndLMTP talks to the sink as Postfix's smtp-source does (HELO, the
// commands pipelined) and as an LMTP client.
func TestSinkSpeaksHELOAndLMTP(t *testing.T) {
	s := startSink(t, SinkOptions{})
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tp := textproto.NewConn(conn)
	expect := func(code int) {
		t.Helper()
		if _, msg, err := tp.ReadResponse(code); err != nil {
			t.Fatalf("want %d: %v %s", code, err, msg)
		}
	}
	expect(220)
	fmt.Fprintf(conn, "HELO client.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
	expect(250)
	expect(250)
	expect(250)
	expect(354)
	fmt.Fprintf(conn, "Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n")
	expect(250)
	expect(221)
	if c := s.Counts(); c.Messages != 1 {
		t.Errorf("after HELO session: %+v", c)
	}

	ls := startSink(t, SinkOptions{LMTP: true, PermfailRate: 1})
	lc, err := net.Dial("tcp", ls.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(lc)
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for round := 0; accepted == 0 && round < 50; round++ { // half the failures wait for the data
		if err := c.Mail("a@example.com", nil); err != nil {
			t.Fatal(err)
		}
		for _, r := range []string{"x@example.net", "y@example.net"} {
			if err := c.Rcpt(r, nil); err == nil {
				accepted++
			}
		}
		if accepted == 0 {
			c.Reset()
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: x\r\n\r\nhello\r\n")
	_, err = w.CloseWithLMTPResponse()
	var lerr smtp.LMTPDataError
	if !errors.As(err, &lerr) || len(lerr) != accepted {
		t.Fatalf("LMTP data: %v, want a 550 per accepted recipient (%d)", err, accepted)
	}
	for _, e := range lerr {
		if e.Code != 550 {
			t.Errorf("LMTP reply %v", e)
		}
	}
}

// TestSMTPReconnects checks that a 421 and a dropped connection cost one message at
// most: the session reconnects and carries on.
func TestSMTPReconnects(t *testing.T) {
	var mails, conns atomic.Int64
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		conns.Add(1)
		return &flakySession{c: c, mails: &mails}, nil
	}))
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	run, _ := StartSMTP(t.Context(), load(100, 2), SMTPOptions{Target: ln.Addr().String()})
	r := run.Wait()
	// Every 7th MAIL gets 421, and the third on each connection finds it closed: the
	// 421s fail their message, the messages that met a dropped connection are retried.
	if r.Sent != 100 || r.Failed == 0 || len(r.Errors) != 1 || r.Errors[0].Code != "421 4.4.2" || r.Errors[0].Count != r.Failed {
		t.Errorf("result %+v", r)
	}
	if conns.Load() < 10 {
		t.Errorf("%d connections, want a reconnect after each 421 and drop", conns.Load())
	}
}

type flakySession struct {
	c     *smtp.Conn
	mails *atomic.Int64 // across connections
	n     int           // on this one
}

func (f *flakySession) Reset()        {}
func (f *flakySession) Logout() error { return nil }
func (f *flakySession) Mail(string, *smtp.MailOptions) error {
	f.n++
	if f.n == 3 {
		f.c.Conn().Close()
		return errors.New("gone")
	}
	if f.mails.Add(1)%7 == 0 {
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "closing"}
	}
	return nil
}
func (f *flakySession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (f *flakySession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

func TestSMTPStopsWhenCancelled(t *testing.T) {
	s := startSink(t, SinkOptions{Delay: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	run, _ := StartSMTP(ctx, load(10000, 4), SMTPOptions{Target: s.Addr().String()})
	time.Sleep(120 * time.Millisecond)
	cancel()
	done := make(chan *Result)
	go func() { done <- run.Wait() }()
	select {
	case r := <-done:
		if !r.Incomplete || r.Sent >= 10000 || r.Failed != 0 {
			t.Errorf("result %+v: abandoned messages must not count as failed", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not stop")
	}
}

func TestRESTWaitFinalGroupsFailures(t *testing.T) {
	var n atomic.Int64
	rcv := resttest.NewReceiver(resttest.Options{Respond: func(req resttest.Request) resttest.Reply {
		if req.Phase == resttest.PhaseData && n.Add(1)%4 == 0 {
			return resttest.Reply{Response: tx.Response{Code: 451, Message: "4.3.0 try again later"}}
		}
		return resttest.Reply{}
	}})
	defer rcv.Close()
	l := load(40, 4)
	l.Size = 100 << 10 // above InlineMax: PUT to the body URI
	run, err := StartREST(t.Context(), l, RESTOptions{Router: rcv.URL(), Sender: "bench", WaitFinal: true, InlineMax: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	r := run.Wait()
	if r.Sent != 40 || r.OK != 30 || len(r.Errors) != 1 || r.Errors[0] != (Group{"451 4.3.0", 10}) {
		t.Fatalf("result %+v", r)
	}
	for _, rc := range rcv.Transactions() {
		if len(rc.Body) != 100<<10 || !rc.BodyFinalized || !strings.Contains(string(rc.Body), "\r\nMessage-ID: <") {
			t.Fatalf("transaction %s: body of %d bytes, finalized %v", rc.ID, len(rc.Body), rc.BodyFinalized)
		}
	}
}

func TestRESTWithoutWaitAndErrors(t *testing.T) {
	rcv := resttest.NewReceiver(resttest.Options{Respond: func(resttest.Request) resttest.Reply {
		return resttest.Reply{Delay: time.Hour} // never answers: only the 201 is measured
	}})
	defer rcv.Close()
	run, _ := StartREST(t.Context(), load(20, 4), RESTOptions{Router: rcv.URL(), Sender: "bench"})
	if r := run.Wait(); r.OK != 20 {
		t.Errorf("without --wait-final: %+v", r)
	}
	// An unknown route is an HTTP error, grouped by the client's safe text.
	run, _ = StartREST(t.Context(), load(3, 1), RESTOptions{Router: rcv.URL() + "/nowhere/transactions"})
	if r := run.Wait(); r.OK != 0 || len(r.Errors) != 1 || !strings.HasPrefix(r.Errors[0].Code, "create: ") {
		t.Errorf("unknown route: %+v", r)
	}
	// A transaction that never finishes times out.
	l := load(2, 2)
	l.Timeout = 100 * time.Millisecond
	run, _ = StartREST(t.Context(), l, RESTOptions{Router: rcv.URL(), Sender: "bench", WaitFinal: true})
	if r := run.Wait(); r.OK != 0 || len(r.Errors) != 1 || r.Errors[0] != (Group{"wait: timeout", 2}) {
		t.Errorf("timeout: %+v", r)
	}
}

func TestBadOptions(t *testing.T) {
	ctx := t.Context()
	for _, err := range []error{
		func() error { _, err := StartSMTP(ctx, load(0, 1), SMTPOptions{Target: "127.0.0.1:25"}); return err }(),
		func() error { _, err := StartSMTP(ctx, load(1, 0), SMTPOptions{Target: "127.0.0.1:25"}); return err }(),
		func() error { _, err := StartSMTP(ctx, load(1, 1), SMTPOptions{Target: "nowhere"}); return err }(),
		func() error {
			_, err := StartSMTP(ctx, load(1, 1), SMTPOptions{Target: "h:1", Auth: "nocolon"})
			return err
		}(),
		func() error {
			_, err := StartREST(ctx, load(1, 1), RESTOptions{Router: "ftp://x", Sender: "s"})
			return err
		}(),
		func() error { _, err := StartREST(ctx, load(1, 1), RESTOptions{Router: "http://x"}); return err }(),
		SinkOptions{TempfailRate: 0.6, PermfailRate: 0.6}.Check(),
		SinkOptions{TempfailRate: -1}.Check(),
		SinkOptions{Delay: -time.Second}.Check(),
	} {
		if err == nil {
			t.Error("bad options accepted")
		}
	}
}
