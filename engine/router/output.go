package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/dsn"
	"github.com/koukan/koukan/engine/metrics"
	"github.com/koukan/koukan/engine/mime"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/tx"
	"github.com/koukan/koukan/engine/txlog"
)

// internalError answers what a failed attempt left unanswered; the transaction is retried.
var internalError = tx.Response{Code: 450, Message: "4.3.0 internal error"}

// handOff starts the first attempt of a transaction this replica just created (cut-through:
// no wait for the dequeue loop), unless the create started it (store.NewTx.StartAttempt).
func (s *Service) handOff(restID string, started bool) {
	s.spawn(func() {
		s.startAttempt()
		defer s.releaseAttempt()
		err := s.untilStored("starting the first attempt", restID, func() error {
			if started {
				return nil
			}
			_, err := s.store.StartAttempt(s.ctx, restID)
			return err
		})
		if errors.Is(err, store.ErrNotLeased) {
			// Created held: its domain is suspended (store.NewTx). The dequeue loop starts it
			// once the domain is resumed.
			s.log.Info("transaction held: its destination domain is suspended", "tx", restID)
			return
		} else if err != nil {
			return
		}
		s.deliver(restID, false)
	})
}

// deliver runs one attempt, already started, to its end. Whatever goes wrong inside, a
// panic included, ends the attempt with a temporary failure and a retry after bug_retry:
// never a dead process, never a transaction left leased.
func (s *Service) deliver(restID string, notificationOnly bool) {
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		if notificationOnly {
			return s.notifyOnly(restID)
		}
		return s.attempt(restID)
	}()
	if err == nil || s.ctx.Err() != nil {
		return
	}
	s.log.Error("attempt failed", "tx", restID, "err", err)
	// The database away or full for a while is no bug: the retry policy alone says when.
	storage := s.storageFault(err) != nil
	s.untilStored("ending a failed attempt", restID, func() error { return s.bailOut(restID, storage) })
}

