package tests

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// peerTx is one transaction an in-test SMTP (or LMTP) server saw, from MAIL on.
type peerTx struct {
	Helo     string
	TLS      bool
	From     string
	MailOpts smtp.MailOptions
	// Rcpts are the recipients the server accepted; RcptParams whether each came with
	// ESMTP parameters.
	Rcpts      []string
	RcptParams []bool
	// Data is the message, once the end of DATA was reached (nil before or without);
	// DataErr is the reply refusing it, nil when it was accepted.
	Data    []byte
	DataErr *smtp.SMTPError
}

// String shows the message as text, for failure messages.
func (p peerTx) String() string {
	return fmt.Sprintf("{HELO %s TLS %v MAIL FROM:<%s> %+v RCPT %q data refused: %v message:\n%s}", p.Helo, p.TLS, p.From,
		p.MailOpts, p.Rcpts, p.DataErr, p.Data)
}

// delivered reports whether the message was received and accepted.
func (p peerTx) delivered() bool { return p.Data != nil && p.DataErr == nil }

// peerReply scripts the replies of an in-test server: stage is "rcpt" or "data", rcpt the
// recipient's address (lower case) and attempt how many times the server has now seen RCPT
// for it (from 1). Nil accepts.
type peerReply func(stage, rcpt string, attempt int) *smtp.SMTPError

// smtpPeer is an in-test mail server on a free loopback port: "the internet" (SMTP) or the
// local mail store (LMTP). It records every transaction and answers as reply scripts.
type smtpPeer struct {
	port  int
	reply peerReply

	mu       sync.Mutex
	txs      []*peerTx
	attempts map[string]int
}

// startPeer serves SMTP (or LMTP) on 127.0.0.1 until the test ends.
func startPeer(t *testing.T, lmtp bool, reply peerReply) *smtpPeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &smtpPeer{port: ln.Addr().(*net.TCPAddr).Port, reply: reply, attempts: map[string]int{}}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &peerSession{p: p, conn: c}, nil
	}))
	srv.LMTP = lmtp
	srv.Domain = "peer.test"
	srv.MaxMessageBytes = 10 << 20
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.ErrorLog = peerLog{}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return p
}

type peerLog struct{}

func (peerLog) Printf(string, ...any) {}
func (peerLog) Println(...any)        {}

// smtpErr is a scripted reply, e.g. smtpErr(451, "4.3.0", "try again later").
func smtpErr(code int, enhanced string, msg string) *smtp.SMTPError {
	var ec smtp.EnhancedCode
	fmt.Sscanf(enhanced, "%d.%d.%d", &ec[0], &ec[1], &ec[2])
	return &smtp.SMTPError{Code: code, EnhancedCode: ec, Message: msg}
}

// transactions is a copy of everything seen so far.
func (p *smtpPeer) transactions() []peerTx {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]peerTx, len(p.txs))
	for i, t := range p.txs {
		out[i] = *t
	}
	return out
}

// deliveries are the accepted messages for rcpt (any recipient if "").
func (p *smtpPeer) deliveries(rcpt string) []peerTx {
	var out []peerTx
	for _, t := range p.transactions() {
		if t.delivered() && (rcpt == "" || containsFold(t.Rcpts, rcpt)) {
			out = append(out, t)
		}
	}
	return out
}

