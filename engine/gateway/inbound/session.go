package inbound

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/koukan/koukan/engine/rest"
	"github.com/koukan/koukan/engine/tx"
)

// session is one SMTP session as go-smtp sees it: from a greeting to the
// end of the connection or a STARTTLS, which starts a new one. go-smtp
// calls its command methods on the connection's goroutine, except Data for
// BDAT, which runs on a goroutine of its own while RSET, a new greeting or
// a close may come in on the first; hence the locks.
type session struct {
	srv   *Server
	c     *smtp.Conn
	nc    *conn
	log   *slog.Logger
	esmtp bool

	mu   sync.Mutex
	cur  *upstream // the transaction in progress, nil between transactions
	user string    // the authenticated user, "" before AUTH
	// For the session's summary line: when it began, messages accepted, replies >= 400.
	started           time.Time
	accepted, refused atomic.Int64
	// bdatRunning: Data is running for BDAT, on go-smtp's goroutine.
	bdatRunning atomic.Bool
}

// upstream is one SMTP transaction and the router transaction it became.
type upstream struct {
	id   string // ours, for logs and replies: <connection id>.<n>
	utf8 bool   // MAIL had SMTPUTF8
	// ctx ends when the transaction is abandoned, which stops whatever
	// REST call is in flight for it.
	ctx    context.Context
	cancel context.CancelFunc
	// done: the router answered it completely (MAIL failed, or DATA got
	// an answer), so there is nothing to cancel.
	done atomic.Bool

	// mu is held by whoever uses rtx: a rest.Tx is one goroutine's at a
	// time.
	mu        sync.Mutex
	rtx       *rest.Tx // nil until created
	rcpts     int      // recipients sent upstream: the next one's index
	broken    error    // an upstream failure that ended it; later commands are refused
	cancelled bool     // POST .../cancel was sent
}

var (
	_ smtp.Session     = (*session)(nil)
	_ smtp.AuthSession = (*session)(nil)
)

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	nc, err := ourConn(c.Conn())
	if err != nil {
		s.log.Error("inbound: session", "err", err)
		return nil, &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Internal error"}
	}
	_, isTLS := c.TLSConnectionState()
	sess := &session{
		srv: s,
		c:   c,
		nc:  nc,
		log: s.log.With("conn", nc.id, "remote", c.Conn().RemoteAddr().String()),
		// Only a plaintext greeting can be seen (conn.greeting); a client
		// that speaks TLS, and all the more one that sent STARTTLS, an
		// extension, is taken to speak ESMTP.
		esmtp:   isTLS || nc.greeting != "HELO",
		started: time.Now(),
	}
	if s.draining.Load() {
		return nil, sess.answer(phaseGreeting, "", shuttingDown())
	}
	return sess, nil
}

func shuttingDown() *reply {
	return newReply(421, smtp.EnhancedCode{4, 3, 2}, "Service shutting down, try again later", nil)
}

// refuse is the reply to a command once the connection is closing, and to
// one that would start something new (MAIL, AUTH) once the server is
// shutting down; a transaction in progress may finish.
func (s *session) refuse(starts bool) error {
	switch {
	case s.nc.closing.Load():
		return newReply(421, smtp.EnhancedCode{4, 7, 0}, "Closing the connection", nil)
	case starts && s.srv.draining.Load():
		return shuttingDown()
	}
	return nil
}

// Mail starts a transaction: it is created on the router with the
// envelope sender and the connection's facts, and the router's answer to
// MAIL is awaited.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	id := s.nc.nextTxID()
	return s.answer(phaseMail, id, s.mail(id, from, opts))
}

