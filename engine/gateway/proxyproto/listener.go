package proxyproto

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Listener. The zero value waits DefaultTimeout for
// each header, reads up to DefaultMaxPending headers at once and reports
// nothing about the connections it drops.
type Options struct {
	// Timeout is how long a connection has to deliver its whole header
	// after it is accepted. Zero: DefaultTimeout.
	Timeout time.Duration
	// MaxPending bounds the connections whose header is being read; when
	// that many are pending, accepting waits. Zero: DefaultMaxPending.
	MaxPending int
	// OnDrop, if not nil, is told about each connection closed for a bad or
	// missing header, with the socket's remote address. It must not block.
	OnDrop func(remote net.Addr, err error)
	// OnPanic, if not nil, is told about a panic recovered in a header
	// reader; the connection is dropped and the listener keeps going.
	OnPanic func(v any)
}

const (
	DefaultTimeout    = 5 * time.Second
	DefaultMaxPending = 256
)

// Listener accepts connections that start with a PROXY header. Its Accept
// returns *Conn values. It is safe for concurrent use.
type Listener struct {
	inner   net.Listener
	opts    Options
	ready   chan net.Conn
	errs    chan error
	done    chan struct{}
	once    sync.Once
	pending chan struct{} // a slot per header being read
	wg      sync.WaitGroup
	dropped atomic.Int64
}

// NewListener starts accepting on inner; Close stops it and closes inner.
func NewListener(inner net.Listener, opts Options) *Listener {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	l := &Listener{
		inner:   inner,
		opts:    opts,
		ready:   make(chan net.Conn),
		errs:    make(chan error),
		done:    make(chan struct{}),
		pending: make(chan struct{}, opts.MaxPending),
	}
	l.wg.Add(1)
	go l.run()
	return l
}

// ErrClosed is what Accept returns once the listener is closed.
var ErrClosed = fmt.Errorf("proxyproto: listener closed: %w", net.ErrClosed)

// Accept returns the next connection whose header was good.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.done:
		return nil, ErrClosed
	}
}

// Close stops accepting, closes the inner listener and every connection
// whose header is still being read, and waits for the readers to end.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.inner.Close()
	})
	l.wg.Wait()
	return err
}

// Addr is the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Dropped is how many connections were closed for a bad or missing header.
func (l *Listener) Dropped() int64 { return l.dropped.Load() }

// run accepts connections and hands each to a header reader.
func (l *Listener) run() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		select {
		case l.pending <- struct{}{}:
		case <-l.done:
			return
		}
		c, err := l.inner.Accept()
		if err != nil {
			<-l.pending
			select {
			case <-l.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors and the like: back off as
				// net/http does rather than spin, and tell no one.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
				case <-l.done:
					return
				}
				continue
			}
			select {
			case l.errs <- err:
			case <-l.done:
			}
			return
		}
		delay = 0
		l.wg.Add(1)
		go l.handshake(c)
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// handshake reads c's header and passes c on, or drops it.
func (l *Listener) handshake(c net.Conn) {
	defer l.wg.Done()
	defer func() { <-l.pending }()
	delivered := false
	defer func() {
		if v := recover(); v != nil {
			if l.opts.OnPanic != nil {
				l.opts.OnPanic(v)
			}
		}
		if !delivered {
			c.Close()
		}
	}()
	// Close during the read must not wait out the timeout.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-l.done:
			c.SetReadDeadline(time.Unix(1, 0))
		case <-stop:
		}
	}()

	pc, err := l.readHeader(c)
	if err != nil {
		l.dropped.Add(1)
		if l.opts.OnDrop != nil {
			l.opts.OnDrop(c.RemoteAddr(), err)
		}
		return
	}
	select {
	case l.ready <- pc:
		delivered = true
	case <-l.done:
	}
}

func (l *Listener) readHeader(c net.Conn) (*Conn, error) {
	if err := c.SetReadDeadline(time.Now().Add(l.opts.Timeout)); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(c, 256)
	h, err := Read(br)
	if err != nil {
		return nil, err
	}
	select {
	case <-l.done:
		return nil, ErrClosed
	default:
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return &Conn{Conn: c, br: br, hdr: h}, nil
}

var (
	_ net.Listener = (*Listener)(nil)
	_ net.Conn     = (*Conn)(nil)
)

// Conn is a connection whose PROXY header has been read.
type Conn struct {
	net.Conn
	br  *bufio.Reader
	hdr *Header
}

// Header is the connection's PROXY header.
func (c *Conn) Header() *Header { return c.hdr }

// Read reads what followed the header.
func (c *Conn) Read(p []byte) (int, error) { return c.br.Read(p) }

// RemoteAddr is the client's address according to the header, or the
// socket's when the header gives none.
func (c *Conn) RemoteAddr() net.Addr {
	if c.hdr.HasAddresses() {
		return c.hdr.Source
	}
	return c.Conn.RemoteAddr()
}

// LocalAddr is the address the client connected to according to the
// header, or the socket's when the header gives none.
func (c *Conn) LocalAddr() net.Addr {
	if c.hdr.HasAddresses() {
		return c.hdr.Destination
	}
	return c.Conn.LocalAddr()
}

// NetConn is the socket under the header.
func (c *Conn) NetConn() net.Conn { return c.Conn }
