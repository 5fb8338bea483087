// Package exploder is the chain step that ends the chains of multi-recipient SMTP
// transactions: it fans each recipient out into a transaction of its own, written back to
// durable storage and delivered by its own output handler, and fans their answers back in
// (reference §4).
//
// MAIL is answered at once. Each recipient's answer is its transaction's, with the upgrades
// of store-and-forward on submission (msa): where the client would otherwise see a temporary
// failure or a timeout, it gets 250 and the recipient's transaction is made durable and
// retryable, and will bounce if it fails for good. The data answer is the recipients' own
// when they agree, and 250 store-and-forward (with the same upgrade for the failures) when
// they do not.
package exploder

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/tx"
)

// Upstream is where recipients' transactions live: the router's storage and output
// handlers.
type Upstream interface {
	// Create stores a recipient's transaction and starts delivering it.
	Create(ctx context.Context, t *tx.Tx) (string, error)
	// AddBody gives a recipient's transaction the complete body of transaction from, by
	// reference.
	AddBody(ctx context.Context, id, from string) error
	// Wait returns the transaction once done says so, or its state when ctx ends.
	Wait(ctx context.Context, id string, done func(*tx.Tx) bool) (*tx.Tx, error)
	// StoreAndForward makes the transaction retry temporary failures and send a DSN on
	// final failure.
	StoreAndForward(ctx context.Context, id string) error
	// Cancel cancels the transaction.
	Cancel(ctx context.Context, id string) error
}

// Options configure one exploder step.
type Options struct {
	// MSA turns on store-and-forward for temporary failures and timeouts (submission).
	MSA bool
	// RcptTimeout and DataTimeout bound the wait for recipients' answers before and after
	// the body is complete.
	RcptTimeout, DataTimeout time.Duration
	// Sender is what recipients' transactions are created as (the sender's upstream_sender
	// and upstream_tag).
	Sender tx.Sender
}

// Step is one attempt's exploder.
type Step struct {
	up   Upstream
	opts Options
	// ids are recipients' transactions by recipient index ("" when it could not be made);
	// armed marks those already made store-and-forward.
	ids      []string
	armed    map[string]bool
	bodySent bool
}

var _ chain.Step = (*Step)(nil)
var _ chain.Handoff = (*Step)(nil)

// Upstream lists the recipients' transaction ids made so far, comma-separated.
func (s *Step) Upstream() string {
	made := make([]string, 0, len(s.ids))
	for _, id := range s.ids {
		if id != "" {
			made = append(made, id)
		}
	}
	return strings.Join(made, ",")
}

// New makes an exploder for one attempt.
func New(up Upstream, opts Options) *Step {
	return &Step{up: up, opts: opts, armed: map[string]bool{}}
}

// MailOK is the exploder's answer to MAIL, given at once: it is known before the step runs,
// so the router gives it with the transaction's creation.
var MailOK = tx.Response{Code: 250, Message: "2.0.0 MAIL ok (exploder noop)"}

var (
	cannotCreate = tx.Response{Code: 451, Message: "4.3.0 cannot take this recipient now (exploder)"}
	timeout      = tx.Response{Code: 450, Message: "4.4.7 upstream timeout (exploder)"}
	rcptSF       = tx.Response{Code: 250, Message: "2.0.0 RCPT ok (exploder store&forward)"}
	dataSF       = tx.Response{Code: 250, Message: "2.0.0 DATA ok (exploder store&forward)"}
)

