package outbound

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/koukan/koukan/engine/tx"
	"github.com/koukan/koukan/engine/txlog"
)

var (
	cancelled    = tx.Response{Code: 451, Message: "4.3.0 transaction cancelled"}
	noValidRcpts = tx.Response{Code: 554, Message: "5.5.1 no valid recipients"}
	lmtpOneRcpt  = tx.Response{Code: 452, Message: "4.5.3 one recipient per LMTP transaction; send this one in another"}
)

// worker drives one transaction's SMTP session, from MAIL to the reply to the message. It is
// the only goroutine that uses the session, except while a PUT holds the data sink it
// granted (and then the worker waits for the PUT to hand it back).
type worker struct {
	s    *Server
	t    *txn
	h    Host
	addr string

	sess   *session
	unkill func() bool // stops closing sess when the server closes

	mail     mailPlan
	sent     int // recipients answered, in order
	accepted int // recipients the peer accepted
}

// work runs t's worker; whatever happens in it, a panic included, t ends with a response for
// every request.
func (s *Server) work(t *txn) {
	defer s.wg.Done()
	w := &worker{s: s, t: t, h: t.host}
	var end tx.Response
	defer func() {
		if p := recover(); p != nil {
			s.recovered(p)
			s.log.Error("transaction worker panicked", "tx", t.id, "panic", p)
			if w.sess != nil {
				w.drop()
			}
			// Counted here, not made up front: every transaction would count it.
			end = outcome("", 0, nil, errInternal, t.id)
		}
		t.finish(end)
		// What was left unanswered has end as its reply now, so the deciding reply tells.
		st, _ := t.snapshot()
		s.log.Info("transaction ended", "tx", t.id, "tag", t.tag, "peer", w.addr, "rcpt_domains", txlog.Domains(st.RcptTo),
			"reply", txlog.Reply(st))
	}()
	end = w.run()
}

func (w *worker) run() tx.Response {
	st, ok := w.waitMail()
	if !ok {
		return w.stopped()
	}
	addr, resp := destination(st.RemoteHost, w.h.LMTP)
	if resp != nil {
		w.t.setMail(*resp)
		return *resp
	}
	w.addr = addr
	r := w.sendMail(*st.MailFrom)
	w.t.setMail(r)
	if !r.Ok() {
		return r
	}
	return w.envelope()
}

// waitMail waits until the transaction has a sender; false: it was cancelled, or the server
// closed, first.
func (w *worker) waitMail() (*tx.Tx, bool) {
	for {
		st, changed := w.t.snapshot()
		switch {
		case st.Cancelled:
			return nil, false
		case st.MailFrom != nil:
			return st, true
		}
		select {
		case <-changed:
		case <-w.s.ctx.Done():
			return nil, false
		}
	}
}

// stopped is the end of a transaction cancelled by its client or by the server closing.
func (w *worker) stopped() tx.Response {
	if w.sess != nil {
		if w.s.ctx.Err() != nil {
			w.drop()
		} else {
			w.release()
		}
	}
	if w.s.ctx.Err() != nil {
		return w.outcome("", 0, nil, errShutdown)
	}
	return cancelled
}

// outcome is the package's outcome, with the transaction's id, after the server closing is
// told apart from a peer failing; the cause goes to the log.
func (w *worker) outcome(op string, want int, r *reply, err error) tx.Response {
	if err != nil && w.s.ctx.Err() != nil {
		err = errShutdown
	}
	resp := outcome(op, want, r, err, w.t.id)
	if err != nil {
		w.s.log.Info("smtp failure", "tx", w.t.id, "peer", w.addr, "op", op, "err", err, "response", resp.String())
	}
	return resp
}

// destination checks remote_host: the router resolved it (dns_resolution), so it must be an
// IP address; port 0 means the protocol's port.
func destination(h *tx.HostPort, lmtp bool) (string, *tx.Response) {
	if h == nil {
		return "", reject(451, "4.3.5 the transaction has no remote_host: the router must resolve the destination before rest_output")
	}
	ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h.Host, "["), "]"))
	if err != nil {
		return "", reject(451, "4.3.5 remote_host "+strconv.Quote(cleanText(h.Host))+" is not an IP address: the gateway does not resolve names")
	}
	ip = ip.Unmap()
	if ip.IsUnspecified() || ip.IsMulticast() {
		return "", reject(550, "5.4.4 remote_host "+ip.String()+" is not a deliverable address")
	}
	port := h.Port
	if port == 0 {
		port = 25
		if lmtp {
			port = 24
		}
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(port)), nil
}

