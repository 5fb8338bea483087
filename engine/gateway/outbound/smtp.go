package outbound

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// This file is the SMTP/LMTP client: one session is one TCP connection to a peer, from the
// greeting to QUIT, possibly carrying several transactions. It knows the protocol and nothing
// of transactions; the worker drives it and outcome turns what happened into responses.

const (
	// maxReplyLine bounds one reply line (RFC 5321 allows 512 octets); a peer that sends more
	// is broken or hostile.
	maxReplyLine = 4096
	// maxReplyLines bounds a multi-line reply (EHLO lists a dozen extensions).
	maxReplyLines = 100
	// quitTimeout bounds the courtesy QUIT (and RSET when pooling) at the end of a session.
	quitTimeout = 5 * time.Second
)

// reply is one SMTP reply.
type reply struct {
	code  int
	enh   string   // the enhanced status code ("5.1.1"), or ""
	lines []string // the text of each line, the enhanced code stripped
}

func (r *reply) class() int { return r.code / 100 }

// text is the reply's lines joined into one.
func (r *reply) text() string { return strings.Join(r.lines, " ") }

// ioError is a transport failure during an operation: a timeout, a lost connection, or a reply
// that is not SMTP. The session is unusable after it.
type ioError struct {
	op  string
	err error
}

func (e *ioError) Error() string { return e.op + ": " + e.err.Error() }
func (e *ioError) Unwrap() error { return e.err }

// protocolError is a peer that does not speak SMTP as it should.
type protocolError struct{ reason string }

func (e *protocolError) Error() string { return "protocol error: " + e.reason }

// connectError is a failure to open the TCP connection.
type connectError struct {
	addr string
	err  error
}

func (e *connectError) Error() string { return "connecting to " + e.addr + ": " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// replyError is a refusal that ends a session before any transaction: a greeting or EHLO
// that is not 2xx.
type replyError struct {
	op string
	r  *reply
}

func (e *replyError) Error() string { return fmt.Sprintf("%s: %d %s", e.op, e.r.code, e.r.text()) }

// tlsFailure says why a TLS policy could not be met.
type tlsFailure int

const (
	tlsNotOffered tlsFailure = iota + 1 // no STARTTLS in EHLO
	tlsRefused                          // STARTTLS answered with an error
	tlsHandshake                        // the handshake failed
	tlsUnverified                       // the certificate did not verify
)

type tlsError struct {
	kind tlsFailure
	err  error
}

func (e *tlsError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("tls failure %d", e.kind)
	}
	return fmt.Sprintf("tls failure %d: %v", e.kind, e.err)
}
func (e *tlsError) Unwrap() error { return e.err }

// session is one connection to a peer.
type session struct {
	key  poolKey
	raw  net.Conn // the TCP connection
	conn net.Conn // raw, or the TLS connection over it
	br   *bufio.Reader
	bw   *bufio.Writer

	ext      map[string]string // EHLO keywords, upper case, and their parameters
	tls      bool
	verified bool

	timeout time.Duration // per operation
	// deadline, when set, is the end of the current phase: no operation runs past it.
	deadline time.Time
	// messages is how many MAIL commands the session has carried.
	messages int
	// broken: the connection is out of step or gone; it can only be closed.
	broken bool
}

func newSession(c net.Conn, key poolKey, timeout time.Duration) *session {
	s := &session{key: key, raw: c, conn: c, timeout: timeout}
	s.setConn(c)
	return s
}

func (s *session) setConn(c net.Conn) {
	s.conn = c
	s.br = bufio.NewReaderSize(c, maxReplyLine)
	s.bw = bufio.NewWriterSize(deadlineWriter{s}, 32<<10)
}

// opDeadline is when the next operation must be done: after the session's timeout, or at
// the end of the phase if that comes first.
func (s *session) opDeadline() time.Time {
	d := time.Now().Add(s.timeout)
	if !s.deadline.IsZero() && s.deadline.Before(d) {
		return s.deadline
	}
	return d
}

// deadlineWriter gives every write to the peer the operation deadline, so that a peer that
// stops reading in the middle of a message is noticed within the timeout, while a message
// that keeps moving may take as long as it needs.
type deadlineWriter struct{ s *session }

func (w deadlineWriter) Write(p []byte) (int, error) {
	if err := w.s.conn.SetWriteDeadline(w.s.opDeadline()); err != nil {
		return 0, err
	}
	return w.s.conn.Write(p)
}

func (s *session) has(ext string) bool {
	_, ok := s.ext[ext]
	return ok
}

// readReply reads one (possibly multi-line) reply, which must arrive before dl.
func (s *session) readReply(op string, dl time.Time) (*reply, error) {
	if err := s.conn.SetReadDeadline(dl); err != nil {
		s.broken = true
		return nil, &ioError{op, err}
	}
	r, err := s.parseReply()
	if err != nil {
		s.broken = true
		return nil, &ioError{op, err}
	}
	return r, nil
}

