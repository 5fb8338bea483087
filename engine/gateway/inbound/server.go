package inbound

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"github.com/koukan/koukan/engine/metrics"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emersion/go-smtp"

	"github.com/koukan/koukan/engine/gateway/proxyproto"
	"github.com/koukan/koukan/engine/rest"
)

// Server is one SMTP service. It is safe for concurrent use; Serve may be
// called on several listeners.
type Server struct {
	cfg    *config
	client *rest.Client
	smtp   *smtp.Server
	log    *slog.Logger

	connMu sync.Mutex
	total  int
	perIP  map[string]int
	conns  map[*conn]struct{}

	rejecting chan struct{}
	draining  atomic.Bool
	// stopping is closed by Shutdown and Close: waits that hold a reply end.
	stopping chan struct{}
	stopOnce sync.Once
	throttle *authThrottle // nil without a limit
	// bg tracks the goroutines that outlive a command: upstream cancels,
	// refusals.
	bg     sync.WaitGroup
	panics atomic.Int64
}

// New checks o, reads the auth secrets and builds the REST client; it does
// not listen.
func New(o Options) (*Server, error) {
	cfg, err := newConfig(o)
	if err != nil {
		return nil, err
	}
	client := cfg.Client
	if client == nil {
		client, err = rest.NewClient(rest.Options{ChunkSize: cfg.ChunkSize, CAFile: cfg.CAFile, InsecureSkipVerify: cfg.InsecureSkipVerify})
		if err != nil {
			return nil, fmt.Errorf("inbound: %w", err)
		}
	}
	s := &Server{
		cfg:       cfg,
		client:    client,
		log:       cfg.Log,
		perIP:     map[string]int{},
		conns:     map[*conn]struct{}{},
		rejecting: make(chan struct{}, maxRejecting),
		stopping:  make(chan struct{}),
		throttle:  newAuthThrottle(cfg.MaxAuthFailures, cfg.AuthFailureWindow, cfg.AuthFailureDelay),
	}
	ss := smtp.NewServer(smtp.BackendFunc(s.newSession))
	ss.Domain = cfg.Hostname
	ss.MaxMessageBytes = cfg.MaxMessageBytes
	ss.MaxRecipients = cfg.MaxRecipients
	ss.MaxLineLength = cfg.MaxLineLength
	ss.AllowInsecureAuth = cfg.AllowInsecureAuth
	ss.TLSConfig = cfg.TLS
	// Read deadlines are conn's (per read, idle vs in a transaction);
	// go-smtp's are per command line, which would cut off a long DATA.
	ss.ReadTimeout = 0
	ss.WriteTimeout = cfg.CommandTimeout
	ss.EnableSMTPUTF8 = true
	ss.EnableDSN = true
	// Advertised on TLS connections only, by go-smtp; Mail refuses it on
	// others.
	ss.EnableREQUIRETLS = cfg.TLS != nil
	ss.ErrorLog = logAdapter{s.log}
	s.smtp = ss
	return s, nil
}

// Serve accepts SMTP connections on ln until Shutdown or Close, which
// close ln; it then returns nil. With ProxyProtocolTimeout, ln's
// connections must start with a PROXY header.
func (s *Server) Serve(ln net.Listener) error {
	if s.cfg.ProxyProtocolTimeout > 0 {
		ln = proxyproto.NewListener(ln, proxyproto.Options{
			Timeout: s.cfg.ProxyProtocolTimeout,
			OnDrop: func(remote net.Addr, err error) {
				s.log.Info("inbound: no good PROXY header; connection dropped", "remote", remote.String(), "err", err)
			},
			OnPanic: func(v any) { s.panicked(v) },
		})
	}
	return s.smtp.Serve(&listener{Listener: ln, srv: s})
}

// ListenAndServe listens on Addr and serves.
func (s *Server) ListenAndServe() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("inbound: %w", err)
	}
	return s.Serve(ln)
}

// Shutdown stops accepting, ends the connections that have no transaction
// open at once (go-smtp's "421 4.4.2 Idle timeout") and the others when
// their transaction ends, and waits
// for them and for the cancels sent upstream. When ctx ends first it
// closes every connection (their transactions are cancelled upstream) and
// returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.stopOnce.Do(func() { close(s.stopping) })
	s.connMu.Lock()
	for c := range s.conns {
		c.interruptIfIdle()
	}
	s.connMu.Unlock()
	err := s.smtp.Shutdown(ctx)
	if errors.Is(err, smtp.ErrServerClosed) {
		err = nil
	}
	if ctx.Err() != nil {
		s.closeConns()
	}
	done := make(chan struct{})
	go func() { s.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return err
}

// Close closes the listeners and every connection at once; transactions in
// progress are cancelled upstream in the background.
func (s *Server) Close() error {
	s.draining.Store(true)
	s.stopOnce.Do(func() { close(s.stopping) })
	err := s.smtp.Close()
	if errors.Is(err, smtp.ErrServerClosed) {
		err = nil
	}
	s.closeConns()
	return err
}

// closeConns closes every connection's socket; go-smtp's handlers then see
// their reads fail and end the sessions. (go-smtp's own Close does nothing
// after its Shutdown.)
func (s *Server) closeConns() {
	s.connMu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.connMu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// Panics is how many panics were recovered in goroutines the server
// started (go-smtp recovers those in command handlers itself).
func (s *Server) Panics() int64 { return s.panics.Load() }

func (s *Server) track(c *conn) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	s.conns[c] = struct{}{}
	metrics.SMTPSessions.WithLabelValues(s.cfg.Sender + "/" + s.cfg.Tag).Inc()
}

func (s *Server) untrack(c *conn) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	delete(s.conns, c)
	metrics.SMTPSessions.WithLabelValues(s.cfg.Sender + "/" + s.cfg.Tag).Dec()
}

// goSafe runs f on a goroutine that Shutdown waits for, recovering a panic.
func (s *Server) goSafe(f func()) {
	s.bg.Go(func() {
		defer func() {
			if v := recover(); v != nil {
				s.panicked(v)
			}
		}()
		f()
	})
}

func (s *Server) panicked(v any) {
	s.panics.Add(1)
	s.log.Error("inbound: panic", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
}

// logAdapter gives go-smtp's internal errors to the log.
type logAdapter struct{ l *slog.Logger }

func (a logAdapter) Printf(format string, v ...any) {
	a.l.Warn("inbound: smtp server", "msg", strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (a logAdapter) Println(v ...any) {
	a.l.Warn("inbound: smtp server", "msg", strings.TrimSpace(fmt.Sprintln(v...)))
}

var idEncoding = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// randomID is a short random identifier for logs and replies.
func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}
