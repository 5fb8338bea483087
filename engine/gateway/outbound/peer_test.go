package outbound

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"io"
	"log"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	smtp "github.com/emersion/go-smtp"
)

// This file has the SMTP peers the tests send to: go-smtp's server with a recording backend
// (SMTP or LMTP, with or without STARTTLS), a scripted line-based peer whose extensions and
// replies a test sets, and Postfix's smtp-sink.

// received is one message a peer took, or tried to.
type received struct {
	helo      string
	tls       bool
	from      string
	mailOpts  smtp.MailOptions
	rcpts     []string
	rcptOpts  []smtp.RcptOptions
	size      int64
	sum       string // sha256 of the body
	body      []byte // the first keepBody bytes
	delivered bool   // the body arrived whole
}

const keepBody = 1 << 20

// goPeer is go-smtp's server on 127.0.0.1 with a backend that records what it gets.
type goPeer struct {
	addr string
	srv  *smtp.Server
	ln   *countingListener

	// rcpt, when set, answers RCPT: nil accepts.
	rcpt func(to string) error
	// lmtpData, when set, is the per-recipient data status of an LMTP peer.
	lmtpData func(rcpt string) error

	mu   sync.Mutex
	msgs []*received
}

type peerOpts struct {
	lmtp bool
	tls  *tls.Config
	dsn  bool
	utf8 bool
}

func newGoPeer(t *testing.T, o peerOpts) *goPeer {
	t.Helper()
	p := &goPeer{}
	p.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &goSession{p: p, c: c}, nil
	}))
	p.srv.LMTP = o.lmtp
	p.srv.Network = "tcp"
	p.srv.Domain = "peer.test"
	p.srv.TLSConfig = o.tls
	p.srv.EnableDSN = o.dsn
	p.srv.EnableSMTPUTF8 = o.utf8
	p.srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.ln = &countingListener{Listener: l}
	p.addr = l.Addr().String()
	go func() { _ = p.srv.Serve(p.ln) }()
	t.Cleanup(func() { _ = p.srv.Close() })
	return p
}

func (p *goPeer) port() int { return portOf(p.addr) }

// messages are copies of what the peer has received so far.
func (p *goPeer) messages() []received {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]received, len(p.msgs))
	for i, m := range p.msgs {
		out[i] = *m
	}
	return out
}

// goSession is one connection's backend session; cur is the transaction in progress.
type goSession struct {
	p   *goPeer
	c   *smtp.Conn
	cur *received
}

func (s *goSession) Reset()        { s.cur = nil }
func (s *goSession) Logout() error { return nil }

func (s *goSession) Mail(from string, opts *smtp.MailOptions) error {
	_, isTLS := s.c.TLSConnectionState()
	// cur is this session's until Data publishes it; after that only under p.mu.
	s.cur = &received{helo: s.c.Hostname(), tls: isTLS, from: from}
	if opts != nil {
		s.cur.mailOpts = *opts
	}
	return nil
}

func (s *goSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	if s.p.rcpt != nil {
		if err := s.p.rcpt(to); err != nil {
			return err
		}
	}
	s.cur.rcpts = append(s.cur.rcpts, to)
	var o smtp.RcptOptions
	if opts != nil {
		o = *opts
	}
	s.cur.rcptOpts = append(s.cur.rcptOpts, o)
	return nil
}

// Data counts and hashes the body without holding it, beyond a prefix for assertions.
func (s *goSession) Data(r io.Reader) error {
	m := s.cur
	s.p.mu.Lock()
	s.p.msgs = append(s.p.msgs, m)
	s.p.mu.Unlock()
	// Counted as it arrives, so that a test sees a message that is cut off.
	r = &countingReader{r: r, n: &m.size, mu: &s.p.mu}
	h := sha256.New()
	var keep bytes.Buffer
	_, err := io.Copy(io.MultiWriter(h, &limitWriter{&keep, keepBody}), r)
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	m.sum, m.body = hex.EncodeToString(h.Sum(nil)), keep.Bytes()
	m.delivered = err == nil
	return err
}

type countingReader struct {
	r  io.Reader
	n  *int64
	mu *sync.Mutex
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.mu.Lock()
	*c.n += int64(n)
	c.mu.Unlock()
	return n, err
}