func (s *session) parseReply() (*reply, error) {
	r := &reply{}
	for i := 0; ; i++ {
		line, err := s.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, &protocolError{"reply line too long"}
		}
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		l := strings.TrimRight(string(line), "\r\n")
		if len(l) < 3 || l[0] < '1' || l[0] > '5' || !digits(l[:3]) {
			return nil, &protocolError{"malformed reply"}
		}
		code, _ := strconv.Atoi(l[:3])
		if i == 0 {
			r.code = code
		} else if code != r.code {
			return nil, &protocolError{"reply lines with different codes"}
		}
		more := false
		if len(l) > 3 {
			switch l[3] {
			case '-':
				more = true
			case ' ':
			default:
				return nil, &protocolError{"malformed reply"}
			}
		}
		text := ""
		if len(l) > 4 {
			text = l[4:]
		}
		r.lines = append(r.lines, text)
		if !more {
			break
		}
		if i+1 >= maxReplyLines {
			return nil, &protocolError{"reply too long"}
		}
	}
	r.splitEnhanced()
	return r, nil
}

// splitEnhanced takes an RFC 3463 status code off the front of the reply's lines, if the
// first line has one of the reply's class.
func (r *reply) splitEnhanced() {
	code, _, _ := strings.Cut(r.lines[0], " ")
	if !isEnhanced(code) || int(code[0]-'0') != r.class() {
		return
	}
	r.enh = code
	for i, l := range r.lines {
		if rest, ok := strings.CutPrefix(l, code); ok && (rest == "" || rest[0] == ' ') {
			r.lines[i] = strings.TrimPrefix(rest, " ")
		}
	}
}

// isEnhanced reports whether s is class.subject.detail: 2, 4 or 5, then 1-3 and 1-3 digits.
func isEnhanced(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || !strings.ContainsAny(parts[0], "245") {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 || !digits(p) {
			return false
		}
	}
	return true
}

func digits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// cmd sends one command line and reads its reply. op names the command for errors.
func (s *session) cmd(op, line string) (*reply, error) {
	if s.broken {
		return nil, &ioError{op, errors.New("session unusable")}
	}
	if _, err := s.bw.WriteString(line + "\r\n"); err != nil {
		s.broken = true
		return nil, &ioError{op, err}
	}
	if err := s.bw.Flush(); err != nil {
		s.broken = true
		return nil, &ioError{op, err}
	}
	return s.readReply(op, s.opDeadline())
}

// hello says EHLO (LHLO for LMTP) and records the extensions. A peer that does not know EHLO
// (500, 502) gets HELO and is taken to have none. A refusal is a *replyError.
func (s *session) hello(name string, lmtp bool) error {
	verb := "EHLO"
	if lmtp {
		verb = "LHLO"
	}
	r, err := s.cmd(verb, verb+" "+name)
	if err != nil {
		return err
	}
	if !lmtp && (r.code == 500 || r.code == 502) {
		if r, err = s.cmd("HELO", "HELO "+name); err != nil {
			return err
		}
		if r.class() != 2 {
			return &replyError{"HELO", r}
		}
		s.ext = map[string]string{}
		return nil
	}
	if r.class() != 2 {
		return &replyError{verb, r}
	}
	s.ext = map[string]string{}
	for _, l := range r.lines[1:] {
		kw, param, _ := strings.Cut(strings.TrimSpace(l), " ")
		if kw != "" {
			s.ext[strings.ToUpper(kw)] = param
		}
	}
	return nil
}

// startTLS upgrades the connection and says EHLO again. cfg says what to verify.
func (s *session) startTLS(ctx context.Context, cfg *tls.Config, name string, lmtp bool) error {
	r, err := s.cmd("STARTTLS", "STARTTLS")
	if err != nil {
		return err
	}
	if r.code != 220 {
		return &tlsError{kind: tlsRefused}
	}
	// Anything the peer sent after its 220 would be read as if it came over TLS: the
	// STARTTLS command injection of CVE-2011-0411.
	if s.br.Buffered() > 0 {
		s.broken = true
		return &ioError{"STARTTLS", &protocolError{"data after the STARTTLS reply"}}
	}
	tc := tls.Client(s.raw, cfg)
	hctx, cancel := context.WithDeadline(ctx, s.opDeadline())
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		s.broken = true
		if isTimeout(err) {
			return &ioError{"STARTTLS", err}
		}
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			return &tlsError{kind: tlsUnverified, err: err}
		}
		return &tlsError{kind: tlsHandshake, err: err}
	}
	s.setConn(tc)
	s.tls, s.verified = true, !cfg.InsecureSkipVerify
	return s.hello(name, lmtp)
}

// quit ends the session politely, if it still can, and closes it.
func (s *session) quit() {
	if !s.broken {
		s.deadline = time.Now().Add(quitTimeout)
		_, _ = s.cmd("QUIT", "QUIT")
	}
	s.close()
}

func (s *session) close() {
	s.broken = true
	_ = s.raw.Close()
}