func (s *session) mail(id, from string, opts *smtp.MailOptions) error {
	if err := s.refuse(true); err != nil {
		return err
	}
	if s.current() != nil {
		// go-smtp lets a second MAIL through but keeps the first one's
		// recipients; RFC 5321 §4.1.4 wants RSET first anyway.
		return newReply(503, smtp.EnhancedCode{5, 5, 1}, "Nested MAIL command, send RSET first", nil)
	}
	addr, err := envelopeAddress(from, opts.UTF8, phaseMail)
	if err != nil {
		return err
	}
	tlsState, isTLS := s.c.TLSConnectionState()
	if opts.RequireTLS && !isTLS {
		return newReply(530, smtp.EnhancedCode{5, 7, 10}, "REQUIRETLS needs a TLS connection", nil)
	}
	t := &tx.Tx{
		RemoteHost: hostPort(s.c.Conn().RemoteAddr()),
		LocalHost:  hostPort(s.c.Conn().LocalAddr()),
		MailFrom:   &tx.Mailbox{Address: addr, Esmtp: mailParams(opts)},
		SMTPMeta:   s.meta(tlsState, isTLS),
	}
	if cfg := s.srv.cfg; cfg.Sender != "" || cfg.Tag != "" {
		t.Sender = &tx.Sender{Name: cfg.Sender, Tag: cfg.Tag}
	}

	u := s.begin(id, opts.UTF8)
	u.mu.Lock()
	defer u.mu.Unlock()
	ctx, cancel := context.WithTimeout(u.ctx, s.srv.cfg.MailTimeout)
	defer cancel()

	rctx, rcancel := s.srv.requestCtx(ctx)
	rtx, err := s.srv.client.Create(rctx, s.srv.cfg.endpoint, t)
	rcancel()
	if err != nil {
		s.fail(u, err)
		s.detach(u)
		return err
	}
	u.rtx = rtx
	s.log.Info("inbound: transaction created", "tx", id, "upstream", rtx.Location(), "from", addr)

	st, err := rtx.Wait(ctx, func(st *tx.Tx) bool { return st.MailResponse != nil || ended(st) })
	if err == nil && st.MailResponse == nil {
		err = errors.New("the router ended the transaction without answering MAIL")
	}
	var r *reply
	if err == nil {
		r, err = upstreamReply(*st.MailResponse, phaseMail)
	}
	if err != nil {
		s.fail(u, err)
		s.detach(u)
		return err
	}
	if r.code >= 400 {
		u.done.Store(true) // a failed MAIL ends the transaction upstream
		s.detach(u)
		return r
	}
	return nil
}

// Rcpt adds a recipient to the router's transaction and awaits the answer
// to it.
func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	u := s.current()
	id := ""
	if u != nil {
		id = u.id
	}
	return s.answer(phaseRcpt, id, s.rcpt(u, to, opts))
}

// maxConflicts is how many times a PATCH is tried again after a 412: the
// router moves the version on by itself (responses, heartbeats), so one
// is normal; a row of them is not.
const maxConflicts = 3

