package loadgen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SinkOptions configures a Sink. The zero value accepts everything at once over SMTP.
type SinkOptions struct {
	// TempfailRate and PermfailRate are the fractions (0 to 1, together at most 1) of
	// recipients that fail, with 451 4.3.0 and 550 5.7.1. Each failing recipient fails
	// either at its RCPT or, with equal chance, at the end of the data.
	TempfailRate, PermfailRate float64
	// Delay comes before the final answer to each message: the reply to its data, or to
	// a RCPT that fails.
	Delay time.Duration
	LMTP  bool // speak LMTP (LHLO, a reply per recipient after the data) instead of SMTP
	// StartTLS offers STARTTLS with a self-signed certificate made at start.
	StartTLS bool
	// Auth is "user:password": offer AUTH PLAIN and refuse MAIL before it. "" does not
	// offer AUTH.
	Auth string
}

// SinkCounts is what a Sink has done so far.
type SinkCounts struct {
	Connections int64 `json:"connections"` // connections accepted
	Messages    int64 `json:"messages"`    // messages accepted for at least one recipient
	Recipients  int64 `json:"recipients"`  // recipients whose message was accepted
	Bytes       int64 `json:"bytes"`       // bytes of accepted messages
	Tempfailed  int64 `json:"tempfailed"`  // 451 replies given to RCPT or data
	Permfailed  int64 `json:"permfailed"`  // 550 replies given to RCPT or data
}

func (c SinkCounts) String() string {
	return fmt.Sprintf("%d messages accepted (%d recipients, %d bytes), %d tempfailed, %d permfailed, %d connections",
		c.Messages, c.Recipients, c.Bytes, c.Tempfailed, c.Permfailed, c.Connections)
}

// Sink is an SMTP (or LMTP) server that accepts mail and discards it, counting, for the
// far end of a benchmark. It accepts HELO as well as EHLO clients, and offers
// PIPELINING, 8BITMIME, BINARYMIME, CHUNKING, SMTPUTF8, DSN and SIZE.
type Sink struct {
	opts   SinkOptions
	srv    *smtp.Server
	ln     net.Listener
	served chan error
	counts struct{ conns, msgs, rcpts, bytes, temp, perm atomic.Int64 }
}

var (
	errSinkTemp = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure (koukan bench sink)"}
	errSinkPerm = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Rejected (koukan bench sink)"}
)

// Check reports options a sink cannot run with.
func (o SinkOptions) Check() error {
	if o.TempfailRate < 0 || o.PermfailRate < 0 || o.TempfailRate+o.PermfailRate > 1 {
		return fmt.Errorf("failure rates must be from 0 to 1 and add up to at most 1 (tempfail %g, permfail %g)",
			o.TempfailRate, o.PermfailRate)
	}
	if o.Delay < 0 {
		return fmt.Errorf("negative delay %s", o.Delay)
	}
	if o.Auth != "" && !strings.Contains(o.Auth, ":") {
		return errors.New(`auth: want "user:password"`)
	}
	return nil
}

// ListenSink starts a sink on addr (host:port; port 0 picks a free one).
func ListenSink(addr string, opts SinkOptions) (*Sink, error) {
	if err := opts.Check(); err != nil {
		return nil, err
	}
	s := &Sink{opts: opts, served: make(chan error, 1)}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "sink.koukan.invalid"
	srv.LMTP = opts.LMTP
	srv.EnableSMTPUTF8 = true
	srv.EnableBINARYMIME = true
	srv.EnableDSN = true
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 5 * time.Minute
	srv.WriteTimeout = 5 * time.Minute
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if opts.StartTLS {
		cert, err := selfSigned()
		if err != nil {
			return nil, err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s.srv, s.ln = srv, countingListener{ln, &s.counts.conns}
	go func() { s.served <- srv.Serve(s.ln) }()
	return s, nil
}

// Addr is the address the sink listens on.
func (s *Sink) Addr() net.Addr { return s.ln.Addr() }

// Counts is what the sink has done so far.
func (s *Sink) Counts() SinkCounts {
	c := &s.counts
	return SinkCounts{c.conns.Load(), c.msgs.Load(), c.rcpts.Load(), c.bytes.Load(), c.temp.Load(), c.perm.Load()}
}

// Close stops listening and closes every session.
func (s *Sink) Close() error {
	err := s.srv.Close()
	<-s.served
	s.served <- nil // a second Close does not block
	return err
}

func (s *Sink) newSession(*smtp.Conn) (smtp.Session, error) {
	return &sinkSession{s: s, authed: s.opts.Auth == ""}, nil
}

// sinkSession is one client's session. A recipient's fate is drawn at its RCPT: accepted,
// failed there, or failed at the end of the data (fails[i]).
type sinkSession struct {
	s      *Sink
	authed bool
	rcpts  []string
	fails  []error
}

func (ss *sinkSession) Reset() { ss.rcpts, ss.fails = nil, nil }

func (ss *sinkSession) Logout() error { return nil }

func (ss *sinkSession) AuthMechanisms() []string {
	if ss.s.opts.Auth == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *sinkSession) Auth(mech string) (sasl.Server, error) {
	if ss.s.opts.Auth == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user+":"+pass != ss.s.opts.Auth || (identity != "" && identity != user) {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	if !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.Reset()
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	o := &ss.s.opts
	var fail error
	switch x := mrand.Float64(); {
	case x < o.TempfailRate:
		fail = errSinkTemp
	case x < o.TempfailRate+o.PermfailRate:
		fail = errSinkPerm
	}
	if fail != nil && mrand.IntN(2) == 0 {
		ss.failed(fail)
		time.Sleep(o.Delay)
		return fail
	}
	ss.rcpts = append(ss.rcpts, to)
	ss.fails = append(ss.fails, fail)
	return nil
}

func (ss *sinkSession) failed(err error) {
	if err == errSinkTemp {
		ss.s.counts.temp.Add(1)
	} else {
		ss.s.counts.perm.Add(1)
	}
}

// consume reads the message and waits out the delay.
func (ss *sinkSession) consume(r io.Reader) (int64, error) {
	n, err := io.Copy(io.Discard, r)
	time.Sleep(ss.s.opts.Delay)
	return n, err
}

func (ss *sinkSession) accepted(n int64, rcpts int) {
	c := &ss.s.counts
	c.msgs.Add(1)
	c.rcpts.Add(int64(rcpts))
	c.bytes.Add(n)
}

// Data answers for all recipients at once: with the first failure drawn for one of
// them, if any.
func (ss *sinkSession) Data(r io.Reader) error {
	n, err := ss.consume(r)
	if err != nil {
		return err
	}
	for _, f := range ss.fails {
		if f != nil {
			ss.failed(f)
			return f
		}
	}
	ss.accepted(n, len(ss.rcpts))
	return nil
}

// LMTPData answers for each recipient.
func (ss *sinkSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	n, err := ss.consume(r)
	if err != nil {
		return err
	}
	ok := 0
	for i, rcpt := range ss.rcpts {
		if f := ss.fails[i]; f != nil {
			ss.failed(f)
			status.SetStatus(rcpt, f)
		} else {
			ok++
			status.SetStatus(rcpt, nil)
		}
	}
	if ok > 0 {
		ss.accepted(n, ok)
	}
	return nil
}

// selfSigned makes a certificate for localhost and the loopback addresses, good for a
// day: enough for a client that does not verify, or that trusts it explicitly.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "koukan bench sink"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}