// sendMail opens a session (or takes one from the pool) and sends MAIL. A pooled session
// that has died meanwhile is replaced by a new connection once.
func (w *worker) sendMail(from tx.Mailbox) tx.Response {
	key := keyFor(w.addr, w.h)
	deadline := time.Now().Add(w.h.Timeout) // for the MAIL phase as a whole
	for attempt := 0; ; attempt++ {
		reused, err := w.open(key, deadline)
		if err != nil {
			return w.outcome("connect", 0, nil, err)
		}
		plan, rej := planMail(from, w.sess)
		if rej != nil {
			w.release()
			return *rej
		}
		w.sess.messages++
		r, err := w.sess.cmd("MAIL", pathLine("MAIL FROM", from.Address, plan.params))
		if reused && attempt == 0 && (err != nil || r.code == 421) {
			w.drop()
			continue
		}
		resp := w.outcome("MAIL", 250, r, err)
		if err != nil {
			w.drop()
			return resp
		}
		w.sess.deadline = time.Time{} // the MAIL phase is over: each command gets the timeout
		if !resp.Ok() {
			w.release()
			return resp
		}
		w.mail = plan
		return resp
	}
}

// open takes a pooled session for key or connects, within the MAIL phase's deadline.
func (w *worker) open(key poolKey, deadline time.Time) (reused bool, err error) {
	if s := w.s.pool.get(key); s != nil {
		s.deadline = deadline
		w.attach(s)
		return true, nil
	}
	s, err := w.dial(key, false, deadline)
	var te *tlsError
	if errors.As(err, &te) && te.kind == tlsHandshake && !w.h.RequireTLS {
		// Opportunistic TLS that fails is no reason not to deliver: plain text, anew.
		w.s.log.Info("STARTTLS failed; retrying without TLS", "tx", w.t.id, "peer", w.addr, "err", err)
		s, err = w.dial(key, true, deadline)
	}
	if err != nil {
		return false, err
	}
	w.attach(s)
	return false, nil
}

// dial connects, reads the greeting, says EHLO and, as the TLS policy has it, STARTTLS.
func (w *worker) dial(key poolKey, plain bool, deadline time.Time) (*session, error) {
	ctx, cancel := context.WithDeadline(w.s.ctx, deadline)
	defer cancel()
	cctx, ccancel := context.WithTimeout(ctx, w.h.ConnectTimeout)
	c, err := w.s.o.Dial(cctx, "tcp", key.addr)
	ccancel()
	if err != nil {
		return nil, &connectError{key.addr, err}
	}
	// Timeouts are the I/O deadlines' business; closing the server ends the setup at once.
	stop := context.AfterFunc(w.s.ctx, func() { _ = c.Close() })
	defer stop()
	s := newSession(c, key, w.h.Timeout)
	s.deadline = deadline
	r, err := s.readReply("greeting", s.opDeadline())
	if err != nil {
		s.close()
		return nil, err
	}
	if r.code != 220 {
		s.quit()
		return nil, &replyError{"greeting", r}
	}
	if err := s.hello(w.h.EHLOHost, w.h.LMTP); err != nil {
		s.quit()
		return nil, err
	}
	switch {
	case !plain && s.has("STARTTLS"):
		err := s.startTLS(ctx, w.tlsConfig(key), w.h.EHLOHost, w.h.LMTP)
		var te *tlsError
		if errors.As(err, &te) && te.kind == tlsRefused && !w.h.RequireTLS {
			break // the peer changed its mind; opportunistic TLS carries on without
		}
		if err != nil {
			s.quit()
			return nil, err
		}
	case w.h.RequireTLS:
		s.quit()
		return nil, &tlsError{kind: tlsNotOffered}
	}
	return s, nil
}

func (w *worker) tlsConfig(key poolKey) *tls.Config {
	if !w.h.VerifyTLS {
		return &tls.Config{InsecureSkipVerify: true, ServerName: w.h.TLSServerName, MinVersion: tls.VersionTLS12}
	}
	name := w.h.TLSServerName
	if name == "" {
		name, _, _ = net.SplitHostPort(key.addr)
	}
	return &tls.Config{ServerName: name, RootCAs: w.h.RootCAs, MinVersion: tls.VersionTLS12}
}

// attach makes s the worker's session; closing the server closes it.
func (w *worker) attach(s *session) {
	w.sess = s
	w.unkill = context.AfterFunc(w.s.ctx, func() { _ = s.raw.Close() })
}

func (w *worker) detach() *session {
	s := w.sess
	if w.unkill != nil {
		w.unkill()
	}
	w.sess, w.unkill = nil, nil
	return s
}

// release ends the worker's use of the session: after RSET it goes back to the pool, or it
// gets QUIT once it has carried MaxReuse messages.
func (w *worker) release() {
	s := w.detach()
	switch {
	case s == nil:
	case s.broken:
		s.close()
	case s.messages >= w.h.MaxReuse || w.s.ctx.Err() != nil:
		s.quit()
	case !s.reset():
		s.close()
	case !w.s.pool.put(s, w.h.ReuseIdle):
		s.quit()
	}
}

// drop closes the session without a word.
func (w *worker) drop() {
	if s := w.detach(); s != nil {
		s.close()
	}
}