func (s *session) rcpt(u *upstream, to string, opts *smtp.RcptOptions) error {
	if err := s.refuse(false); err != nil {
		return err
	}
	if u == nil {
		return newReply(503, smtp.EnhancedCode{5, 5, 1}, "Need MAIL first", nil)
	}
	addr, err := envelopeAddress(to, u.utf8, phaseRcpt)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.usable(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(u.ctx, s.srv.cfg.RcptTimeout)
	defer cancel()

	n := u.rcpts
	delta := &tx.Tx{RcptTo: []tx.Mailbox{{Address: addr, Esmtp: rcptParams(opts)}}, RcptToOffset: n}
	for attempt := 1; ; attempt++ {
		rctx, rcancel := s.srv.requestCtx(ctx)
		err = u.rtx.Update(rctx, delta)
		rcancel()
		if re, ok := errors.AsType[*rest.Error](err); ok && re.Kind == rest.KindConflict && attempt < maxConflicts {
			continue // Update has read the transaction again
		}
		break
	}
	if err != nil {
		s.fail(u, err)
		return err
	}
	u.rcpts++

	st, err := u.rtx.Wait(ctx, func(st *tx.Tx) bool { return len(st.RcptResponse) > n || ended(st) })
	if err == nil && len(st.RcptResponse) <= n {
		err = errors.New("the router ended the transaction without answering RCPT")
	}
	var r *reply
	if err == nil {
		r, err = upstreamReply(st.RcptResponse[n], phaseRcpt)
	}
	if err != nil {
		// The router may still take the recipient after we told the
		// client it failed; carrying on could deliver to it once now and
		// again when the client retries. The transaction is given up.
		s.fail(u, err)
		return err
	}
	if r.code >= 400 {
		return r
	}
	return nil
}

// Data streams the message to the router as it arrives, in PUTs of
// ChunkSize bytes, and awaits the router's answer to it, which is the
// reply, success included (go-smtp sends what Data returns).
//
// A BDAT transfer that ends without the router's answer (RSET or a new
// greeting in the middle, a chunk over SIZE, an upstream failure) also
// ends the connection. go-smtp (v0.25.1) runs Data for BDAT on a goroutine
// that, after Data returns, sends the result through a field of its
// connection which the next BDAT replaces, without synchronization: a new
// BDAT transfer after an aborted one could be answered with the old one's
// result. Refusing every later command of the connection keeps go-smtp
// from starting one.
func (s *session) Data(r io.Reader) error {
	u := s.current()
	id := ""
	if u != nil {
		id = u.id
	}
	_, bdat := r.(*io.PipeReader)
	if bdat {
		s.bdatRunning.Store(true)
		defer s.bdatRunning.Store(false)
	}
	answered, err := s.data(u, r)
	if bdat && !answered {
		s.nc.closeAfterReply()
	}
	return s.answer(phaseData, id, err)
}

// errPutStalled is a body upload that waited PutTimeout on the router.
var errPutStalled = fmt.Errorf("inbound: a body upload made no progress: %w", context.DeadlineExceeded)

// data sends the message; answered reports that err (a reply) is the
// router's answer to it.
func (s *session) data(u *upstream, r io.Reader) (answered bool, err error) {
	if err := s.refuse(false); err != nil {
		return false, err
	}
	if u == nil {
		return false, newReply(503, smtp.EnhancedCode{5, 5, 1}, "Need MAIL and RCPT first", nil)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.usable(); err != nil {
		return false, err
	}
	cfg := s.srv.cfg
	uploadCtx, stopUpload := context.WithCancelCause(u.ctx)
	defer stopUpload(nil)
	wd := newWatchdog(cfg.PutTimeout, func() { stopUpload(errPutStalled) })
	body := &bodyReader{r: r, wd: wd}
	err = u.rtx.PutBlob(uploadCtx, bodyURI(u.rtx), body, -1)
	wd.stop()
	size, eofAt, clientErr := body.result()
	if clientErr != nil {
		s.fail(u, clientErr)
		return false, clientFailure(clientErr, cfg.MaxMessageBytes)
	}
	if err != nil {
		if errors.Is(context.Cause(uploadCtx), errPutStalled) {
			err = errors.Join(errPutStalled, err)
		}
		s.fail(u, err)
		return false, err
	}

	ctx, cancel := context.WithDeadline(u.ctx, eofAt.Add(cfg.DataTimeout))
	defer cancel()
	st, err := u.rtx.Wait(ctx, func(st *tx.Tx) bool { return st.DataResponse != nil || ended(st) })
	switch {
	case err == nil && st.DataResponse == nil:
		err = errors.New("the router ended the transaction without answering DATA")
	case err == nil:
		// Answered, even if not with a reply we can pass on: there is
		// nothing left to cancel.
		u.done.Store(true)
	}
	var rep *reply
	if err == nil {
		rep, err = upstreamReply(*st.DataResponse, phaseData)
	}
	if err != nil {
		s.fail(u, err)
		return false, err
	}
	s.log.Info("inbound: message", "tx", u.id, "upstream", u.rtx.Location(), "bytes", size, "rcpts", u.rcpts, "reply", rep.code)
	if rep.code < 400 {
		s.accepted.Add(1)
	}
	return true, rep
}

// clientFailure is the reply when reading the message from the client
// failed; the transaction is abandoned upstream either way.
func clientFailure(err error, maxSize int64) *reply {
	switch err {
	case smtp.ErrDataTooLarge:
		return newReply(552, smtp.EnhancedCode{5, 3, 4}, "Message exceeds the size limit of "+strconv.FormatInt(maxSize, 10)+" bytes", nil)
	case smtp.ErrTooLongLine:
		return newReply(500, smtp.EnhancedCode{5, 5, 2}, "Line too long", nil)
	}
	// The client went away (or RSET a BDAT transfer): nobody reads this.
	return newReply(451, smtp.EnhancedCode{4, 3, 0}, "Message transfer aborted", err)
}

// Reset ends the transaction in progress (RSET, a new greeting, the end of
// a message); an unfinished one is cancelled upstream.
func (s *session) Reset() { s.endTx("reset") }

// Logout is the end of the session (the connection closed, or STARTTLS).
func (s *session) Logout() error {
	s.endTx("the session ended")
	_, isTLS := s.c.TLSConnectionState()
	s.mu.Lock()
	user := s.user
	s.mu.Unlock()
	s.log.Info("inbound: session", "seconds", time.Since(s.started).Round(time.Millisecond).Seconds(),
		"tls", isTLS, "user", user, "accepted", s.accepted.Load(), "refused", s.refused.Load())
	return nil
}

// AuthMechanisms offers PLAIN and LOGIN when there are secrets to check;
// go-smtp offers them only on TLS connections unless AllowInsecureAuth.
func (s *session) AuthMechanisms() []string {
	if s.srv.cfg.secrets.users == nil {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	switch {
	case s.srv.cfg.secrets.users == nil:
		return nil, s.answer(phaseAuth, "", newReply(502, smtp.EnhancedCode{5, 5, 1}, "AUTH is not available", nil))
	case s.srv.throttle.blocked(s.nc.ip):
		return nil, s.tooManyFailures()
	case strings.EqualFold(mech, sasl.Plain):
		return &plainServer{auth: s.authenticate}, nil
	case strings.EqualFold(mech, sasl.Login):
		return &loginServer{auth: s.authenticate}, nil
	}
	return nil, s.answer(phaseAuth, "", newReply(504, smtp.EnhancedCode{5, 5, 4}, "Unsupported authentication mechanism", nil))
}

// authenticate checks credentials a SASL mechanism collected.
func (s *session) authenticate(identity, user, password string) error {
	if err := s.refuse(true); err != nil {
		return s.answer(phaseAuth, "", err)
	}
	if identity != "" && identity != user {
		return s.answer(phaseAuth, "", newReply(535, smtp.EnhancedCode{5, 7, 8}, "Authentication failed",
			fmt.Errorf("user %q asked to act as %q", user, identity)))
	}
	if s.srv.throttle.blocked(s.nc.ip) {
		return s.tooManyFailures()
	}
	if !s.srv.cfg.secrets.check(user, password) {
		s.holdFailure()
		return s.answer(phaseAuth, "", newReply(535, smtp.EnhancedCode{5, 7, 8}, "Authentication failed",
			fmt.Errorf("wrong secret or unknown user %q", user)))
	}
	s.mu.Lock()
	s.user = user
	s.mu.Unlock()
	s.log.Info("inbound: authenticated", "user", user)
	return nil
}

// holdFailure counts a failed AUTH against the client's address and waits before the
// reply, longer with each failure, so that guessing is slow; the failure that uses up the
// address's attempts is logged.
func (s *session) holdFailure() {
	n, wait := s.srv.throttle.failed(s.nc.ip)
	if n >= s.srv.cfg.MaxAuthFailures && n > 0 {
		s.log.Warn("inbound: too many failed AUTH attempts; AUTH refused from this address for a while",
			"ip", s.nc.ip, "failures", n, "window", s.srv.cfg.AuthFailureWindow)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.srv.stopping:
	}
}

// tooManyFailures refuses AUTH from an address that failed too often, and ends the
// connection.
func (s *session) tooManyFailures() error {
	s.nc.closeAfterReply()
	return s.answer(phaseAuth, "", newReply(454, smtp.EnhancedCode{4, 7, 0}, "Too many failed authentication attempts, try again later",
		fmt.Errorf("AUTH throttled for %s", s.nc.ip)))
}

// begin makes u the transaction in progress.
func (s *session) begin(id string, utf8 bool) *upstream {
	ctx, cancel := context.WithCancel(context.Background())
	u := &upstream{id: id, utf8: utf8, ctx: ctx, cancel: cancel}
	s.mu.Lock()
	s.cur = u
	s.mu.Unlock()
	s.nc.inTx.Store(true)
	return u
}

func (s *session) current() *upstream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// detach ends u as the transaction in progress, if it is.
func (s *session) detach(u *upstream) {
	s.mu.Lock()
	if s.cur == u {
		s.cur = nil
		s.nc.inTx.Store(false)
	}
	s.mu.Unlock()
}

// endTx abandons the transaction in progress, if any. Abandoning one in
// the middle of a BDAT transfer ends the connection (see Data).
func (s *session) endTx(why string) {
	if s.bdatRunning.Load() {
		s.nc.closeAfterReply()
	}
	s.mu.Lock()
	u := s.cur
	s.cur = nil
	s.mu.Unlock()
	s.nc.inTx.Store(false)
	if u != nil {
		s.abandon(u, why)
	}
}

// fail records an upstream failure that ends u, under u.mu, and abandons
// it; later commands of the transaction are refused.
func (s *session) fail(u *upstream, err error) {
	if u.broken == nil {
		u.broken = err
	}
	s.abandon(u, "an upstream or client failure")
}

// abandon stops u's REST call in flight and, unless the router has
// answered it completely, cancels it upstream, on a goroutine: the cancel
// must wait for u.mu, which the call in flight holds, and the client need
// not wait for it. A cancel the router could not take (its database away,
// the connection refused) is tried again for a while: otherwise the
// router would keep the transaction until its downstream timeout.
func (s *session) abandon(u *upstream, why string) {
	u.cancel()
	if u.done.Load() {
		return
	}
	s.srv.goSafe(func() {
		u.mu.Lock()
		if u.rtx == nil || u.cancelled || u.done.Load() {
			u.mu.Unlock()
			return
		}
		u.cancelled = true // this goroutine sees the cancel through
		u.mu.Unlock()
		start := time.Now()
		for wait := cancelRetryFirst; ; wait = min(2*wait, cancelRetryMax) {
			err := s.cancelUpstream(u)
			if err == nil {
				s.log.Info("inbound: cancelled upstream", "tx", u.id, "upstream", u.rtx.Location(), "why", why)
				return
			}
			if !worthRetrying(err) || time.Since(start)+wait > cancelRetryFor {
				s.log.Warn("inbound: cancelling upstream failed", "tx", u.id, "upstream", u.rtx.Location(), "why", why, "err", err)
				return
			}
			s.log.Info("inbound: cancelling upstream failed; trying again", "tx", u.id, "upstream", u.rtx.Location(), "err", err, "retry_in", wait)
			select {
			case <-time.After(wait):
			case <-s.srv.stopping:
				s.log.Warn("inbound: cancelling upstream failed", "tx", u.id, "upstream", u.rtx.Location(), "why", why, "err", err)
				return
			}
		}
	})
}

// cancelUpstream sends the cancel once, under u.mu, unless the router has
// answered everything meanwhile.
func (s *session) cancelUpstream(u *upstream) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), cancelTimeout)
	defer cancel()
	return u.rtx.Cancel(ctx)
}