// bailOut ends an attempt that failed inside the router: unanswered requests get 450 and the
// transaction is tried again after bug_retry, or as its retry policy says if the attempt
// failed because the storage was unavailable or full.
func (s *Service) bailOut(restID string, storage bool) error {
	rec, t, err := s.read(s.ctx, restID)
	if err != nil {
		return err
	}
	fillMissing(t, rec.InputDone, internalError)
	responses, err := responsesJSON(t)
	if err != nil {
		return err
	}
	f := store.Finish{Responses: responses, NextAttempt: time.Now().Add(time.Hour)}
	if _, endpoint := s.senderOf(t); endpoint != nil && endpoint.OutputHandler.RetryParams != nil && rec.Retry {
		// Tried again after bug_retry, but within the retry policy: a transaction that
		// crashes its handler every time ends with max attempts or deadline, not never.
		p := endpoint.OutputHandler.RetryParams
		now := time.Now()
		next, reason := nextAttempt(p, rec.AttemptCount, rec.Creation, now, jitter)
		f.FinalReason, f.NextAttempt = reason, next
		if !storage {
			f.NextAttempt = maxTime(next, now.Add(p.BugRetry))
		}
	}
	f.Events = s.webhookEvents(rec, t, f)
	if _, err = s.store.FinishAttempt(s.ctx, restID, f); err == nil {
		sender, _ := senderLabels(t)
		recordAttempt(sender, f.FinalReason, attemptOutcome(f.FinalReason, rec.Retry), rec.Creation, time.Time{})
	}
	return err
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// fillMissing answers every request still without a response with r (unlike
// FillInflightResponses it does not turn recipients after a failed MAIL into 503s: a failure
// of ours is the same temporary failure for every request).
func fillMissing(t *tx.Tx, bodyDone bool, r tx.Response) {
	if t.MailFrom != nil && t.MailResponse == nil {
		t.MailResponse = &r
	}
	for len(t.RcptResponse) < len(t.RcptTo) {
		t.RcptResponse = append(t.RcptResponse, r)
	}
	if bodyDone && t.DataResponse == nil {
		t.DataResponse = &r
	}
}

// attempt is the output handler loop of reference §3.6: feed the chain what is new, write
// its answers to the attempt, and stop when the transaction cannot progress further.
func (s *Service) attempt(restID string) error {
	ctx, started := s.ctx, time.Now()
	rec, t, err := s.read(ctx, restID)
	if err != nil {
		return err
	}
	settings, endpoint := s.senderOf(t)
	if endpoint == nil {
		return fmt.Errorf("sender %+v is not in the config", t.Sender)
	}
	c, err := chain.Build(s.stepsFor(settings), endpoint.Chain)
	if err != nil {
		return err
	}
	defer func() {
		if err := c.Close(context.WithoutCancel(ctx)); err != nil {
			s.log.Warn("releasing the chain", "tx", restID, "err", err)
		}
	}()
	oh := endpoint.OutputHandler
	view := &tx.Tx{}
	var (
		msg *chain.Message
		// written is what the attempt's responses are in storage: none at its start,
		// or those given with the create (store.NewTx.Responses).
		written     = responsesOf(t)
		version     = rec.Version
		lastChange  = time.Now()
		lastRefresh time.Time
	)
	// Most wakes follow writes of responses, not of the request: the document is parsed
	// again only when it changed.
	parsed := rec.JSON
	for {
		changed, release := s.hub.subscribe(restID)
		rec, err = s.store.Get(ctx, restID)
		if err == nil && !bytes.Equal(rec.JSON, parsed) {
			t, err = s.load(rec)
			parsed = rec.JSON
		}
		if err != nil {
			release()
			return err
		}
		t.Cancelled = rec.Cancelled
		if rec.Version != version || s.hub.waiting(restID) > 1 {
			// A write, or a client waiting on a hanging GET: the client is there.
			version, lastChange = rec.Version, time.Now()
		}
		fresh := syncRequests(view, t)
		if msg == nil && rec.InputDone {
			if msg, err = s.message(rec); err != nil {
				release()
				return err
			}
			fresh = true
		}
		if fresh || time.Since(lastRefresh) >= oh.UpstreamRefresh {
			lastRefresh = time.Now()
			if err := c.Update(ctx, view, msg); err != nil {
				release()
				return err
			}
		}
		if done, reason := outcome(view, rec.InputDone); done {
			// The last responses go with the attempt's end, in one write.
			release()
			return s.finish(ctx, restID, rec, view, c, msg, oh, reason, started)
		}
		if !reflect.DeepEqual(written, responsesOf(view)) {
			if err := s.writeResponses(ctx, restID, view); err != nil {
				release()
				return err
			}
			written = responsesOf(view)
		}

		wait := time.Until(lastRefresh.Add(oh.UpstreamRefresh))
		if !rec.InputDone {
			wait = min(wait, time.Until(lastChange.Add(oh.DownstreamTimeout)))
		}
		timer := time.NewTimer(max(wait, 0))
		select {
		case <-changed:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		release()
		if ctx.Err() != nil {
			return nil // shutting down: the lease goes with the session
		}
		if !rec.InputDone && time.Since(lastChange) >= oh.DownstreamTimeout && s.hub.waiting(restID) == 0 {
			view.FillInflightResponses(tx.Response{Code: 450, Message: "4.4.7 downstream timeout"})
			return s.finish(ctx, restID, rec, view, c, msg, oh, tx.ReasonDownstreamTimeout, started)
		}
	}
}

// syncRequests copies into the chain's view what the client has sent since: the envelope,
// new recipients, cancellation. It reports whether anything is new.
func syncRequests(view, t *tx.Tx) bool {
	fresh := false
	if view.MailFrom == nil && t.MailFrom != nil {
		view.Sender, view.RemoteHost, view.LocalHost, view.SMTPMeta = t.Sender, t.RemoteHost, t.LocalHost, t.SMTPMeta
		view.MailFrom, view.Retry, view.Notification, view.RestID = t.MailFrom, t.Retry, t.Notification, t.RestID
		fresh = true
	}
	if len(t.RcptTo) > len(view.RcptTo) {
		view.RcptTo = append(view.RcptTo, t.RcptTo[len(view.RcptTo):]...)
		fresh = true
	}
	if t.Cancelled && !view.Cancelled {
		view.Cancelled = true
		fresh = true
	}
	return fresh
}

// message is the stored body as the chain sends it.
func (s *Service) message(rec *store.Tx) (*chain.Message, error) {
	if rec.MessageBuilder != nil {
		spec, err := tx.ParseMessageSpec(rec.MessageBuilder)
		if err != nil {
			return nil, err
		}
		id := rec.RestID
		return chain.NewMessage(-1, func(ctx context.Context) (io.ReadCloser, error) {
			// Rendered as it is read, from the part blobs; the transaction id as seed makes
			// every read the same bytes.
			pr, pw := io.Pipe()
			go func() {
				pw.CloseWithError(mime.Render(pw, spec, func(blob string) (io.ReadCloser, error) {
					r, _, err := s.store.OpenBlob(ctx, id, blob)
					return r, err
				}, id))
			}()
			return pr, nil
		}), nil
	}
	for _, b := range rec.Blobs {
		if b.ID == tx.TxBodyBlobID {
			id := rec.RestID
			return chain.NewMessage(b.Length, func(ctx context.Context) (io.ReadCloser, error) {
				r, _, err := s.store.OpenBlob(ctx, id, tx.TxBodyBlobID)
				return r, err
			}), nil
		}
	}
	return nil, errors.New("input is done but the transaction has no body")
}

// outcome decides, in the order of reference §3.6, whether the attempt is over and with which
// final reason ("" for a temporary failure, which may be retried).
func outcome(v *tx.Tx, inputDone bool) (bool, string) {
	if v.ReqInflight() {
		// The chain's last step broke its contract: it left a request unanswered.
		v.FillInflightResponses(tx.Response{Code: 450, Message: "4.3.0 internal error: OutputHandler failed to populate response"})
		return true, ""
	}
	if v.Cancelled {
		return true, tx.ReasonDownstreamCancelled
	}
	if m := v.MailResponse; m != nil && !m.Ok() {
		return true, permReason(*m, tx.ReasonMailPermfail)
	}
	if inputDone && len(v.RcptResponse) == len(v.RcptTo) && len(v.RcptTo) > 0 && !anyOK(v.RcptResponse) {
		if len(v.RcptTo) > 1 {
			return true, tx.ReasonAllRcptsFailed
		}
		return true, permReason(v.RcptResponse[0], tx.ReasonRcptPermfail)
	}
	if d := v.DataResponse; d != nil {
		if d.Ok() {
			return true, tx.ReasonUpstreamSuccess
		}
		return true, permReason(*d, tx.ReasonUpstreamPermfail)
	}
	return false, ""
}

func permReason(r tx.Response, reason string) string {
	if r.Perm() {
		return reason
	}
	return ""
}

func anyOK(rs []tx.Response) bool {
	for _, r := range rs {
		if r.Ok() {
			return true
		}
	}
	return false
}

// finish ends the attempt: final reason, or the retry time of a temporary failure, then the
// chain is told to release its upstream.
func (s *Service) finish(ctx context.Context, restID string, rec *store.Tx, view *tx.Tx, c *chain.Chain,
	msg *chain.Message, oh config.OutputHandler, reason string, started time.Time) error {
	f := store.Finish{FinalReason: reason}
	if reason == "" && !rec.Retry {
		// The exploder may have turned retries on (store-and-forward) while the chain was
		// busy with the upstream: decide on the record as it is now.
		if fresh, err := s.store.Get(ctx, restID); err == nil && fresh.Retry {
			retried := *rec
			retried.Retry = true
			rec = &retried
		}
	}
	if reason == "" && oh.RetryParams != nil {
		next, final := nextAttempt(oh.RetryParams, rec.AttemptCount, rec.Creation, time.Now(), jitter)
		if rec.Retry {
			f.NextAttempt, f.FinalReason = next, final
		} else {
			// Over after this attempt, unless the exploder turns retries on once it has
			// seen the failure (store-and-forward): then the next attempt is due when
			// the policy says, not at once.
			f.NextAttempt = next
		}
	}
	var err error
	if f.Responses, err = responsesJSON(view); err != nil {
		return err
	}
	f.Events = s.webhookEvents(rec, view, f)
	if f.FinalReason == "" && rec.Retry && !f.NextAttempt.IsZero() {
		// While the lease holds: the next attempt, which may start as soon as FinishAttempt
		// lets go, must find the delay notice marked sent.
		if err := s.maybeNotifyDelay(ctx, rec, view, oh); err != nil {
			s.log.Error("sending a delay notification", "tx", restID, "err", err)
		}
	}
	if _, err := s.store.FinishAttempt(ctx, restID, f); err != nil {
		return err
	}
	sender, tag := senderLabels(view)
	result := attemptOutcome(f.FinalReason, rec.Retry)
	recordAttempt(sender, f.FinalReason, result, rec.Creation, started)
	attrs := []any{"tx", restID, "attempt", rec.AttemptCount, "sender", sender, "sender_tag", tag,
		"rcpt_domains", txlog.Domains(view.RcptTo), "upstream", c.Upstream(), "reply", txlog.Reply(view), "outcome", result,
		"final", f.FinalReason}
	if result == "retry" { // a transaction that ends here has no next attempt to show
		attrs = append(attrs, "next_attempt", f.NextAttempt)
	}
	s.log.Info("attempt finished", attrs...)
	if failed(f.FinalReason) {
		// Decide on the record as FinishAttempt left it: notifications may have been turned
		// on since rec was read (exploder store-and-forward), and FinishAttempt owed a
		// post-facto notification only if they were still off.
		fresh, err := s.store.Get(ctx, restID)
		if err == nil {
			err = s.maybeNotify(ctx, fresh, view, oh, dsn.ActionFailed)
		}
		if err != nil {
			s.log.Error("sending a delivery status notification", "tx", restID, "err", err)
		}
	} else if f.FinalReason == tx.ReasonUpstreamSuccess {
		if err := s.maybeNotify(ctx, rec, view, oh, dsn.ActionDelivered); err != nil {
			s.log.Error("sending a delivery notification", "tx", restID, "err", err)
		}
	}
	if view.DataResponse == nil {
		view.Cancelled = true
		if err := c.Update(ctx, view, msg); err != nil {
			s.log.Warn("cancelling upstream", "tx", restID, "err", err)
		}
	}
	return nil
}

// writeResponses stores the chain's answers in the current attempt. Clients write to the
// transaction meanwhile, so a version conflict is retried with the new version: the
// responses belong to this attempt alone.
func (s *Service) writeResponses(ctx context.Context, restID string, view *tx.Tx) error {
	responses, err := responsesJSON(view)
	if err != nil {
		return err
	}
	for range 10 {
		h, err := s.store.Head(ctx, restID)
		if err != nil {
			return err
		}
		if _, err = s.store.Update(ctx, restID, h.Version, store.Update{Responses: responses}); !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return errors.New("could not write responses: the transaction keeps changing")
}

// responsesOf is the part of the view that goes to the attempt row.
func responsesOf(v *tx.Tx) *tx.Tx {
	return &tx.Tx{MailResponse: v.MailResponse, RcptResponse: append([]tx.Response(nil), v.RcptResponse...),
		DataResponse: v.DataResponse, FilterOutput: v.FilterOutput}
}

func responsesJSON(v *tx.Tx) ([]byte, error) { return responsesOf(v).MarshalFor(tx.DBAttempt) }

// failed tells the final reasons that a sender is told about with a DSN: the message will
// not be delivered. A cancel or a client that went away is not news to the sender.
func failed(reason string) bool {
	switch reason {
	case tx.ReasonUpstreamPermfail, tx.ReasonMailPermfail, tx.ReasonRcptPermfail, tx.ReasonAllRcptsFailed,
		tx.ReasonMaxAttempts, tx.ReasonDeadline:
		return true
	}
	return false
}

// notifyOnly is the pseudo-attempt of a transaction that ended before it asked for
// notifications and owes one now (reference §3.8): the DSN is built from the stored
// outcome, with no new attempt.
func (s *Service) notifyOnly(restID string) error {
	rec, t, err := s.read(s.ctx, restID)
	if err != nil {
		return err
	}
	if _, endpoint := s.senderOf(t); endpoint != nil && failed(rec.FinalAttemptReason) {
		if err := s.maybeNotify(s.ctx, rec, t, endpoint.OutputHandler, dsn.ActionFailed); err != nil {
			return err
		}
	}
	_, err = s.store.FinishAttempt(s.ctx, restID, store.Finish{NotificationSent: true})
	return err
}

// recordAttempt counts an attempt that ended, and the transaction if it is final, with its
// time since creation. A zero started is an attempt that failed inside the router (bailOut).
func recordAttempt(sender, final, outcome string, created, started time.Time) {
	kind := "retry"
	if final != "" {
		kind = "final"
		metrics.TxFinished.WithLabelValues(sender, final).Inc()
		metrics.TxSeconds.WithLabelValues(sender, outcome).Observe(max(metrics.Since(created), 0))
	}
	if started.IsZero() {
		// Ended by bailOut: the attempt failed inside the router.
		metrics.Attempts.WithLabelValues(sender, "failed").Inc()
		return
	}
	metrics.Attempts.WithLabelValues(sender, kind).Inc()
	metrics.AttemptSeconds.WithLabelValues(sender).Observe(metrics.Since(started))
}

// senderLabels is the transaction's sender name and tag, for metrics and the log.
func senderLabels(v *tx.Tx) (name, tag string) {
	if v.Sender == nil {
		return "", ""
	}
	return v.Sender.Name, v.Sender.Tag
}

// attemptOutcome says how an attempt left its transaction, as the admin API's states do:
// delivered, failed or cancelled, or retry when another attempt will come. A temporary
// failure without retries ends the transaction: failed.
func attemptOutcome(final string, retry bool) string {
	switch {
	case final == tx.ReasonUpstreamSuccess:
		return string(store.StateDelivered)
	case final == tx.ReasonDownstreamCancelled:
		return string(store.StateCancelled)
	case final != "" || !retry:
		return string(store.StateFailed)
	}
	return "retry"
}
