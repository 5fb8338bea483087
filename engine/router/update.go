package router

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/koukan/koukan/engine/httpapi"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/tx"
)

// patch is PATCH /transactions/{tx}: new envelope fields, filter outputs or a body for an
// incremental transaction (the gateway's dialect), or, with no body and no Content-Type, a
// heartbeat that only moves the version on. If-Match is required.
func (s *Service) patch(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("tx")
	version, ok, err := httpapi.ETagHeader(r, "If-Match")
	if err != nil {
		return err
	}
	if !ok {
		return httpapi.Problem(http.StatusBadRequest, "if_match_required", "PATCH needs If-Match with the transaction's ETag")
	}
	body, err := s.readJSONBody(w, r, false)
	if err != nil {
		return err
	}
	var delta *tx.Tx
	if body != nil {
		if delta, err = tx.Parse(body, tx.RestUpdate); err != nil {
			return err
		}
	} else if n, _ := r.Body.Read(make([]byte, 1)); n > 0 {
		return httpapi.Problem(http.StatusUnsupportedMediaType, "unsupported_media_type", "a PATCH body must be application/json; an empty one is a heartbeat")
	}
	rec, err := s.owned(w, r, id)
	if rec == nil {
		return err
	}
	if rec.Version != version {
		return store.ErrConflict
	}
	u := store.Update{}
	if delta != nil {
		if err := checkWritable(rec); err != nil {
			return err
		}
		if u, err = s.merge(rec, delta); err != nil {
			return err
		}
		if err := s.mayReuse(r.Context(), u.AddBlobs); err != nil {
			return err
		}
	}
	if _, err := s.store.Update(r.Context(), id, version, u); err != nil {
		return err
	}
	if rec, err = s.store.Get(r.Context(), id); err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, rec)
}

// owned gets a transaction for a request that must be served by the replica holding its
// lease; when another one holds it, the client is redirected there and rec is nil.
func (s *Service) owned(w http.ResponseWriter, r *http.Request, id string) (*store.Tx, error) {
	rec, err := s.store.Get(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if rec.Lease.OwnerURI != "" {
		redirect(w, r, rec.Lease.OwnerURI)
		return nil, nil
	}
	return rec, nil
}

// checkWritable refuses new requests (envelope, body) for a transaction Koukan is done with.
// Heartbeats and cancels stay harmless.
func checkWritable(rec *store.Tx) error {
	if rec.Cancelled || rec.FinalAttemptReason != "" && rec.FinalAttemptReason != store.FinalOneshot {
		return httpapi.Problem(http.StatusConflict, "transaction_final", "the transaction is finished (%s); create a new one", rec.FinalAttemptReason)
	}
	return nil
}

// merge applies a client's delta to the stored transaction and says what to write.
func (s *Service) merge(rec *store.Tx, delta *tx.Tx) (store.Update, error) {
	cur, err := tx.Parse(rec.JSON, tx.DB)
	if err != nil {
		return store.Update{}, err
	}
	if _, endpoint := s.senderOf(cur); endpoint == nil || !endpoint.EndsInExploder() {
		return store.Update{}, httpapi.Problem(http.StatusBadRequest, "not_incremental",
			"this transaction's sender takes no incremental updates; create one transaction per recipient")
	}
	if delta.Body != nil && (rec.MessageBuilder != nil || len(rec.Blobs) > 0) {
		return store.Update{}, &tx.ConflictError{Field: "body", Reason: "the transaction already has a body"}
	}
	if err := cur.Merge(delta); err != nil {
		return store.Update{}, err
	}
	var u store.Update
	if u.AddBlobs, u.MessageBuilder, err = bodyBlobs(cur.Body); err != nil {
		return u, err
	}
	cur.Body = nil
	u.JSON, err = cur.MarshalFor(tx.DB)
	return u, err
}

// cancel is POST /transactions/{tx}/cancel. It is a no-op on a transaction that is already
// final.
func (s *Service) cancel(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("tx")
	if err := s.Cancel(r.Context(), id); err != nil {
		return err // another replica's is redirected there
	}
	rec, err := s.store.Get(r.Context(), id)
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, rec)
}

// updateDoc changes a transaction's document (and what else f says), re-reading it on
// version conflicts: clients and its output handler write to it meanwhile.
func (s *Service) updateDoc(ctx context.Context, id string, f func(*tx.Tx) (store.Update, error)) error {
	return s.updateRecord(ctx, id, func(_ *store.Tx, t *tx.Tx) (store.Update, error) { return f(t) })
}

// updateRecord is updateDoc for an update that also depends on the stored record.
func (s *Service) updateRecord(ctx context.Context, id string, f func(*store.Tx, *tx.Tx) (store.Update, error)) error {
	for range 10 {
		rec, err := s.store.Get(ctx, id)
		if err != nil {
			return err
		}
		t, err := tx.Parse(rec.JSON, tx.DB)
		if err != nil {
			return err
		}
		u, err := f(rec, t)
		if err != nil {
			return err
		}
		if _, err = s.store.Update(ctx, id, rec.Version, u); !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("transaction %s keeps changing", id)
}