// worthRetrying tells a failed request that may work later: no answer, or
// the router's own trouble (5xx, 429), not a refusal of the request.
func worthRetrying(err error) bool {
	re, ok := errors.AsType[*rest.Error](err)
	if !ok {
		return false
	}
	switch re.Kind {
	case rest.KindTransport, rest.KindTimeout:
		return true
	case rest.KindStatus:
		return re.Status >= 500 || re.Status == http.StatusTooManyRequests
	}
	return false
}

// usable refuses a command of a transaction that an upstream failure
// ended, or that was abandoned meanwhile; under u.mu.
func (u *upstream) usable() error {
	switch {
	case u.broken != nil:
		return newReply(451, smtp.EnhancedCode{4, 3, 0}, "An upstream failure ended this transaction, transaction "+u.id, nil)
	case u.rtx == nil || u.ctx.Err() != nil:
		return newReply(503, smtp.EnhancedCode{5, 5, 1}, "No transaction in progress", nil)
	}
	return nil
}

// ended reports a router transaction that will get no more responses.
func ended(st *tx.Tx) bool { return st.Cancelled || st.FinalAttemptReason != "" }

// requestCtx bounds one create or update request.
func (s *Server) requestCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.cfg.RequestTimeout > 0 {
		return context.WithTimeout(ctx, s.cfg.RequestTimeout)
	}
	return context.WithCancel(ctx)
}

