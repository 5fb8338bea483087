package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPOptions says how to reach the SMTP server under load.
type SMTPOptions struct {
	Target   string // host:port
	EHLO     string // the name to greet with; "" is "localhost"
	StartTLS bool   // upgrade each connection with STARTTLS before anything else
	Insecure bool   // with StartTLS, accept any certificate
	// Auth is "user:password" to authenticate each connection with AUTH PLAIN; "" does not
	// authenticate.
	Auth string
}

// StartSMTP starts an SMTP run: load.Concurrency sessions, each sending messages one after
// the other over one connection (MAIL, RCPT, DATA; RSET after a failed transaction).
// A session reconnects when the server says 421 or drops the connection; a message that
// finds its reused connection gone before any reply to it is sent again on a new one
// once, since the connection's end is not its failure. A message's latency runs from its
// MAIL command to the final reply to its data; setting up a connection is not part of it.
func StartSMTP(ctx context.Context, load Load, o SMTPOptions) (*Run, error) {
	if err := load.check(); err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(o.Target); err != nil {
		return nil, fmt.Errorf("target %q: want host:port", o.Target)
	}
	if o.Auth != "" && !strings.Contains(o.Auth, ":") {
		return nil, errors.New(`auth: want "user:password"`)
	}
	if o.EHLO == "" {
		o.EHLO = "localhost"
	}
	return start(ctx, load, "smtp", o.Target, func() sender {
		return &smtpSender{o: o, load: load}
	}), nil
}

type smtpSender struct {
	o         SMTPOptions
	load      Load
	c         *smtp.Client
	stop      func() bool // stops the context watch that closes c
	dirty     bool        // a transaction failed on c: RSET before the next
	reused    bool        // c has carried a message already
	tlsConfig *tls.Config
}

func (s *smtpSender) close() {
	if s.c != nil {
		s.c.Quit()
		s.drop()
	}
}

// drop closes the connection without a word.
func (s *smtpSender) drop() {
	if s.c != nil {
		s.stop()
		s.c.Close()
		s.c = nil
	}
}

// connect opens a session: greeting, EHLO (HELO if the server refuses it), STARTTLS and
// AUTH as asked.
func (s *smtpSender) connect(ctx context.Context) (string, error) {
	d := net.Dialer{Timeout: s.load.Timeout}
	conn, err := d.DialContext(ctx, "tcp", s.o.Target)
	if err != nil {
		return "connect", err
	}
	var c *smtp.Client
	if s.o.StartTLS {
		if s.tlsConfig == nil {
			host, _, _ := net.SplitHostPort(s.o.Target)
			s.tlsConfig = &tls.Config{ServerName: host, InsecureSkipVerify: s.o.Insecure}
		}
		// go-smtp greets with "localhost" before STARTTLS; the configured name follows it.
		conn.SetDeadline(time.Now().Add(s.load.Timeout))
		c, err = smtp.NewClientStartTLS(conn, s.tlsConfig)
		if err != nil {
			conn.Close()
			return "starttls", err
		}
		conn.SetDeadline(time.Time{})
	} else {
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout = s.load.Timeout
	c.SubmissionTimeout = s.load.Timeout
	s.c, s.stop, s.dirty, s.reused = c, context.AfterFunc(ctx, func() { c.Close() }), false, false
	if err := c.Hello(s.o.EHLO); err != nil {
		s.drop()
		if s.o.StartTLS { // the TLS handshake happens here, at the first use
			return "starttls", err
		}
		return "ehlo", err
	}
	if s.o.Auth != "" {
		user, pass, _ := strings.Cut(s.o.Auth, ":")
		if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
			s.drop()
			return "auth", err
		}
	}
	return "", nil
}

func (s *smtpSender) send(ctx context.Context, m Message) outcome {
	for attempt := 0; ; attempt++ {
		if s.c == nil {
			if step, err := s.connect(ctx); err != nil {
				return s.failed(step, err)
			}
		}
		reused := s.reused
		start := time.Now()
		step, err := s.transaction(m)
		if err == nil {
			s.reused = true
			return outcome{ok: true, latency: time.Since(start)}
		}
		o := s.failed(step, err)
		// A reused connection that is gone before the server said anything about this
		// message (an idle timeout, a 421 at MAIL): the message gets a fresh one.
		if attempt == 0 && reused && s.c == nil && (step == "rset" || step == "mail") {
			continue
		}
		return o
	}
}

// transaction sends one message over s.c and says at which step it failed.
func (s *smtpSender) transaction(m Message) (string, error) {
	if s.dirty {
		if err := s.c.Reset(); err != nil {
			return "rset", err
		}
		s.dirty = false
	}
	s.dirty = true // until the final reply is known
	if err := s.c.Mail(s.load.From, &smtp.MailOptions{Size: int64(m.Len())}); err != nil {
		return "mail", err
	}
	if err := s.c.Rcpt(s.load.To, nil); err != nil {
		return "rcpt", err
	}
	w, err := s.c.Data()
	if err != nil {
		return "data", err
	}
	if _, err := m.WriteTo(w); err != nil {
		w.Close()
		return "data", err
	}
	if err := w.Close(); err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			s.dirty = false // the transaction is over either way
		}
		return "data", err
	}
	s.dirty = false
	return "", nil
}

// failed turns an error into the message's outcome, and drops the connection unless the
// error is a reply that leaves the session usable.
func (s *smtpSender) failed(step string, err error) outcome {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		if se.Code == 421 || se.Code < 400 || se.Code > 599 {
			s.drop()
		}
		return outcome{code: smtpReplyCode(se)}
	}
	s.drop()
	return outcome{code: failureCode(step, err)}
}

func smtpReplyCode(se *smtp.SMTPError) string {
	e := se.EnhancedCode
	if e == smtp.EnhancedCodeNotSet || e == smtp.NoEnhancedCode {
		return replyCode(se.Code, se.Message)
	}
	return fmt.Sprintf("%d %d.%d.%d", se.Code, e[0], e[1], e[2])
}