func (s *goSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	if err := s.Data(r); err != nil {
		return err
	}
	for _, rc := range s.cur.rcpts {
		var err error
		if s.p.lmtpData != nil {
			err = s.p.lmtpData(rc)
		}
		status.SetStatus(rc, err)
	}
	return nil
}

type limitWriter struct {
	w *bytes.Buffer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if k := min(len(p), l.n-l.w.Len()); k > 0 {
		l.w.Write(p[:k])
	}
	return len(p), nil
}

// countingListener counts connections and keeps a transcript of each connection's commands
// as long as it is plain text.
type countingListener struct {
	net.Listener
	mu     sync.Mutex
	n      int
	scribe []*scribe
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &scribe{}
	l.mu.Lock()
	l.n++
	l.scribe = append(l.scribe, sc)
	l.mu.Unlock()
	return &scribedConn{Conn: c, s: sc}, nil
}

func (l *countingListener) accepts() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// commands are the commands of every connection so far, in order, one slice per connection.
func (l *countingListener) commands() [][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][]string
	for _, s := range l.scribe {
		out = append(out, s.lines())
	}
	return out
}

type scribedConn struct {
	net.Conn
	s *scribe
}

func (c *scribedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.s.feed(p[:n])
	return n, err
}

// scribe parses what a client sends into command lines, skipping message content (BDAT
// chunks and DATA up to the final dot), and stops at STARTTLS.
type scribe struct {
	mu    sync.Mutex
	cmds  []string
	line  []byte
	skip  int64 // BDAT bytes still to skip
	data  bool  // inside DATA content
	tail  []byte
	tlsOn bool
}

func (s *scribe) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cmds...)
}

func (s *scribe) feed(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(p) > 0 && !s.tlsOn {
		switch {
		case s.skip > 0:
			k := min(int64(len(p)), s.skip)
			s.skip -= k
			p = p[k:]
		case s.data:
			c := p[0]
			p = p[1:]
			s.tail = append(s.tail, c)
			if len(s.tail) > 5 {
				s.tail = s.tail[1:]
			}
			if string(s.tail) == "\r\n.\r\n" {
				s.data, s.tail = false, nil
			}
		default:
			c := p[0]
			p = p[1:]
			if c != '\n' {
				if len(s.line) < 1024 {
					s.line = append(s.line, c)
				}
				continue
			}
			l := strings.TrimSuffix(string(s.line), "\r")
			s.line = s.line[:0]
			s.cmds = append(s.cmds, l)
			verb, arg, _ := strings.Cut(l, " ")
			switch strings.ToUpper(verb) {
			case "BDAT":
				n, _, _ := strings.Cut(arg, " ")
				s.skip, _ = strconv.ParseInt(n, 10, 64)
			case "DATA":
				s.data, s.tail = true, []byte("\r\n")
			case "STARTTLS":
				s.tlsOn = true
			}
		}
	}
}

// verbs is the transcript's first words, joined: "EHLO MAIL RCPT DATA RSET".
func verbs(cmds []string) string {
	var v []string
	for _, c := range cmds {
		verb, _, _ := strings.Cut(c, " ")
		v = append(v, strings.ToUpper(verb))
	}
	return strings.Join(v, " ")
}

// scriptPeer is a line-based SMTP peer whose greeting, extensions and replies a test sets;
// it records each command and takes every message (DATA or BDAT).
type scriptPeer struct {
	addr string
	ln   net.Listener

	greeting string
	ext      []string
	// reply, when set, may replace the reply to a command line ("" keeps the default);
	// "hang" reads nothing more and answers nothing.
	reply func(cmd string) string
	// hangAfterData takes a DATA message and then answers nothing until the client hangs
	// up, which hungUp counts.
	hangAfterData bool

	mu     sync.Mutex
	cmds   []string
	bodies [][]byte
	hungUp int
}

func newScriptPeer(t *testing.T, greeting string, ext ...string) *scriptPeer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &scriptPeer{addr: l.Addr().String(), ln: l, greeting: greeting, ext: ext}
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.serve(c) })
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return p
}

func (p *scriptPeer) port() int { return portOf(p.addr) }

func (p *scriptPeer) commands() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.cmds...)
}

func (p *scriptPeer) messages() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.bodies...)
}