// bodyURI is where the message goes: the body's blob URI in the router's
// read form (it names one even before there is a body), else the
// transaction's /body.
func bodyURI(t *rest.Tx) string {
	switch b := t.State().Body.(type) {
	case *tx.Blob:
		if b.URI != "" {
			return b.URI
		}
	case *tx.MessageBuilder:
		if b.Raw != nil && b.Raw.URI != "" {
			return b.Raw.URI
		}
	}
	return strings.TrimSuffix(t.Location(), "/") + "/body"
}

// meta is the transaction's smtp_meta: what the router's policies know of
// the SMTP session.
func (s *session) meta(st tls.ConnectionState, isTLS bool) map[string]json.RawMessage {
	s.mu.Lock()
	auth := s.user != ""
	s.mu.Unlock()
	m := map[string]any{
		"ehlo_host": metaText(s.c.Hostname()),
		"esmtp":     s.esmtp,
		"tls":       isTLS,
		"auth":      auth,
	}
	if isTLS {
		m["tls_version"] = strings.ReplaceAll(tls.VersionName(st.Version), " ", "")
		m["tls_cipher"] = tls.CipherSuiteName(st.CipherSuite)
	}
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		b, _ := json.Marshal(v) // strings and bools
		out[k] = b
	}
	return out
}