// reset ends the current mail transaction; it reports whether the session is still good.
func (s *session) reset() bool {
	if s.broken {
		return false
	}
	s.deadline = time.Now().Add(quitTimeout)
	r, err := s.cmd("RSET", "RSET")
	s.deadline = time.Time{}
	if err != nil || r.code != 250 {
		s.broken = true
		return false
	}
	return true
}

// dataSink takes the message while it streams to the peer.
type dataSink interface {
	// Write sends message bytes; an error means the message failed (a *ioError, or for
	// BDAT a *replyError with the peer's refusal of a chunk).
	Write(p []byte) (int, error)
	// finish ends the message and returns the peer's replies to it: one for SMTP, one per
	// accepted recipient for LMTP. dl bounds the wait for them.
	finish(dl time.Time, n int) ([]*reply, error)
	// abort leaves the message unsent; it reports whether the session can still be used
	// (after RSET).
	abort() bool
}

var (
	_ dataSink = (*dotSink)(nil)
	_ dataSink = (*bdatSink)(nil)
)

// dotSink is a message sent with DATA: dot-stuffed, line endings made CRLF, ended with
// CRLF.CRLF.
type dotSink struct {
	s  *session
	dw io.WriteCloser
}

// data sends DATA; a reply other than 354 is returned for the caller to answer with.
func (s *session) data() (*dotSink, *reply, error) {
	r, err := s.cmd("DATA", "DATA")
	if err != nil || r.code != 354 {
		return nil, r, err
	}
	s.deadline = time.Time{} // from here each write has its own deadline
	return &dotSink{s: s, dw: textproto.NewWriter(s.bw).DotWriter()}, nil, nil
}

func (d *dotSink) Write(p []byte) (int, error) {
	n, err := d.dw.Write(p)
	if err != nil {
		d.s.broken = true
		return n, &ioError{"DATA", err}
	}
	return n, nil
}

// flush sends what the dot-stuffing buffer holds.
func (d *dotSink) flush() error {
	if err := d.s.bw.Flush(); err != nil {
		d.s.broken = true
		return &ioError{"DATA", err}
	}
	return nil
}

func (d *dotSink) finish(dl time.Time, n int) ([]*reply, error) {
	if err := d.dw.Close(); err != nil {
		d.s.broken = true
		return nil, &ioError{"DATA", err}
	}
	return d.s.readReplies("end of DATA", dl, n)
}

// abort: DATA has no way out but the final dot, which would deliver; drop the connection.
func (d *dotSink) abort() bool {
	d.s.close()
	return false
}

func (s *session) readReplies(op string, dl time.Time, n int) ([]*reply, error) {
	out := make([]*reply, 0, n)
	for range n {
		r, err := s.readReply(op, dl)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// bdatSink is a message sent in BDAT chunks. It holds one chunk and sends it only when more
// follows, so that the last chunk, whatever its size, carries LAST.
type bdatSink struct {
	s   *session
	buf []byte
	// chunks counts the chunks sent, for the log.
	chunks int
}

func (s *session) bdat(chunkSize int) *bdatSink {
	s.deadline = time.Time{}
	return &bdatSink{s: s, buf: make([]byte, 0, chunkSize)}
}

func (b *bdatSink) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if len(b.buf) == cap(b.buf) {
			if err := b.send(false); err != nil {
				return n, err
			}
		}
		k := copy(b.buf[len(b.buf):cap(b.buf)], p)
		b.buf = b.buf[:len(b.buf)+k]
		p, n = p[k:], n+k
	}
	return n, nil
}

// send writes the held chunk; a chunk that is not the last gets its reply read here.
func (b *bdatSink) send(last bool) error {
	line := "BDAT " + strconv.Itoa(len(b.buf))
	if last {
		line += " LAST"
	}
	s := b.s
	if _, err := s.bw.WriteString(line + "\r\n"); err != nil {
		s.broken = true
		return &ioError{"BDAT", err}
	}
	if _, err := s.bw.Write(b.buf); err != nil {
		s.broken = true
		return &ioError{"BDAT", err}
	}
	if err := s.bw.Flush(); err != nil {
		s.broken = true
		return &ioError{"BDAT", err}
	}
	b.buf = b.buf[:0]
	b.chunks++
	if last {
		return nil
	}
	r, err := s.readReply("BDAT", s.opDeadline())
	if err != nil {
		return err
	}
	if r.code != 250 {
		// RFC 3030: after a failed chunk the client must not send more.
		return &replyError{"BDAT", r}
	}
	return nil
}

func (b *bdatSink) finish(dl time.Time, n int) ([]*reply, error) {
	if err := b.send(true); err != nil {
		return nil, err
	}
	return b.s.readReplies("BDAT LAST", dl, n)
}

// abort drops the chunk not yet sent; the session stays usable, and the RSET that comes
// before it is pooled ends the transaction (RFC 3030 §2).
func (b *bdatSink) abort() bool {
	b.buf = b.buf[:0]
	return !b.s.broken
}