func (s *Step) Update(ctx context.Context, u *chain.Update) error {
	t := u.Tx
	if t.Cancelled {
		s.cancel(ctx, t)
		return nil
	}
	if u.Mail {
		u.SetMailResponse(MailOK)
	}
	for _, i := range u.Rcpts {
		s.ids = append(s.ids, "")
		if u.RcptResponse(i) != nil {
			continue // an earlier step answered it
		}
		up := &tx.Tx{Sender: &s.opts.Sender, MailFrom: t.MailFrom, RemoteHost: t.RemoteHost, LocalHost: t.LocalHost,
			SMTPMeta: t.SMTPMeta, RcptTo: []tx.Mailbox{t.RcptTo[i]}}
		id, err := s.up.Create(ctx, up)
		if err != nil {
			u.SetRcptResponse(i, cannotCreate)
			continue
		}
		s.ids[i] = id
	}
	if u.Data && !s.bodySent {
		s.bodySent = true
		for i, id := range s.ids {
			rr := u.RcptResponse(i)
			switch {
			case id == "":
			case rr == nil || rr.Ok():
				if err := s.up.AddBody(ctx, id, t.RestID); err != nil {
					return err
				}
			case !s.armed[id]:
				// Refused: no body will come, so its transaction ends now instead of
				// waiting for one until its downstream timeout.
				_ = s.up.Cancel(context.WithoutCancel(ctx), id)
			}
		}
	}
	limit := s.opts.RcptTimeout
	if s.bodySent {
		limit = s.opts.DataTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	results := make([]*tx.Tx, len(s.ids))
	for i, id := range s.ids {
		if id == "" || !s.waiting(u, i) {
			continue
		}
		got, err := s.up.Wait(wctx, id, func(r *tx.Tx) bool { return s.answered(r) })
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		results[i] = got
	}
	for i, r := range results {
		if r != nil && u.RcptResponse(i) == nil {
			u.SetRcptResponse(i, s.rcptResponse(ctx, s.ids[i], r))
		}
	}
	if s.bodySent && t.DataResponse == nil {
		s.dataResponse(ctx, u, results)
	}
	return nil
}

// waiting tells whether recipient i's transaction still owes this update an answer.
func (s *Step) waiting(u *chain.Update, i int) bool {
	r := u.RcptResponse(i)
	return r == nil || s.bodySent && r.Ok()
}

// answered: the recipient's transaction has answered all that has been asked of it.
func (s *Step) answered(r *tx.Tx) bool {
	if r.MailResponse != nil && !r.MailResponse.Ok() {
		return true
	}
	if len(r.RcptResponse) == 0 {
		return false
	}
	return !s.bodySent || !r.RcptResponse[0].Ok() || r.DataResponse != nil
}

// rcptResponse is what the client hears for a recipient whose transaction is r.
func (s *Step) rcptResponse(ctx context.Context, id string, r *tx.Tx) tx.Response {
	if m := r.MailResponse; m != nil && !m.Ok() {
		return tx.Response{Code: m.Code, Message: "RCPT failed precondition MAIL: " + m.Message}
	}
	if len(r.RcptResponse) == 0 || r.RcptResponse[0].Temp() {
		if s.opts.MSA && s.storeAndForward(ctx, id) {
			return rcptSF
		}
		if len(r.RcptResponse) == 0 {
			return timeout
		}
	}
	return r.RcptResponse[0]
}

// dataResponse aggregates the recipients' data answers once every accepted recipient has one
// (or the wait is over).
func (s *Step) dataResponse(ctx context.Context, u *chain.Update, results []*tx.Tx) {
	var answers []tx.Response
	var failedIDs []string
	for i, id := range s.ids {
		rr := u.RcptResponse(i)
		if id == "" || rr == nil || !rr.Ok() {
			continue
		}
		var d tx.Response
		switch r := results[i]; {
		case r == nil && s.armed[id]:
			d = dataSF // accepted by store-and-forward earlier, no answer due
		case r == nil || r.DataResponse == nil:
			d = timeout
		default:
			d = *r.DataResponse
		}
		if !d.Ok() && s.opts.MSA && d.Temp() && s.storeAndForward(ctx, id) {
			d = dataSF
		}
		if !d.Ok() {
			failedIDs = append(failedIDs, id)
		}
		answers = append(answers, d)
	}
	switch {
	case len(answers) == 0:
		return // the chain's preconditions answer: every recipient failed
	case len(answers) == 1:
		u.SetDataResponse(answers[0])
	case sameClass(answers):
		u.SetDataResponse(tx.Response{Code: answers[0].Code, Message: answers[0].Message + " (exploder same response)"})
	default:
		// Some recipients took the message and some did not: accept it for all, and make
		// the failures durable so that they retry and bounce.
		for _, id := range failedIDs {
			s.storeAndForward(ctx, id)
		}
		u.SetDataResponse(dataSF)
	}
}

func sameClass(rs []tx.Response) bool {
	for _, r := range rs[1:] {
		if r.Code/100 != rs[0].Code/100 {
			return false
		}
	}
	return true
}

// storeAndForward arms a recipient's transaction once; it reports whether it is armed.
func (s *Step) storeAndForward(ctx context.Context, id string) bool {
	if s.armed[id] {
		return true
	}
	if err := s.up.StoreAndForward(ctx, id); err != nil {
		return false
	}
	s.armed[id] = true
	return true
}

// cancel cancels recipients' transactions, except those already answered or accepted for
// store-and-forward: their 250 may have been given.
func (s *Step) cancel(ctx context.Context, t *tx.Tx) {
	for _, id := range s.ids {
		if id != "" && !s.armed[id] {
			_ = s.up.Cancel(context.WithoutCancel(ctx), id)
		}
	}
	if t.MailFrom != nil && t.MailResponse == nil {
		t.MailResponse = &tx.Response{Code: 550, Message: "5.0.0 cancelled"}
	}
}
