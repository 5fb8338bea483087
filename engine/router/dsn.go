package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/dsn"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/tx"
)

// maybeNotify sends the delivery status notification a finished attempt owes (reference
// §3.8): a failure (the transaction ended), a delay (it is still being retried) or, where the
// recipient's NOTIFY asks for it, a delivery, when the
// transaction asked for notifications, its chain says as whom to send them, and neither the
// null reverse path nor the recipient's NOTIFY rules them out. The response reported is
// MAIL's if it failed, else the recipient's if it failed, else the data's.
func (s *Service) maybeNotify(ctx context.Context, rec *store.Tx, t *tx.Tx, oh config.OutputHandler, action dsn.Action) error {
	if !rec.Notification || oh.Notification == nil || t.MailFrom == nil || len(t.RcptTo) != 1 {
		return nil
	}
	var r *tx.Response
	switch {
	case t.MailResponse != nil && !t.MailResponse.Ok():
		r = t.MailResponse
	case len(t.RcptResponse) == 1 && !t.RcptResponse[0].Ok():
		r = &t.RcptResponse[0]
	default:
		r = t.DataResponse
	}
	if r == nil || r.Ok() != (action == dsn.ActionDelivered) {
		return nil
	}
	notify, _ := dsn.ParseNotify(param(t.RcptTo[0], "NOTIFY"))
	if !dsn.ShouldNotify(t.MailFrom.Address, notify, action) {
		return nil
	}
	rcpt := dsn.Recipient{Address: t.RcptTo[0].Address, Action: action, Code: r.Code, Reply: r.Message, LastAttempt: time.Now()}
	if action == dsn.ActionDelayed && oh.RetryParams != nil && oh.RetryParams.Deadline != nil {
		rcpt.WillRetryUntil = rec.Creation.Add(*oh.RetryParams.Deadline)
	}
	return s.sendDSN(ctx, rec, t, rcpt, oh.Notification)
}

// delayNotified is the key of a transaction's notification dict that records that its delay
// DSN went out, so that it goes out once.
const delayNotified = "delay_notified"

// maybeNotifyDelay sends the delay DSN of a transaction that is still being retried after
// notification.delay, once.
func (s *Service) maybeNotifyDelay(ctx context.Context, rec *store.Tx, t *tx.Tx, oh config.OutputHandler) error {
	if oh.Notification == nil || oh.Notification.Delay == 0 || time.Since(rec.Creation) < oh.Notification.Delay {
		return nil
	}
	if _, sent := t.Notification[delayNotified]; sent {
		return nil
	}
	if err := s.maybeNotify(ctx, rec, t, oh, dsn.ActionDelayed); err != nil {
		return err
	}
	return s.updateDoc(ctx, rec.RestID, func(doc *tx.Tx) (store.Update, error) {
		if doc.Notification == nil {
			return store.Update{}, nil
		}
		doc.Notification[delayNotified] = json.RawMessage(fmt.Sprint(time.Now().Unix()))
		js, err := doc.MarshalFor(tx.DB)
		return store.Update{JSON: js}, err
	})
}

// sendDSN creates the DSN transaction as the configured notification sender, with retries
// from that sender's chain (the reference sent bounces once, §12.2), and streams the
// report into its body.
func (s *Service) sendDSN(ctx context.Context, rec *store.Tx, t *tx.Tx, rcpt dsn.Recipient, as *config.Notification) error {
	sender := s.cfg.Sender(as.Sender)
	if sender == nil {
		return fmt.Errorf("notification sender %q is not in the config", as.Sender)
	}
	settings, ok := sender.ForTag(as.Tag)
	if !ok {
		return fmt.Errorf("notification sender %q has no tag %q", as.Sender, as.Tag)
	}
	endpoint := s.cfg.Endpoint(settings.OutputChain)
	d := &tx.Tx{Sender: &tx.Sender{Name: as.Sender, Tag: as.Tag}, MailFrom: &tx.Mailbox{},
		RcptTo: []tx.Mailbox{{Address: t.MailFrom.Address}}}
	if endpoint.OutputHandler.RetryParams != nil {
		d.Retry = map[string]json.RawMessage{}
	}
	doc, err := d.MarshalFor(tx.DB)
	if err != nil {
		return err
	}
	id := s.newRestID()
	nt := store.NewTx{RestID: id, JSON: doc, Leased: true, Retry: d.Retry != nil, Blobs: []store.NewBlob{{ID: tx.TxBodyBlobID}}}
	indexed(&nt, d, endpoint)
	nt.Events = s.dsnWebhookEvents(rec, t, rcpt, id)
	if _, err := s.store.Create(ctx, nt); err != nil {
		return err
	}
	n, err := s.notification(ctx, rec, t, rcpt)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		err := dsn.Build(pw, n)
		if c, ok := n.Original.(io.Closer); ok {
			c.Close()
		}
		pw.CloseWithError(err)
	}()
	_, err = s.store.AppendBlob(ctx, id, tx.TxBodyBlobID, store.Append{Total: -1, FinalizeAtEOF: true}, pr)
	pr.CloseWithError(err)
	if err != nil {
		// A half-written report must not linger leased: end it, and say why in the log.
		if _, cerr := s.store.Cancel(ctx, id); cerr == nil {
			_, cerr = s.store.FinishAttempt(ctx, id, store.Finish{})
			err = errors.Join(err, cerr)
		}
		return fmt.Errorf("writing DSN %s: %w", id, err)
	}
	s.log.Info("delivery status notification", "tx", rec.RestID, "dsn", id, "action", rcpt.Action.String(),
		"to", t.MailFrom.Address, "code", rcpt.Code)
	s.handOff(id, false)
	return nil
}

// notification describes what happened to t's one recipient for dsn.Build.
func (s *Service) notification(ctx context.Context, rec *store.Tx, t *tx.Tx, rcpt dsn.Recipient) (dsn.Notification, error) {
	from, err := mail.ParseAddress(s.cfg.Global.MailerDaemonMailbox)
	if err != nil {
		return dsn.Notification{}, fmt.Errorf("global.mailer_daemon_mailbox: %w", err)
	}
	from.Name = "Mail Delivery Subsystem"
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	if orcpt := param(t.RcptTo[0], "ORCPT"); orcpt != "" {
		rcpt.ORCPT, _ = dsn.ParseORCPT(orcpt)
	}
	envid, _ := dsn.DecodeXtext(param(*t.MailFrom, "ENVID"))
	ret, _ := dsn.ParseRet(param(*t.MailFrom, "RET"))
	n := dsn.Notification{ReportingMTA: domain, From: *from, To: t.MailFrom.Address, EnvelopeID: envid,
		Arrival: rec.Creation, Recipients: []dsn.Recipient{rcpt}, Ret: ret}
	for _, b := range rec.Blobs {
		if b.ID == tx.TxBodyBlobID {
			if n.Original, _, err = s.store.OpenBlob(ctx, rec.RestID, tx.TxBodyBlobID); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// param is the value of an ESMTP parameter of m, "" when absent.
func param(m tx.Mailbox, keyword string) string {
	for _, p := range m.Esmtp {
		if strings.EqualFold(p.Keyword, keyword) {
			return p.Value
		}
	}
	return ""
}