// metaText is text from the client made fit for smtp_meta, whose values
// end up in header fields: valid UTF-8 without control characters, not
// too long.
func metaText(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if len(s) > 255 {
		s = strings.ToValidUTF8(s[:255], "")
	}
	return s
}

// hostPort is a socket address as the transaction carries it.
func hostPort(a net.Addr) *tx.HostPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return &tx.HostPort{Host: ap.Addr().Unmap().String(), Port: int(ap.Port())}
	}
	return nil
}

// bodyReader is the message as PutBlob reads it. It tells the watchdog
// when we wait for the client, which is not the router's fault, and keeps
// the client's failure apart from the upload's.
type bodyReader struct {
	r  io.Reader
	wd *watchdog

	mu    sync.Mutex // PutBlob may read on a transport goroutine
	n     int64
	eofAt time.Time
	err   error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	b.wd.pause()
	defer b.wd.resume()
	n, err := b.r.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += int64(n)
	switch {
	case err == io.EOF:
		b.eofAt = time.Now()
	case err != nil:
		if b.err == nil {
			b.err = err
		}
		// Not the reader's own error: the rest package takes
		// io.ErrUnexpectedEOF (which go-smtp returns for a client gone
		// mid-DATA) for the end of the blob, and would finalize a
		// truncated message.
		return n, &clientReadError{err}
	}
	return n, err
}

// clientReadError is a failure to read the message from the client.
type clientReadError struct{ err error }

func (e *clientReadError) Error() string {
	return "reading the message from the client: " + e.err.Error()
}
func (e *clientReadError) Unwrap() error { return e.err }

// result is the bytes read, when the message ended, and the client-side
// failure, if any.
func (b *bodyReader) result() (int64, time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	eof := b.eofAt
	if eof.IsZero() {
		eof = time.Now()
	}
	return b.n, eof, b.err
}

// watchdog calls fire when it has been running for d: it runs while a
// body upload waits for the router and is paused while it waits for the
// client.
type watchdog struct {
	mu      sync.Mutex
	d       time.Duration
	t       *time.Timer
	stopped bool
}

func newWatchdog(d time.Duration, fire func()) *watchdog {
	return &watchdog{d: d, t: time.AfterFunc(d, fire)}
}

func (w *watchdog) pause() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Stop()
}

func (w *watchdog) resume() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Reset(w.d)
	}
}

func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.t.Stop()
}