func (p *scriptPeer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	say := func(s string) { _, _ = io.WriteString(c, s+"\r\n") }
	if p.greeting == "hang" {
		_, _ = io.Copy(io.Discard, r)
		return
	}
	say(p.greeting) // after a refusal, RFC 5321 §3.1 has the server wait for QUIT: so does this
	var body []byte
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimRight(line, "\r\n")
		p.mu.Lock()
		p.cmds = append(p.cmds, cmd)
		p.mu.Unlock()
		if p.reply != nil {
			switch rep := p.reply(cmd); rep {
			case "":
			case "hang":
				_, _ = io.Copy(io.Discard, r)
				return
			default:
				say(rep)
				continue
			}
		}
		verb, arg, _ := strings.Cut(cmd, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "LHLO":
			lines := append([]string{"peer.test"}, p.ext...)
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				say("250" + sep + l)
			}
		case "HELO", "MAIL", "RCPT", "RSET", "NOOP":
			say("250 2.0.0 ok")
		case "DATA":
			say("354 go ahead")
			var msg []byte
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				msg = append(msg, strings.TrimPrefix(l, ".")...)
			}
			p.mu.Lock()
			p.bodies = append(p.bodies, msg)
			p.mu.Unlock()
			if p.hangAfterData {
				_, _ = io.Copy(io.Discard, r)
				p.mu.Lock()
				p.hungUp++
				p.mu.Unlock()
				return
			}
			say("250 2.0.0 queued")
		case "BDAT":
			f := strings.Fields(arg)
			n, _ := strconv.Atoi(f[0])
			chunk := make([]byte, n)
			if _, err := io.ReadFull(r, chunk); err != nil {
				return
			}
			body = append(body, chunk...)
			if len(f) > 1 {
				p.mu.Lock()
				p.bodies = append(p.bodies, body)
				p.mu.Unlock()
				body = nil
				say("250 2.0.0 queued")
			} else {
				say("250 2.0.0 chunk ok")
			}
		case "QUIT":
			say("221 2.0.0 bye")
			return
		default:
			say("502 5.5.2 unknown command")
		}
	}
}

// sink is Postfix's smtp-sink writing one file per message into dir.
type sink struct {
	addr string
	dir  string
}

func startSink(t *testing.T) *sink {
	t.Helper()
	bin, err := exec.LookPath("smtp-sink")
	if err != nil {
		bin = "/usr/sbin/smtp-sink"
		if _, err := os.Stat(bin); err != nil {
			t.Skip("smtp-sink (Postfix) is not installed")
		}
	}
	dir, err := os.MkdirTemp("", "outbound-sink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	args := []string{"-d", filepath.Join(dir, "msg."), addr, "10"}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody"}, args...)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp-sink did not start on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &sink{addr: addr, dir: dir}
}

func (s *sink) port() int { return portOf(s.addr) }

// files are the non-empty message files (empty ones are aborted transactions).
func (s *sink) files(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 {
			out = append(out, string(b))
		}
	}
	return out
}

// freeAddr is a loopback address nothing listens on (for a moment).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

// selfSigned is a certificate for 127.0.0.1 and mx.test that is its own authority.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mx.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"mx.test"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
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

// smtpErr is a reply a go-smtp backend gives.
func smtpErr(code int, enh smtp.EnhancedCode, msg string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
}

// lazyBody produces n bytes of CRLF lines on demand, so a test can send a large message
// without holding it; sum is its sha256.
type lazyBody struct {
	n, off int64
	line   []byte
}

func newLazyBody(n int64) *lazyBody {
	return &lazyBody{n: n, line: []byte("Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef", 4) + "\r\n")}
}

func (b *lazyBody) lineLen() int { return len(b.line) }

func (b *lazyBody) Read(p []byte) (int, error) {
	if b.off >= b.n {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && b.off < b.n {
		i := b.off % int64(len(b.line))
		c := copy(p[k:], b.line[i:])
		c = int(min(int64(c), b.n-b.off))
		k += c
		b.off += int64(c)
	}
	return k, nil
}

func lazySum(n int64) string {
	h := sha256.New()
	_, _ = io.Copy(h, newLazyBody(n))
	return hex.EncodeToString(h.Sum(nil))
}

// must is for test setup that cannot fail unless the test itself is broken.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
