package router

import (
	"context"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/addr"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/tx"
)

// What the queue admin API (engine/admin) does to transactions goes through the service, so
// that it wakes those waiting on them (hanging GETs, output handlers) like any other write.

// Cancel cancels a transaction as POST /transactions/{tx}/cancel does: a no-op on a final
// one, store.ErrNotFound for an unknown one, and a *store.LeasedError when another replica
// works on it, whose output handler must hear of it: the caller is sent there.
func (s *Service) Cancel(ctx context.Context, id string) error {
	rec, err := s.store.Get(ctx, id)
	if err != nil {
		return err
	}
	if rec.Lease.OwnerURI != "" {
		return &store.LeasedError{OwnerURI: rec.Lease.OwnerURI}
	}
	_, err = s.store.Cancel(ctx, id)
	return err
}

// RetryNow makes a transaction that waits for a later attempt due now (store.RetryNow).
func (s *Service) RetryNow(ctx context.Context, id string) error {
	_, err := s.store.RetryNow(ctx, id)
	return err
}

func (n notifyingStore) RetryNow(ctx context.Context, restID string) (int64, error) {
	v, err := n.Store.RetryNow(ctx, restID)
	n.hub.notify(restID)
	return v, err
}

// indexed fills in what the admin list and domain suspensions find a new transaction by:
// its sender's name and, unless its endpoint is incremental (recipients come later, and
// the exploder's children carry their own), its one recipient's domain.
func indexed(n *store.NewTx, t *tx.Tx, endpoint *config.Endpoint) {
	if t.Sender != nil {
		n.Sender = t.Sender.Name
	}
	if len(t.RcptTo) == 1 && !endpoint.EndsInExploder() {
		n.RcptDomain = addr.DomainOf(t.RcptTo[0].Address)
	}
}
