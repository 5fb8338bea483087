package router

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/koukan/koukan/engine/httpapi"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/tx"
)

// putBody is PUT /transactions/{tx}/body: the RFC 5322 message.
func (s *Service) putBody(w http.ResponseWriter, r *http.Request) error {
	return s.put(w, r, tx.TxBodyBlobID)
}

// putBlob is PUT /transactions/{tx}/blob/{blob}: one message-builder part.
func (s *Service) putBlob(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("blob")
	if strings.HasPrefix(id, "__internal") {
		return httpapi.Problem(http.StatusNotFound, "unknown_blob", "unknown blob %q", id)
	}
	return s.put(w, r, id)
}

// put streams a request body into a blob. Without Content-Range the body is the whole blob,
// finalized at its end (chunked transfer-encoding is fine). With "Content-Range: bytes a-b/N"
// (or /*) it goes at offset a; bytes the blob already holds are skipped, a gap is 416 with
// the blob's range, and the blob is finalized when it reaches N. "X-Finalize-Blob-Length: N"
// with an empty body finalizes a blob that holds N bytes.
func (s *Service) put(w http.ResponseWriter, r *http.Request, blobID string) error {
	id := r.PathValue("tx")
	a, err := appendOf(r)
	if err != nil {
		return err
	}
	limit := int64(s.cfg.RestListener.MaxBodySize)
	if a.Offset > limit || a.Total > limit || a.Offset+r.ContentLength > limit {
		return httpapi.Problem(http.StatusRequestEntityTooLarge, "too_large", "blobs are limited to %d bytes", limit)
	}
	rec, err := s.owned(w, r, id)
	if rec == nil {
		return err
	}
	if err := checkWritable(rec); err != nil {
		return err
	}
	if !hasBlob(rec, blobID) {
		switch {
		case blobID != tx.TxBodyBlobID:
			return httpapi.Problem(http.StatusNotFound, "unknown_blob", "transaction has no blob %q; parts are declared with create_id", blobID)
		case rec.MessageBuilder != nil:
			return httpapi.Problem(http.StatusConflict, "conflict", "the body is a message_builder; PUT its parts to their blob URIs")
		case a.Offset > 0:
			return &store.RangeError{Current: store.BlobStatus{Total: -1}, Reason: "the body starts at offset 0"}
		}
		// The first PUT of an incremental transaction's body creates it.
		a.Create = true
	}
	body := &refreshingReader{r: http.MaxBytesReader(w, r.Body, limit-a.Offset), every: s.cfg.Storage.BlobTxRefreshInterval,
		last: time.Now(), touch: func() {
			if _, err := s.store.Touch(context.WithoutCancel(r.Context()), id); err != nil {
				s.log.Warn("refreshing a transaction during upload", "tx", id, "err", err)
			}
		}}
	st, err := s.store.AppendBlob(r.Context(), id, blobID, a, body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return err
	case body.err != nil && errors.Is(err, body.err):
		// The client's upload broke off; what arrived is kept and it can resume.
		s.log.InfoContext(r.Context(), "blob upload broke off", "tx", id, "blob", blobID, "err", body.err)
		return httpapi.Problem(http.StatusBadRequest, "incomplete_body",
			"the request body ended before it was complete; resume from the length PUT with Content-Range reports")
	case err != nil:
		return err
	}
	w.Header().Set("Content-Range", contentRange(st))
	httpapi.WriteBody(w, http.StatusOK, []byte("{}"))
	return nil
}

func hasBlob(rec *store.Tx, id string) bool {
	for _, b := range rec.Blobs {
		if b.ID == id {
			return true
		}
	}
	return false
}

// appendOf is how a blob PUT's upload headers append to the store.
func appendOf(r *http.Request) (store.Append, error) {
	u, err := httpapi.ParseUpload(r)
	if err != nil {
		return store.Append{Total: -1}, err
	}
	return store.Append{Offset: u.First, Total: u.Total, FinalizeAtEOF: u.Whole}, nil
}

// refreshingReader touches the transaction every so often while a long upload streams, so
// that its output handler sees the client is still there; it also remembers a read error,
// which is the client's, not the store's.
type refreshingReader struct {
	r     io.Reader
	every time.Duration
	last  time.Time
	touch func()
	err   error
}

func (t *refreshingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		t.err = err
	}
	if time.Since(t.last) >= t.every {
		t.last = time.Now()
		t.touch()
	}
	return n, err
}
