package router

import (
	"context"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/dsn"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/tx"
	"github.com/koukan/koukan/engine/webhook"
)

// Webhook events (docs/webhooks.md) are built here and written by the store with the
// outcome they report; the webhook.Worker that Run starts sends them.

// webhookEvents are the events that an attempt's outcome owes the webhook of the
// transaction's sender and tag (none without one), for store.Finish.Events: one per
// recipient, from the responses in view and the retry decision in f.
func (s *Service) webhookEvents(rec *store.Tx, view *tx.Tx, f store.Finish) []store.NewWebhookEvent {
	if s.webhookOf(view.Sender) == nil {
		return nil
	}
	now := time.Now()
	base := webhook.Event{Time: now, Transaction: rec.RestID, Sender: view.Sender.Name, Tag: view.Sender.Tag,
		Attempt: rec.AttemptCount, FinalReason: f.FinalReason}
	// Without a final reason, a transaction with retries is tried again; one without is
	// over (oneshot), unless the exploder turns retries on once it has seen the failure
	// (store-and-forward): such failures are held back a moment, for
	// explodeInto.StoreAndForward to supersede.
	retrying := f.FinalReason == "" && rec.Retry
	var hold time.Time
	if f.FinalReason == "" && !rec.Retry {
		hold = now.Add(storeAndForwardWindow)
	}
	next := f.NextAttempt
	if next.IsZero() {
		next = now
	}
	var events []store.NewWebhookEvent
	for i := range max(len(view.RcptTo), 1) {
		ev := base
		if i < len(view.RcptTo) {
			ev.Recipient = view.RcptTo[i].Address
		}
		r := replyFor(view, i)
		if r != nil {
			ev.Reply = webhook.NewReply(r.Code, r.Message)
		}
		switch {
		case r != nil && r.Ok():
			ev.Type = webhook.Delivered
		case r != nil && r.Perm() || !retrying:
			ev.Type = webhook.Failed
		default:
			ev.Type, ev.NextAttempt = webhook.Deferred, &next
		}
		notBefore := time.Time{}
		if ev.Type == webhook.Failed && (r == nil || !r.Perm()) {
			notBefore = hold
		}
		events = s.appendEvent(events, rec.RestID, ev, notBefore)
	}
	return events
}

// storeAndForwardWindow is how long the failed events of a one-shot transaction's temporary
// failure wait before they go out: the exploder decides on store-and-forward as soon as it
// sees the failure, well within it.
const storeAndForwardWindow = 2 * time.Second

// retryEvents are the events of rec's last attempt as they are once retries are on: the
// attempt ended with a temporary failure and the transaction is tried again at its next
// attempt time.
func (s *Service) retryEvents(rec *store.Tx) ([]store.NewWebhookEvent, error) {
	view, err := s.load(rec)
	if err != nil {
		return nil, err
	}
	retried := *rec
	retried.Retry = true
	return s.webhookEvents(&retried, view, store.Finish{NextAttempt: rec.NextAttempt}), nil
}

// replyFor is the reply that decided recipient i's fate in this attempt, if any: MAIL's if
// it failed, else the recipient's if it failed, else the data's.
func replyFor(v *tx.Tx, i int) *tx.Response {
	switch {
	case v.MailResponse != nil && !v.MailResponse.Ok():
		return v.MailResponse
	case i >= len(v.RcptResponse):
		return nil
	case !v.RcptResponse[i].Ok():
		return &v.RcptResponse[i]
	}
	return v.DataResponse
}

// dsnWebhookEvents is the dsn_sent event of the notification dsnID about rec, for the
// NewTx that creates the notification.
func (s *Service) dsnWebhookEvents(rec *store.Tx, t *tx.Tx, rcpt dsn.Recipient, dsnID string) []store.NewWebhookEvent {
	if s.webhookOf(t.Sender) == nil {
		return nil
	}
	return s.appendEvent(nil, rec.RestID, webhook.Event{Type: webhook.DSNSent, Time: time.Now(), Transaction: rec.RestID,
		Sender: t.Sender.Name, Tag: t.Sender.Tag, Recipient: rcpt.Address, Attempt: rec.AttemptCount,
		Reply: webhook.NewReply(rcpt.Code, rcpt.Reply), DSN: &webhook.DSN{Transaction: dsnID, Action: rcpt.Action.String()}}, time.Time{})
}

// appendEvent gives ev an id and queues it. An event that cannot be rendered is logged and
// left out: it must not cost the outcome it reports.
func (s *Service) appendEvent(events []store.NewWebhookEvent, restID string, ev webhook.Event, notBefore time.Time) []store.NewWebhookEvent {
	ev.ID = webhook.NewID()
	payload, err := ev.Marshal()
	if err != nil {
		s.log.Error("rendering a webhook event", "tx", restID, "err", err)
		return events
	}
	return append(events, store.NewWebhookEvent{ID: ev.ID, RestID: restID, Sender: ev.Sender, Tag: ev.Tag, Payload: payload, NotBefore: notBefore})
}

// webhookOf is the webhook of a sender and tag, nil if none.
func (s *Service) webhookOf(sender *tx.Sender) *config.Webhook {
	if sender == nil {
		return nil
	}
	if snd := s.cfg.Sender(sender.Name); snd != nil {
		if st, ok := snd.ForTag(sender.Tag); ok {
			return st.Webhook
		}
	}
	return nil
}

// runWebhooks sends the queued webhook events until ctx or the service ends. It runs whether
// or not any sender has a webhook now, looking for events once a minute when none has: events
// of a sender that has no webhook any more are dropped, with the reason, rather than kept
// forever.
func (s *Service) runWebhooks(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	// A claim outlasts the longest POST.
	lease, poll := time.Minute, time.Minute
	grow := func(w *config.Webhook) {
		if w != nil {
			lease, poll = max(lease, w.Timeout+30*time.Second), 0
		}
	}
	for _, sender := range s.cfg.Senders {
		grow(sender.Webhook)
		for _, t := range sender.Tags {
			grow(t.Webhook)
		}
	}
	webhook.New(webhook.Options{
		Store:      s.store,
		Hook:       func(sender, tag string) *config.Webhook { return s.webhookOf(&tx.Sender{Name: sender, Tag: tag}) },
		Log:        s.log,
		Poll:       poll,
		Lease:      lease,
		PurgeEvery: s.cfg.Storage.GCInterval,
		Keep:       s.cfg.Storage.GCTTL,
	}).Run(ctx)
}
