package resttest

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/koukan/koukan/engine/tx"
)

const (
	maxJSON = 1 << 20
	// maxWait is the longest hanging GET, as on the router.
	maxWait = 30 * time.Second
)

// create is POST /senders/{sender}/transactions.
func (r *Receiver) create(w http.ResponseWriter, req *http.Request) *apiError {
	data, e := readJSON(w, req)
	if e != nil {
		return e
	}
	st, err := tx.Parse(data, tx.RestCreate)
	if err != nil {
		return &apiError{http.StatusBadRequest, "invalid_field", err.Error()}
	}
	sender := &tx.Sender{Name: req.PathValue("sender")}
	if st.Sender != nil {
		sender.Tag = st.Sender.Tag
	}
	st.Sender = sender
	t := &rtx{version: 1, state: st, body: blob{total: -1}, parts: map[string]*blob{}}
	b, e := inlineBody(st.Body)
	if e != nil {
		return e
	}
	if b != nil {
		t.body = *b
	}
	st.Body = nil

	r.mu.Lock()
	t.id = "tx" + strconv.Itoa(len(r.order)+1)
	r.txs[t.id] = t
	r.order = append(r.order, t)
	r.touch(t)
	r.mu.Unlock()
	r.advance(t) // replies given at once are in the 201, as a reference receiver does

	r.mu.Lock()
	t.published = true
	etag, body := r.view(t)
	r.mu.Unlock()
	w.Header().Set("Location", r.uri(t, ""))
	writeTx(w, http.StatusCreated, etag, body)
	return nil
}

// inlineBody takes a body sent in JSON. A receiver gets the message by
// PUT; only inline text is taken besides, for clients that send small
// messages that way. reuse_uri and message_builder specs are the router's.
func inlineBody(b tx.Body) (*blob, *apiError) {
	switch b := b.(type) {
	case nil:
		return nil, nil
	case *tx.InlineBody:
		return &blob{data: []byte(b.Text), total: int64(len(b.Text)), final: true}, nil
	}
	return nil, &apiError{http.StatusBadRequest, "invalid_field", "body: resttest takes only inline bodies in JSON"}
}

// get is GET /transactions/{id}; with If-None-Match, a hanging GET that
// answers when the version moves on, or 304 after Request-Timeout seconds
// (at most 30, the default).
func (r *Receiver) get(w http.ResponseWriter, req *http.Request) *apiError {
	inm, hanging, e := versionHeader(req, "If-None-Match")
	if e != nil {
		return e
	}
	wait := maxWait
	if v := req.Header.Get("Request-Timeout"); v != "" && hanging {
		secs, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || secs < 0 {
			return &apiError{http.StatusBadRequest, "invalid_header", "request-timeout must be a whole number of seconds"}
		}
		wait = min(wait, time.Duration(secs)*time.Second)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		r.mu.Lock()
		t, e := r.lookup(req)
		if e != nil {
			r.mu.Unlock()
			return e
		}
		if !hanging || t.version != inm {
			etag, body := r.view(t)
			r.mu.Unlock()
			writeTx(w, http.StatusOK, etag, body)
			return nil
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
			continue
		case <-timer.C:
		case <-r.closed:
		case <-req.Context().Done():
			return nil
		}
		w.Header().Set("ETag", strconv.Itoa(inm))
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
}

// patch is PATCH /transactions/{id}: the update form, or a heartbeat (no
// body, no Content-Type).
func (r *Receiver) patch(w http.ResponseWriter, req *http.Request) *apiError {
	ifMatch, ok, e := versionHeader(req, "If-Match")
	switch {
	case e != nil:
		return e
	case !ok:
		return &apiError{http.StatusBadRequest, "if_match_required", "PATCH needs If-Match"}
	}
	ct := req.Header.Get("Content-Type")
	data, e := readJSON(w, req)
	if e != nil {
		return e
	}
	var delta *tx.Tx
	var newBody *blob
	switch {
	case ct == "" && len(data) == 0: // a heartbeat
	case ct == "":
		return &apiError{http.StatusUnsupportedMediaType, "unsupported_media_type", "a PATCH with a body needs Content-Type: application/json"}
	default:
		var err error
		if delta, err = tx.Parse(data, tx.RestUpdate); err != nil {
			return &apiError{http.StatusBadRequest, "invalid_field", err.Error()}
		}
		if newBody, e = inlineBody(delta.Body); e != nil {
			return e
		}
		delta.Body = nil
	}

	r.mu.Lock()
	t, e := r.lookup(req)
	if e == nil {
		e = r.update(t, ifMatch, delta, newBody)
	}
	r.mu.Unlock()
	if e != nil {
		return e
	}
	r.advance(t)
	r.mu.Lock()
	etag, body := r.view(t)
	r.mu.Unlock()
	writeTx(w, http.StatusOK, etag, body)
	return nil
}

// update applies a PATCH to t, under r.mu; a nil delta is a heartbeat.
func (r *Receiver) update(t *rtx, ifMatch int, delta *tx.Tx, newBody *blob) *apiError {
	switch {
	case t.version != ifMatch:
		return &apiError{http.StatusPreconditionFailed, "version_conflict", "If-Match is not the current version"}
	case delta == nil:
		t.heartbeats++
	case newBody != nil && (t.body.final || len(t.body.data) > 0):
		return &apiError{http.StatusConflict, "conflict", "body: the transaction has one"}
	default:
		if err := t.state.Merge(delta); err != nil {
			return &apiError{http.StatusConflict, "conflict", err.Error()}
		}
		if newBody != nil {
			t.body = *newBody
		}
	}
	r.touch(t)
	return nil
}

// cancel is POST /transactions/{id}/cancel; it stops any pending reply.
func (r *Receiver) cancel(w http.ResponseWriter, req *http.Request) *apiError {
	r.mu.Lock()
	t, e := r.lookup(req)
	if e != nil {
		r.mu.Unlock()
		return e
	}
	t.cancels++
	if !t.state.Cancelled {
		t.state.Cancelled = true
		if t.timer != nil {
			t.timer.Stop()
		}
		r.touch(t)
	}
	etag, body := r.view(t)
	r.mu.Unlock()
	writeTx(w, http.StatusOK, etag, body)
	return nil
}

// versionHeader reads an ETag sent back (If-Match, If-None-Match),
// tolerating quotes and a weak prefix.
func versionHeader(req *http.Request, name string) (v int, present bool, e *apiError) {
	s := strings.TrimSpace(req.Header.Get(name))
	if s == "" {
		return 0, false, nil
	}
	v, err := strconv.Atoi(strings.Trim(strings.TrimPrefix(s, "W/"), `"`))
	if err != nil {
		return 0, false, &apiError{http.StatusBadRequest, "invalid_header", name + " must be an ETag this receiver sent"}
	}
	return v, true, nil
}

// readJSON reads a JSON request body; a missing Content-Type is taken as
// JSON, as the router does.
func readJSON(w http.ResponseWriter, req *http.Request) ([]byte, *apiError) {
	if ct := req.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, &apiError{http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be application/json"}
		}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxJSON))
	if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
		return nil, &apiError{http.StatusRequestEntityTooLarge, "too_large", "the body is too large"}
	}
	if err != nil {
		return nil, &apiError{http.StatusBadRequest, "incomplete_body", "the request body ended early"}
	}
	return data, nil
}
