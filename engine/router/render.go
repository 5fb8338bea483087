package router

import (
	"context"
	"fmt"

	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/tx"
)

// load turns a stored transaction into the model: the document, the latest attempt's
// responses, the lifecycle columns, and a body rebuilt from the blob rows with the URIs
// clients use.
func (s *Service) load(rec *store.Tx) (*tx.Tx, error) {
	t, err := tx.Parse(rec.JSON, tx.DB)
	if err != nil {
		return nil, fmt.Errorf("stored transaction %s: %w", rec.RestID, err)
	}
	if rec.Responses != nil {
		r, err := tx.Parse(rec.Responses, tx.DBAttempt)
		if err != nil {
			return nil, fmt.Errorf("stored attempt %d of %s: %w", rec.AttemptCount, rec.RestID, err)
		}
		t.MailResponse, t.RcptResponse, t.DataResponse = r.MailResponse, r.RcptResponse, r.DataResponse
		t.FilterOutput = r.FilterOutput
	}
	t.AttemptCount = rec.AttemptCount
	t.FinalAttemptReason = rec.FinalAttemptReason
	t.Cancelled = rec.Cancelled
	t.RestID = rec.RestID
	t.Body, err = s.body(rec)
	return t, err
}

// read gets a transaction and its model.
func (s *Service) read(ctx context.Context, restID string) (*store.Tx, *tx.Tx, error) {
	rec, err := s.store.Get(ctx, restID)
	if err != nil {
		return nil, nil, err
	}
	t, err := s.load(rec)
	return rec, t, err
}

// body describes the transaction's body as clients see it. A transaction without one yet (an
// incremental transaction before DATA) still shows where its body will be PUT.
func (s *Service) body(rec *store.Tx) (tx.Body, error) {
	if rec.MessageBuilder != nil {
		spec, err := tx.ParseMessageSpec(rec.MessageBuilder)
		if err != nil {
			return nil, fmt.Errorf("stored message_builder of %s: %w", rec.RestID, err)
		}
		mb := &tx.MessageBuilder{Spec: spec}
		for _, b := range rec.Blobs {
			if b.ID != tx.TxBodyBlobID {
				mb.Blobs = append(mb.Blobs, s.blob(rec.RestID, b))
			}
		}
		return mb, nil
	}
	for _, b := range rec.Blobs {
		if b.ID == tx.TxBodyBlobID {
			bl := s.blob(rec.RestID, b)
			return &bl, nil
		}
	}
	return &tx.Blob{ID: tx.TxBodyBlobID, URI: s.cfg.RestListener.SessionURI + tx.BlobPath(rec.RestID, tx.TxBodyBlobID)}, nil
}

// blob gives a blob its URI: the cluster alias once finalized (any replica can serve a
// reuse), this replica while it is still being written.
func (s *Service) blob(restID string, b store.Blob) tx.Blob {
	base := s.cfg.RestListener.SessionURI
	if b.Finalized() {
		base = s.cfg.RestListener.ServiceURI
	}
	return tx.Blob{ID: b.ID, URI: base + tx.BlobPath(restID, b.ID), Length: b.Length, Finalized: b.Finalized()}
}

// readJSON is the REST read form of a stored transaction.
func (s *Service) readJSON(rec *store.Tx) ([]byte, error) {
	t, err := s.load(rec)
	if err != nil {
		return nil, err
	}
	return t.MarshalFor(tx.RestRead)
}
