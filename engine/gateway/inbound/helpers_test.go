package inbound

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/koukan/koukan/engine/rest/resttest"
	"github.com/koukan/koukan/engine/tx"

	"github.com/koukan/koukan/internal/syncbuf"
)

// env is a gateway in front of a REST test receiver standing in for the
// router, both on loopback.
type env struct {
	t    testing.TB
	srv  *Server
	addr string
	rcv  *resttest.Receiver
	logs *syncbuf.Buffer
	opts Options
}

// start runs a gateway with o (Endpoint, Sender, Tag, Hostname and Log
// filled in unless set) before a receiver with ro.
func start(t testing.TB, o Options, ro resttest.Options) *env {
	t.Helper()
	rcv := resttest.NewReceiver(ro)
	e := &env{t: t, rcv: rcv, logs: &syncbuf.Buffer{}}
	if o.Endpoint == "" {
		o.Endpoint = rcv.URL() + "/senders/ingress/transactions"
	}
	if o.Sender == "" {
		o.Sender, o.Tag = "ingress", "smtp-mx"
	}
	if o.Hostname == "" {
		o.Hostname = "gw.test"
	}
	if o.AuthFailureDelay == 0 {
		o.AuthFailureDelay = -1 // the AUTH throttle's waits are throttle_test.go's
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	e.opts = o
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.srv, e.addr = srv, ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		rcv.Close()
		if n := srv.Panics(); n != 0 {
			t.Errorf("%d panics", n)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", e.logs)
		}
	})
	return e
}

// waitFor polls the receiver until cond holds for its transactions.
func (e *env) waitFor(what string, cond func([]resttest.Received) bool) []resttest.Received {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		txs := e.rcv.Transactions()
		if cond(txs) {
			return txs
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s; transactions: %s", what, describe(txs))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// finished waits until n transactions are finished (cancelled included).
func (e *env) finished(n int) []resttest.Received {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	txs, err := e.rcv.WaitFor(ctx, n)
	if err != nil {
		e.t.Fatalf("waiting for %d finished transactions: %v; have %s", n, err, describe(e.rcv.Transactions()))
	}
	return txs
}

func describe(txs []resttest.Received) string {
	var b strings.Builder
	for _, rc := range txs {
		fmt.Fprintf(&b, "\n  %s: mail %v rcpts %v mail_response %v rcpt_responses %v data_response %v cancelled %v body %d bytes final %v",
			rc.ID, rc.Tx.MailFrom, rc.Tx.RcptTo, rc.Tx.MailResponse, rc.Tx.RcptResponse, rc.Tx.DataResponse, rc.Tx.Cancelled, len(rc.Body), rc.BodyFinalized)
	}
	return b.String()
}

// client is a go-smtp client that has said EHLO.
func (e *env) client() *smtp.Client {
	e.t.Helper()
	c, err := smtp.Dial(e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.test"); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// send runs one transaction with a go-smtp client and returns the DATA
// reply (or the first error).
func send(c *smtp.Client, from string, to []string, body string) (*smtp.DataResponse, error) {
	if err := c.Mail(from, nil); err != nil {
		return nil, err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return nil, err
		}
	}
	w, err := c.Data()
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(w, body); err != nil {
		return nil, err
	}
	return w.CloseWithResponse()
}

func smtpErr(t *testing.T, err error) *smtp.SMTPError {
	t.Helper()
	se, ok := err.(*smtp.SMTPError)
	if !ok {
		t.Fatalf("got %v (%T), want an SMTP error reply", err, err)
	}
	return se
}

// wantCode checks an error reply's code and enhanced code ("5.1.1").
func wantCode(t *testing.T, err error, code int, enh string) *smtp.SMTPError {
	t.Helper()
	se := smtpErr(t, err)
	got := fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	if se.Code != code || got != enh {
		t.Fatalf("reply %d %s %q, want %d %s", se.Code, got, se.Message, code, enh)
	}
	return se
}

// raw is a line-level SMTP client for what go-smtp's client cannot say
// (BDAT, bare LF, pipelining by hand, garbage).
type raw struct {
	t testing.TB
	c net.Conn
	r *textproto.Reader
	w *bufio.Writer
}

func (e *env) dialRaw() *raw {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	return newRaw(e.t, c)
}

func newRaw(t testing.TB, c net.Conn) *raw {
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return &raw{t: t, c: c, r: textproto.NewReader(bufio.NewReader(c)), w: bufio.NewWriter(c)}
}

// write sends s as it is.
func (r *raw) write(s string) {
	r.t.Helper()
	if _, err := r.w.WriteString(s); err != nil {
		r.t.Fatal(err)
	}
	if err := r.w.Flush(); err != nil {
		r.t.Fatal(err)
	}
}

// reply reads one (possibly multi-line) reply.
func (r *raw) reply() (int, string) {
	r.t.Helper()
	var lines []string
	for {
		line, err := r.r.ReadLine()
		if err != nil {
			r.t.Fatalf("reading a reply (after %q): %v", lines, err)
		}
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			break
		}
	}
	last := lines[len(lines)-1]
	var code int
	fmt.Sscanf(last, "%d", &code)
	return code, strings.Join(lines, "\n")
}

// expect reads a reply and checks that it starts with prefix (e.g. "250"
// or "552 5.3.4").
func (r *raw) expect(prefix string) string {
	r.t.Helper()
	_, text := r.reply()
	last := text[strings.LastIndexByte(text, '\n')+1:]
	if !strings.HasPrefix(last, prefix) {
		r.t.Fatalf("got %q, want %q...", text, prefix)
	}
	return text
}

// cmd sends a command line (CRLF added) and checks the reply.
func (r *raw) cmd(line, prefix string) string {
	r.t.Helper()
	r.write(line + "\r\n")
	return r.expect(prefix)
}

// closed checks that the server has closed the connection.
func (r *raw) closed() {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := r.r.ReadLine()
	if err == nil {
		r.t.Fatalf("got %q, want the connection closed", line)
	}
}

// selfSigned makes a certificate for 127.0.0.1 and localhost.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gw.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		DNSNames:              []string{"localhost", "gw.test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func serverTLS(t *testing.T) (*tls.Config, *tls.Config) {
	cert, pool := selfSigned(t)
	return &tls.Config{Certificates: []tls.Certificate{cert}}, &tls.Config{RootCAs: pool, ServerName: "gw.test"}
}

// meta reads an smtp_meta value.
func meta(t *testing.T, rc resttest.Received, key string) string {
	t.Helper()
	return string(rc.Tx.SMTPMeta[key])
}

func params(mb tx.Mailbox) string {
	var s []string
	for _, p := range mb.Esmtp {
		s = append(s, p.String())
	}
	return strings.Join(s, " ")
}

// message is a test message with CRLF line ends.
func message(lines ...string) string {
	return strings.Join(lines, "\r\n") + "\r\n"
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// clientStartTLS is a go-smtp client that has said EHLO after STARTTLS.
func (e *env) clientStartTLS(cfg *tls.Config) *smtp.Client {
	e.t.Helper()
	c, err := smtp.DialStartTLS(e.addr, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.test"); err != nil {
		e.t.Fatal(err)
	}
	return c
}