// envelope sends recipients as they arrive until the message starts (the first PUT) or the
// transaction is cancelled.
func (w *worker) envelope() tx.Response {
	for {
		st, changed := w.t.snapshot()
		if st.Cancelled {
			return w.stopped()
		}
		if r, ok := w.recipients(st); !ok {
			return r
		}
		select {
		case <-changed:
		case p := <-w.t.pieces:
			return w.data(p)
		case <-w.s.ctx.Done():
			return w.stopped()
		}
	}
}

// recipients sends the recipients of st not sent yet; false: the session broke, and r is
// the end of the transaction.
func (w *worker) recipients(st *tx.Tx) (tx.Response, bool) {
	for w.sent < len(st.RcptTo) {
		r := w.rcpt(st.RcptTo[w.sent])
		w.t.setRcpt(w.sent, r)
		w.sent++
		if w.sess.broken {
			w.drop()
			return r, false
		}
	}
	return tx.Response{}, true
}

func (w *worker) rcpt(mb tx.Mailbox) tx.Response {
	if w.h.LMTP && w.accepted > 0 {
		return lmtpOneRcpt
	}
	params, rej := planRcpt(mb, w.sess, w.mail)
	if rej != nil {
		return *rej
	}
	r, err := w.sess.cmd("RCPT", pathLine("RCPT TO", mb.Address, params))
	resp := w.outcome("RCPT", 250, r, err)
	if resp.Ok() {
		w.accepted++
	}
	return resp
}

// data sends the message: the first piece p came with the first PUT, and the recipients are
// complete. Each piece is granted the sink, written by its PUT, and handed back.
func (w *worker) data(p *piece) tx.Response {
	st, _ := w.t.snapshot()
	if r, ok := w.recipients(st); !ok {
		p.grant <- nil
		return r
	}
	if w.accepted == 0 {
		p.grant <- nil
		w.t.setData(noValidRcpts)
		w.release()
		return noValidRcpts
	}
	var sink dataSink
	if w.sess.has("CHUNKING") && (w.h.EnableBDAT || w.mail.binary) {
		sink = w.sess.bdat(w.h.ChunkSize)
	} else {
		ds, r, err := w.sess.data()
		if ds == nil {
			p.grant <- nil
			resp := w.outcome("DATA", 354, r, err)
			w.t.setData(resp)
			w.release()
			return resp
		}
		sink = ds
	}
	for {
		p.grant <- sink
		res, ok := w.pieceDone(p)
		if !ok {
			return w.stopped()
		}
		if res.writeErr != nil {
			resp := w.outcome("DATA", 250, nil, res.writeErr)
			w.t.setData(resp)
			w.release()
			return resp
		}
		if p.last && res.readErr == nil {
			break
		}
		var end tx.Response
		if p, end = w.nextPiece(sink); p == nil {
			return end
		}
	}
	n := 1
	if w.h.LMTP {
		n = w.accepted // one reply per accepted recipient; at most one, see the package comment
	}
	stop := w.closeOnCancel()
	replies, err := sink.finish(time.Now().Add(w.h.DataTimeout), n)
	stop()
	var resp tx.Response
	if err != nil {
		resp = w.outcome("end of data", 250, nil, err)
	} else {
		resp = w.outcome("end of data", 250, replies[0], nil)
	}
	w.t.setData(resp)
	w.release()
	return resp
}

// closeOnCancel closes the session's connection if the transaction is cancelled before stop
// is called. The router cancels when it gives up waiting for the reply to the message (its
// data_timeout, shorter than a peer may take): then the connection and the worker go at
// once, not after the rest of DataTimeout.
func (w *worker) closeOnCancel() (stop func()) {
	raw, done, exited := w.sess.raw, make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		for {
			cancel, changed := w.t.watch()
			if cancel {
				_ = raw.Close()
				return
			}
			select {
			case <-changed:
			case <-done:
				return
			}
		}
	}()
	return func() { close(done); <-exited }
}

// pieceDone waits for the PUT that holds the sink to hand it back. If the transaction is
// cancelled or the server closes meanwhile (a PUT can stall as long as its client does),
// the connection under the sink is closed, which is all the worker may touch of it now,
// and ok is false.
func (w *worker) pieceDone(p *piece) (res pieceResult, ok bool) {
	for {
		cancel, changed := w.t.watch()
		if !cancel {
			select {
			case res = <-p.done:
				return res, true
			case <-changed:
				continue
			case <-w.s.ctx.Done():
			}
		}
		_ = w.detach().raw.Close()
		return res, false
	}
}

// nextPiece waits for the next PUT of the message. A cancel in the meantime abandons the
// message: the sink says whether the session survives that.
func (w *worker) nextPiece(sink dataSink) (*piece, tx.Response) {
	for {
		cancel, changed := w.t.watch()
		if cancel {
			if sink.abort() {
				w.release()
			} else {
				w.drop()
			}
			return nil, w.stopped()
		}
		select {
		case p := <-w.t.pieces:
			return p, tx.Response{}
		case <-changed:
		case <-w.s.ctx.Done():
			return nil, w.stopped()
		}
	}
}