// attemptsFor is how many times RCPT named rcpt.
func (p *smtpPeer) attemptsFor(rcpt string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.attempts[strings.ToLower(rcpt)]
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

type peerSession struct {
	p    *smtpPeer
	conn *smtp.Conn
	tx   *peerTx
}

func (s *peerSession) Reset()        { s.tx = nil }
func (s *peerSession) Logout() error { return nil }

func (s *peerSession) Mail(from string, opts *smtp.MailOptions) error {
	_, tls := s.conn.TLSConnectionState()
	t := &peerTx{Helo: s.conn.Hostname(), TLS: tls, From: from}
	if opts != nil {
		t.MailOpts = *opts
	}
	s.p.mu.Lock()
	s.p.txs = append(s.p.txs, t)
	s.p.mu.Unlock()
	s.tx = t
	return nil
}

func (s *peerSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	s.p.mu.Lock()
	key := strings.ToLower(to)
	s.p.attempts[key]++
	n := s.p.attempts[key]
	s.p.mu.Unlock()
	if err := s.p.script("rcpt", key, n); err != nil {
		return err
	}
	params := opts != nil && (len(opts.Notify) > 0 || opts.OriginalRecipient != "" || opts.DeliverBy != nil ||
		opts.MTPriority != nil || !opts.RequireRecipientValidSince.IsZero())
	s.p.mu.Lock()
	s.tx.Rcpts = append(s.tx.Rcpts, to)
	s.tx.RcptParams = append(s.tx.RcptParams, params)
	s.p.mu.Unlock()
	return nil
}

func (p *smtpPeer) script(stage, rcpt string, attempt int) *smtp.SMTPError {
	if p.reply == nil {
		return nil
	}
	return p.reply(stage, rcpt, attempt)
}

// dataReply is the reply to the message for the transaction's recipients: the first
// refusal any of them scripts.
func (s *peerSession) dataReply(rcpts []string) *smtp.SMTPError {
	for _, r := range rcpts {
		key := strings.ToLower(r)
		s.p.mu.Lock()
		n := s.p.attempts[key]
		s.p.mu.Unlock()
		if err := s.p.script("data", key, n); err != nil {
			return err
		}
	}
	return nil
}

func (s *peerSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.p.mu.Lock()
	rcpts := append([]string(nil), s.tx.Rcpts...)
	s.p.mu.Unlock()
	reply := s.dataReply(rcpts)
	s.p.mu.Lock()
	s.tx.Data, s.tx.DataErr = b, reply
	s.p.mu.Unlock()
	if reply != nil {
		return reply
	}
	return nil
}

// LMTPData answers per recipient.
func (s *peerSession) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.p.mu.Lock()
	rcpts := append([]string(nil), s.tx.Rcpts...)
	s.p.mu.Unlock()
	var first *smtp.SMTPError
	for _, rc := range rcpts {
		e := s.dataReply([]string{rc})
		if e != nil && first == nil {
			first = e
		}
		if e != nil {
			status.SetStatus(rc, e)
		} else {
			status.SetStatus(rc, nil) // not e: a nil *SMTPError is a non-nil error
		}
	}
	s.p.mu.Lock()
	s.tx.Data, s.tx.DataErr = b, first
	s.p.mu.Unlock()
	return nil
}

// selfSigned writes a certificate and key for name into dir, for STARTTLS.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	return certFile, keyFile
}

// dkimKey writes an Ed25519 DKIM key into dir and returns its path and the TXT record
// that publishes it.
func dkimKey(t *testing.T, dir string) (keyFile, txt string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(dir, "dkim.pem")
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	return keyFile, "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// distinctPorts finds n free loopback ports, all different (freePort alone may find the same
// one twice, since it closes each before looking for the next).
func distinctPorts(t *testing.T, n int) []int {
	seen := map[int]bool{}
	var out []int
	for len(out) < n {
		if p := freePort(t); !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// waitPort waits until something listens on port.
func waitPort(port int, d time.Duration) error {
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if c, err := dialTCP(port); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %d", port)
		}
	}
}

// until polls cond every 50 ms for up to 15 s; false if it never held.
func until(cond func() bool) bool {
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// header returns the first value of a header field in a raw message ("" if none).
func header(msg []byte, name string) string {
	head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	var val string
	found := false
	for _, line := range strings.Split(string(head), "\r\n") {
		if found && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) {
			val += " " + strings.TrimSpace(line)
			continue
		}
		if found {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			val, found = strings.TrimSpace(v), true
		}
	}
	return val
}

func contextTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}

// smtpDialog runs one SMTP conversation on port, command by command, and returns the
// server's reply to the greeting and to each command (code and text of the last line). A
// command that is a message (it contains CRLF) is sent as DATA text, dot-stuffed. It stops
// at the first reply that leaves the connection unusable.
func smtpDialog(port int, cmds ...string) ([]string, error) {
	c, err := textproto.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	read := func() (string, error) {
		code, msg, err := c.ReadResponse(0)
		if err != nil && code == 0 {
			return "", err
		}
		lines := strings.Split(msg, "\n")
		return fmt.Sprintf("%d %s", code, lines[len(lines)-1]), nil
	}
	var replies []string
	r, err := read()
	if err != nil {
		return nil, err
	}
	replies = append(replies, r)
	for _, cmd := range cmds {
		if strings.Contains(cmd, "\r\n") {
			w := c.DotWriter()
			if _, err := io.WriteString(w, cmd); err != nil {
				return replies, err
			}
			if err := w.Close(); err != nil {
				return replies, err
			}
		} else if err := c.PrintfLine("%s", cmd); err != nil {
			return replies, err
		}
		if r, err = read(); err != nil {
			return replies, err
		}
		replies = append(replies, r)
	}
	return replies, nil
}
