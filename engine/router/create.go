package router

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/exploder"
	"github.com/koukan/koukan/engine/httpapi"
	"github.com/koukan/koukan/engine/httpauth"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/tx"
)

// create is POST /senders/{sender}/transactions.
func (s *Service) create(w http.ResponseWriter, r *http.Request) error {
	senderName := r.PathValue("sender")
	sender := s.cfg.Sender(senderName)
	if sender == nil {
		return httpapi.Problem(http.StatusNotFound, "unknown_sender", "unknown sender %q", senderName)
	}
	body, err := s.readJSONBody(w, r, true)
	if err != nil {
		return err
	}
	t, err := tx.Parse(body, tx.RestCreate)
	if err != nil {
		return err
	}
	var tag string
	if t.Sender != nil {
		tag = t.Sender.Tag
	}
	settings, ok := sender.ForTag(tag)
	if !ok {
		return httpapi.Problem(http.StatusNotFound, "unknown_tag", "sender %q has no tag %q", senderName, tag)
	}
	endpoint := s.cfg.Endpoint(settings.OutputChain)
	incremental := endpoint.EndsInExploder()
	if !incremental && (t.MailFrom == nil || len(t.RcptTo) != 1) {
		field := "rcpt_to"
		if t.MailFrom == nil {
			field = "mail_from"
		}
		return &httpapi.Error{Status: http.StatusBadRequest, Code: "invalid_field",
			Message: "sender " + strconv.Quote(senderName) + " takes one transaction per recipient: mail_from and exactly one rcpt_to", Field: field}
	}
	t.Sender = &tx.Sender{Name: senderName, Tag: tag}
	if !httpauth.Trusted(r.Context()) {
		// Where a message came from is the SMTP gateway's to say (reference §12.17): an
		// untrusted caller's claim would fool SPF, smtp_auth and the like.
		t.RemoteHost, t.LocalHost, t.SMTPMeta = nil, nil, nil
	}
	if settings.Retry && endpoint.OutputHandler.RetryParams != nil {
		t.Retry = map[string]json.RawMessage{}
	}
	if settings.Notification && endpoint.OutputHandler.Notification != nil {
		t.Notification = map[string]json.RawMessage{}
	}
	n := store.NewTx{RestID: s.newRestID(), Leased: true, StartAttempt: true, Retry: t.Retry != nil, Notification: t.Notification != nil}
	indexed(&n, t, endpoint)
	if t.MailFrom != nil && endpoint.StartsWithExploder() {
		// Its answer to MAIL goes with the create: the client does not wait for the attempt.
		if n.Responses, err = (&tx.Tx{MailResponse: &exploder.MailOK}).MarshalFor(tx.DBAttempt); err != nil {
			return err
		}
	}
	if n.Blobs, n.MessageBuilder, err = bodyBlobs(t.Body); err != nil {
		return err
	}
	if err := s.mayReuse(r.Context(), n.Blobs); err != nil {
		return err
	}
	if t.Body == nil && !incremental {
		n.Blobs = []store.NewBlob{{ID: tx.TxBodyBlobID}}
	}
	t.Body = nil // the body lives in blob rows
	if n.JSON, err = t.MarshalFor(tx.DB); err != nil {
		return err
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		sum := sha256.Sum256(body)
		// Keys are per sender; the length prefix keeps "a" + "b:c" apart from "a:b" + "c".
		n.IdempotencyKey = strconv.Itoa(len(senderName)) + ":" + senderName + ":" + key
		n.RequestHash = hex.EncodeToString(sum[:])
	}
	rec, err := s.store.Create(r.Context(), n)
	if err == nil {
		s.handOff(rec.RestID, rec.AttemptCount > 0)
	} else if s.storageFault(err) == store.ErrUnavailable {
		// It may have committed with the answer lost: handed off, it is worked on if it
		// exists (the hand-off finds nothing otherwise) instead of staying leased here.
		s.handOff(n.RestID, false)
	}
	var ie *store.IdempotencyError
	if errors.As(err, &ie) {
		if !ie.SameRequest {
			return httpapi.Problem(http.StatusUnprocessableEntity, "idempotency_key_reused",
				"Idempotency-Key was used for a different request (transaction %s)", ie.RestID)
		}
		rec, err = s.store.Get(r.Context(), ie.RestID)
	}
	if err != nil {
		return err
	}
	base := s.cfg.RestListener.SessionURI
	if rec.Lease.OwnerURI != "" { // a retried create answered by another replica
		base = rec.Lease.OwnerURI
	}
	w.Header().Set("Location", base+"/transactions/"+rec.RestID)
	return s.respond(w, http.StatusCreated, rec)
}

