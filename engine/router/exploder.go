package router

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/koukan/koukan/engine/exploder"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/tx"
)

// explodeInto is the router as the exploder's Upstream.
type explodeInto struct{ s *Service }

var _ exploder.Upstream = explodeInto{}

// Create stores a recipient's transaction, leased here, with retry and notification as its
// sender's config says, and hands it to an output handler.
func (e explodeInto) Create(ctx context.Context, t *tx.Tx) (string, error) {
	s := e.s
	sender := s.cfg.Sender(t.Sender.Name)
	if sender == nil {
		return "", fmt.Errorf("upstream sender %q is not in the config", t.Sender.Name)
	}
	settings, ok := sender.ForTag(t.Sender.Tag)
	if !ok {
		return "", fmt.Errorf("upstream sender %q has no tag %q", t.Sender.Name, t.Sender.Tag)
	}
	endpoint := s.cfg.Endpoint(settings.OutputChain)
	if settings.Retry && endpoint.OutputHandler.RetryParams != nil {
		t.Retry = map[string]json.RawMessage{}
	}
	if settings.Notification && endpoint.OutputHandler.Notification != nil {
		t.Notification = map[string]json.RawMessage{}
	}
	doc, err := t.MarshalFor(tx.DB)
	if err != nil {
		return "", err
	}
	id := s.newRestID()
	n := store.NewTx{RestID: id, JSON: doc, Leased: true, StartAttempt: true, Retry: t.Retry != nil, Notification: t.Notification != nil}
	indexed(&n, t, endpoint)
	rec, err := s.store.Create(ctx, n)
	if err != nil {
		if s.storageFault(err) == store.ErrUnavailable {
			s.handOff(id, false) // it may have committed: see Service.create
		}
		return "", err
	}
	s.handOff(id, rec.AttemptCount > 0)
	return id, nil
}

// AddBody gives recipient transaction id the body of from by reference: its body blob, or
// its message-builder spec with each part blob.
func (e explodeInto) AddBody(ctx context.Context, id, from string) error {
	parent, err := e.s.store.Get(ctx, from)
	if err != nil {
		return err
	}
	u := store.Update{MessageBuilder: parent.MessageBuilder}
	if parent.MessageBuilder == nil {
		u.AddBlobs = []store.NewBlob{{ID: tx.TxBodyBlobID, ReuseTx: from, ReuseBlob: tx.TxBodyBlobID}}
	} else {
		for _, b := range parent.Blobs {
			u.AddBlobs = append(u.AddBlobs, store.NewBlob{ID: b.ID, ReuseTx: from, ReuseBlob: b.ID})
		}
	}
	return e.s.updateDoc(ctx, id, func(*tx.Tx) (store.Update, error) { return u, nil })
}

// StoreAndForward turns on retries and notifications, in the document as in the columns. A
// transaction whose one attempt has already ended gets the webhook events of a retry in
// place of the failure its attempt reported, if those are still held back (webhookEvents).
func (e explodeInto) StoreAndForward(ctx context.Context, id string) error {
	s := e.s
	return s.updateRecord(ctx, id, func(rec *store.Tx, t *tx.Tx) (store.Update, error) {
		if t.Retry == nil {
			t.Retry = map[string]json.RawMessage{}
		}
		if t.Notification == nil {
			t.Notification = map[string]json.RawMessage{}
		}
		doc, err := t.MarshalFor(tx.DB)
		u := store.Update{JSON: doc, Retry: true, Notification: true}
		if err == nil && rec.FinalAttemptReason == store.FinalOneshot && !rec.Lease.Here && rec.AttemptCount > 0 {
			u.SupersedeHeld = true
			u.Events, err = s.retryEvents(rec)
		}
		return u, err
	})
}

// Wait watches a recipient's transaction through the in-process notifier: it is leased
// here, so every write to it is this process's.
func (e explodeInto) Wait(ctx context.Context, id string, done func(*tx.Tx) bool) (*tx.Tx, error) {
	s := e.s
	for {
		changed, release := s.hub.subscribe(id)
		_, t, err := s.read(ctx, id)
		if err != nil || done(t) {
			release()
			return t, err
		}
		select {
		case <-changed:
			release()
		case <-ctx.Done():
			release()
			return t, ctx.Err()
		}
	}
}

func (e explodeInto) Cancel(ctx context.Context, id string) error {
	_, err := e.s.store.Cancel(ctx, id)
	return err
}
