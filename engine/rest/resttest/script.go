package resttest

import (
	"slices"
	"time"

	"github.com/koukan/koukan/engine/tx"
)

// Phase names the request a reply is for.
type Phase int

const (
	PhaseMail Phase = iota + 1
	PhaseRcpt
	PhaseData
)

func (p Phase) String() string {
	switch p {
	case PhaseMail:
		return "mail"
	case PhaseRcpt:
		return "rcpt"
	case PhaseData:
		return "data"
	}
	return "unknown phase"
}

// Request is what Options.Respond decides a reply for, with the
// transaction as received so far.
type Request struct {
	Phase Phase
	Rcpt  int // for PhaseRcpt, the recipient's index in rcpt_to
	Received
}

// Reply is a scripted answer: the response (the zero Response means 250
// "ok"), and how long after the receiver gets to the request it appears in
// the transaction.
type Reply struct {
	Response tx.Response
	Delay    time.Duration
}

var okResponse = tx.Response{Code: 250, Message: "ok"}

// advance answers t's requests one at a time, in SMTP order, for as long as
// replies come at once; a delayed reply continues from its timer. Callers
// hold no lock: Respond is the test's code and may call the Receiver.
func (r *Receiver) advance(t *rtx) {
	for {
		r.mu.Lock()
		req, ok := r.nextRequest(t)
		if !ok {
			r.mu.Unlock()
			return
		}
		t.pending = true
		r.mu.Unlock()

		var reply Reply
		if r.opts.Respond != nil {
			reply = r.opts.Respond(req)
		}
		if reply.Response == (tx.Response{}) {
			reply.Response = okResponse
		}

		r.mu.Lock()
		if isClosed(r.closed) {
			r.mu.Unlock()
			return
		}
		if reply.Delay > 0 {
			t.timer = time.AfterFunc(reply.Delay, func() {
				r.mu.Lock()
				r.answer(t, req, reply.Response)
				r.mu.Unlock()
				r.advance(t)
			})
			r.mu.Unlock()
			return
		}
		r.answer(t, req, reply.Response)
		r.mu.Unlock()
	}
}

// nextRequest is the request t should answer next, if any, under r.mu.
func (r *Receiver) nextRequest(t *rtx) (Request, bool) {
	st := t.state
	switch {
	case t.pending || st.Cancelled || isClosed(r.closed):
	case st.MailResponse == nil:
		if st.MailFrom != nil {
			return Request{Phase: PhaseMail, Received: t.snapshot()}, true
		}
	case st.MailResponse.Err():
	case len(st.RcptResponse) < len(st.RcptTo):
		return Request{Phase: PhaseRcpt, Rcpt: len(st.RcptResponse), Received: t.snapshot()}, true
	case st.DataResponse == nil && t.bodyComplete() && slices.ContainsFunc(st.RcptResponse, tx.Response.Ok):
		return Request{Phase: PhaseData, Received: t.snapshot()}, true
	}
	return Request{}, false
}

// answer records a reply, under r.mu; a cancel or Close since the request
// drops it.
func (r *Receiver) answer(t *rtx, req Request, resp tx.Response) {
	t.pending, t.timer = false, nil
	if t.state.Cancelled || isClosed(r.closed) {
		return
	}
	switch req.Phase {
	case PhaseMail:
		t.state.MailResponse = &resp
	case PhaseRcpt:
		t.state.RcptResponse = append(t.state.RcptResponse, resp)
	case PhaseData:
		t.state.DataResponse = &resp
	}
	r.touch(t)
}

// bodyComplete: the raw message and every part blob are finalized.
func (t *rtx) bodyComplete() bool {
	if !t.body.final {
		return false
	}
	for _, b := range t.parts {
		if !b.final {
			return false
		}
	}
	return true
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
	}
	return false
}