// bodyBlobs turns a request body into the blobs to store: inline text, a reference to a
// finalized blob of another transaction, or a message-builder spec whose parts are each one
// of those or a blob to upload later (the spec is stored normalized).
func bodyBlobs(b tx.Body) ([]store.NewBlob, []byte, error) {
	switch b := b.(type) {
	case nil:
		return nil, nil, nil
	case *tx.InlineBody:
		return []store.NewBlob{{ID: tx.TxBodyBlobID, Content: []byte(b.Text), Inline: true}}, nil, nil
	case *tx.ReuseBody:
		nb, err := reuseBlob(tx.TxBodyBlobID, b.URI, "body.reuse_uri")
		return []store.NewBlob{nb}, nil, err
	case *tx.MessageBuilder:
		if len(b.Spec.TextBody) == 0 {
			return nil, nil, &httpapi.Error{Status: http.StatusBadRequest, Code: "invalid_field",
				Message: "a message needs a text_body part: its first part is the message body", Field: "body.message_builder.text_body"}
		}
		spec, parts, err := b.Spec.Normalize()
		if err != nil {
			return nil, nil, err
		}
		blobs := make([]store.NewBlob, 0, len(parts))
		for _, p := range parts {
			nb := store.NewBlob{ID: p.ID}
			switch p.Content.Kind {
			case tx.ContentInline:
				nb.Content, nb.Inline = []byte(p.Content.Value), true
			case tx.ContentReuse:
				if nb, err = reuseBlob(p.ID, p.Content.Value, "body.message_builder"); err != nil {
					return nil, nil, err
				}
			}
			blobs = append(blobs, nb)
		}
		js, err := json.Marshal(spec)
		return blobs, js, err
	}
	return nil, nil, &httpapi.Error{Status: http.StatusBadRequest, Code: "invalid_field", Message: "this body form is not accepted here", Field: "body"}
}

func reuseBlob(id, uri, field string) (store.NewBlob, error) {
	txID, blobID, err := tx.ParseReuseURI(uri)
	if err != nil {
		return store.NewBlob{}, &httpapi.Error{Status: http.StatusBadRequest, Code: "invalid_reuse", Message: err.Error(), Field: field}
	}
	return store.NewBlob{ID: id, ReuseTx: txID, ReuseBlob: blobID}, nil
}

// mayReuse refuses, as if they did not exist, blobs of transactions the request's caller
// may not use: a reuse_uri must not read another sender's messages.
func (s *Service) mayReuse(ctx context.Context, blobs []store.NewBlob) error {
	for _, b := range blobs {
		if b.ReuseTx == "" || httpauth.CallerOf(ctx) == nil {
			continue
		}
		sender, found, err := s.TxSender(ctx, b.ReuseTx)
		if err != nil {
			return err
		}
		if !found || !httpauth.MayUse(ctx, sender) {
			return &store.ReuseError{TxID: b.ReuseTx, BlobID: b.ReuseBlob, Reason: "no such blob"}
		}
	}
	return nil
}

// readJSONBody reads a JSON request body within the size limit. A body that declares another
// media type gets 415; a missing Content-Type is taken as JSON when required is set (the
// reference parsed POST bodies whatever their type).
func (s *Service) readJSONBody(w http.ResponseWriter, r *http.Request, required bool) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, httpapi.Problem(http.StatusUnsupportedMediaType, "unsupported_media_type",
				"the request body must be application/json, not %q", ct)
		}
	} else if !required {
		return nil, nil
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.RestListener.MaxBodySize)))
}

// respond writes a transaction's REST read form with its version as ETag.
func (s *Service) respond(w http.ResponseWriter, status int, rec *store.Tx) error {
	body, err := s.readJSON(rec)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", strconv.FormatInt(rec.Version, 10))
	httpapi.WriteBody(w, status, body)
	return nil
}

// senderOf finds the config a stored transaction was created under; it may have gone from
// the config since, which the caller reports.
func (s *Service) senderOf(t *tx.Tx) (*config.SenderSettings, *config.Endpoint) {
	if t.Sender == nil {
		return nil, nil
	}
	sender := s.cfg.Sender(t.Sender.Name)
	if sender == nil {
		return nil, nil
	}
	settings, ok := sender.ForTag(t.Sender.Tag)
	if !ok {
		return nil, nil
	}
	return settings, s.cfg.Endpoint(settings.OutputChain)
}
