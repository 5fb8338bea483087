package inbound

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// listener admits connections within the connection limits and wraps each
// in a conn; implicit TLS goes on top. It is what go-smtp serves.
type listener struct {
	net.Listener
	srv *Server
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := clientIP(raw.RemoteAddr())
		if why := l.srv.admit(ip); why != "" {
			l.srv.reject(raw, why)
			continue
		}
		c := &conn{Conn: raw, srv: l.srv, ip: ip, id: randomID()}
		l.srv.track(c)
		if l.srv.cfg.ImplicitTLS {
			c.sniffDone = true // it will read ciphertext
			return tls.Server(c, l.srv.cfg.TLS), nil
		}
		return c, nil
	}
}

var (
	_ net.Listener = (*listener)(nil)
	_ net.Conn     = (*conn)(nil)
)

// clientIP is the key of the per-IP limit.
func clientIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap().String()
		}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return a.String()
	}
	return ap.Addr().Unmap().String()
}

// admit takes a connection slot for ip, or says why there is none.
func (s *Server) admit(ip string) string {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	switch {
	case s.cfg.MaxConns > 0 && s.total >= s.cfg.MaxConns:
		return "Too many connections, try again later"
	case s.cfg.MaxConnsPerIP > 0 && s.perIP[ip] >= s.cfg.MaxConnsPerIP:
		return "Too many connections from your address, try again later"
	}
	s.total++
	s.perIP[ip]++
	return ""
}

func (s *Server) release(ip string) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	s.total--
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// maxRejecting bounds the goroutines telling refused clients why; past it
// a refused connection is just closed.
const maxRejecting = 64

// reject tells a client over a limit to come back later (421 4.7.0) and
// closes its connection, without holding up Accept.
func (s *Server) reject(c net.Conn, why string) {
	s.log.Info("inbound: connection refused", "remote", c.RemoteAddr().String(), "why", why)
	select {
	case s.rejecting <- struct{}{}:
	default:
		c.Close()
		return
	}
	s.goSafe(func() {
		defer func() { <-s.rejecting }()
		defer c.Close()
		var w net.Conn = c
		if s.cfg.ImplicitTLS {
			w = tls.Server(c, s.cfg.TLS)
		}
		_ = w.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(w, "421 4.7.0 %s %s\r\n", s.cfg.Hostname, why); err != nil {
			return
		}
		// Let the reply reach the client before the close: unread input
		// would turn the close into a reset that can destroy it.
		if cw, ok := c.(interface{ CloseWrite() error }); ok && !s.cfg.ImplicitTLS {
			_ = cw.CloseWrite()
		}
		_ = w.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.Copy(io.Discard, io.LimitReader(w, 4096))
	})
}

// conn is one admitted client connection, under TLS if there is any. It
// owns the read deadlines: each read gets CommandTimeout while a
// transaction is open and IdleTimeout otherwise, so a slow but live client
// is never cut off in the middle of a message, and a silent one always is.
// It also gives back the connection slot on Close, and can end the
// connection after the reply being written (closeAfterReply).
type conn struct {
	net.Conn
	srv *Server
	ip  string
	id  string // for the log

	inTx    atomic.Bool
	closing atomic.Bool
	once    sync.Once
	// errors counts rejections towards MaxErrors, across the sessions of
	// the connection (STARTTLS starts a new one); txs numbers transactions.
	errors atomic.Int64
	txs    atomic.Int64

	// greeting is the verb of the first HELO or EHLO seen in plaintext:
	// go-smtp does not say which one a client used, and smtp_meta.esmtp
	// (the "with ESMTP" of a Received field) needs it. Only the reading
	// goroutine, which is also the one that calls newSession, touches
	// these.
	greeting  string
	sniffDone bool
	sniffHead []byte
	sniffN    int
}

// nextTxID names the connection's next transaction.
func (c *conn) nextTxID() string { return c.id + "." + strconv.FormatInt(c.txs.Add(1), 10) }

// maxSniffLines is how many lines are looked at for the greeting.
const maxSniffLines = 4

func (c *conn) sniff(data []byte) {
	for _, b := range data {
		if b == '\n' {
			c.sniffHead = c.sniffHead[:0]
			if c.sniffN++; c.sniffN >= maxSniffLines {
				c.sniffDone = true
				return
			}
			continue
		}
		if len(c.sniffHead) < 4 {
			c.sniffHead = append(c.sniffHead, b)
			if v := strings.ToUpper(string(c.sniffHead)); v == "HELO" || v == "EHLO" {
				c.greeting, c.sniffDone = v, true
				return
			}
		}
	}
}

// errShuttingDown ends an idle connection when the server shuts down; it
// is a timeout, so go-smtp says 421 and closes.
var errShuttingDown = &timeoutError{"inbound: the server is shutting down"}

type timeoutError struct{ s string }

func (e *timeoutError) Error() string   { return e.s }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

var _ net.Error = (*timeoutError)(nil)

func (c *conn) Read(p []byte) (int, error) {
	if c.closing.Load() {
		return 0, io.EOF
	}
	t := c.srv.cfg.IdleTimeout
	if c.inTx.Load() {
		t = c.srv.cfg.CommandTimeout
	}
	if err := c.Conn.SetReadDeadline(time.Now().Add(t)); err != nil {
		return 0, err
	}
	// After the deadline is set: Shutdown sets draining, then moves the
	// deadline of idle connections to now, so one of the two stops us.
	if c.srv.draining.Load() && !c.inTx.Load() {
		return 0, errShuttingDown
	}
	n, err := c.Conn.Read(p)
	if !c.sniffDone {
		c.sniff(p[:n])
	}
	return n, err
}

// SetReadDeadline is ignored: Read sets the deadline for every read.
func (c *conn) SetReadDeadline(time.Time) error { return nil }

// SetDeadline sets only the write deadline, for the same reason.
func (c *conn) SetDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(t) }

func (c *conn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		err = c.Conn.Close()
		c.srv.untrack(c)
		c.srv.release(c.ip)
	})
	return err
}

// closeAfterReply makes the next read see the end of the stream: go-smtp
// writes the reply in hand, reads, and closes. Commands it already
// buffered are still answered, and the session refuses them.
func (c *conn) closeAfterReply() { c.closing.Store(true) }

// interruptIfIdle ends a blocked read of a connection with no transaction
// open (Shutdown).
func (c *conn) interruptIfIdle() {
	if !c.inTx.Load() {
		_ = c.Conn.SetReadDeadline(time.Now())
	}
}

// ourConn finds the conn under go-smtp's connection (a *tls.Conn after
// STARTTLS or with implicit TLS).
func ourConn(nc net.Conn) (*conn, error) {
	for {
		switch c := nc.(type) {
		case *conn:
			return c, nil
		case *tls.Conn:
			nc = c.NetConn()
		default:
			return nil, errors.New("inbound: a connection that did not come from our listener")
		}
	}
}
