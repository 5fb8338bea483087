package outbound

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/koukan/koukan/engine/httpapi"
	"github.com/koukan/koukan/engine/tx"
)

// This file is PUT /transactions/{tx}/body (reference §2.7). The message is never stored: a
// PUT hands its request body to the worker, which writes it into the SMTP session while the
// PUT waits, so the router's upload runs at the pace of the peer. A PUT whose bytes can no
// longer go anywhere (the transaction failed or ended) is read and dropped, and answered 200:
// the outcome is in data_response, not in the upload's status.

// plan is what to do with a PUT's body, given what the transaction already has.
type plan struct {
	skip int64 // leading bytes it already has (a piece sent again)
	want int64 // bytes to pass on after them; -1: up to the end of the request body
	last bool  // the message ends with them
	// repeat: nothing new; the body is read and dropped.
	repeat bool
}

func rangeError(format string, args ...any) error {
	return httpapi.Problem(http.StatusRequestedRangeNotSatisfiable, "invalid_range", format, args...)
}

// planLocked checks an upload (and its Content-Length, -1 when not known) against the
// message so far, under t.mu, and marks the message as started: no recipients may follow.
func (t *txn) planLocked(u httpapi.Upload, length int64) (plan, error) {
	if t.state.MailFrom == nil {
		return plan{}, &httpapi.Error{Status: http.StatusConflict, Code: "conflict", Message: "the transaction has no mail_from yet", Field: "mail_from"}
	}
	final := t.finalizedLocked()
	var p plan
	switch {
	case u.Finalize:
		if u.Total != t.received || t.total >= 0 && t.total != u.Total {
			return p, rangeError("the message holds %d bytes, not %d", t.received, u.Total)
		}
		p = plan{want: 0, last: true, repeat: final}
	case u.Whole:
		if t.received > 0 || final {
			return p, httpapi.Problem(http.StatusConflict, "conflict",
				"%d bytes of the message have gone on already; resume with Content-Range", t.received)
		}
		p = plan{want: length, last: true}
	default:
		end := u.Last + 1
		switch {
		case u.Total >= 0 && t.total >= 0 && u.Total != t.total:
			return p, rangeError("the total differs from the one declared (%d)", t.total)
		case u.First > t.received:
			return p, rangeError("the piece starts after the end of the message so far (%d bytes)", t.received)
		case t.total >= 0 && end > t.total:
			return p, rangeError("the piece ends past the declared total (%d)", t.total)
		case u.Total >= 0 && t.received > u.Total:
			return p, rangeError("the message already holds more than the total")
		}
		if u.Total >= 0 {
			t.total = u.Total
		}
		if end <= t.received {
			return plan{skip: u.Last - u.First + 1, repeat: true}, nil
		}
		p = plan{skip: t.received - u.First, want: end - t.received, last: t.total >= 0 && end == t.total}
	}
	if t.state.Body == nil {
		t.state.Body = &tx.Blob{ID: tx.TxBodyBlobID, URI: t.bodyURI}
	}
	return p, nil
}

// accountLocked records what a PUT delivered, under t.mu: the bytes, and whether they
// completed the message.
func (t *txn) accountLocked(p plan, res pieceResult) {
	t.received += res.read
	if p.repeat || !p.last || res.readErr != nil {
		return
	}
	t.total = t.received
	t.state.Body = &tx.Blob{ID: tx.TxBodyBlobID, URI: t.bodyURI, Length: t.received, Finalized: true}
	t.fillLocked()
	t.bumpLocked()
}

// piece is one PUT's bytes on their way to the worker.
type piece struct {
	want int64
	last bool
	// grant carries the worker's sink, or nil when the message cannot be sent.
	grant chan dataSink
	// done carries what the PUT did with the sink back to the worker.
	done chan pieceResult
}

// pieceResult is what a PUT did with its bytes.
type pieceResult struct {
	read     int64 // bytes taken from the request body
	readErr  error // the request body broke off early
	writeErr error // the peer failed while taking them
}

// putBody is PUT /transactions/{tx}/body.
func (s *Server) putBody(w http.ResponseWriter, r *http.Request) error {
	u, err := httpapi.ParseUpload(r)
	if err != nil {
		return err
	}
	t, err := s.lookup(r)
	if err != nil {
		return err
	}
	select {
	case t.upload <- struct{}{}:
		defer func() { <-t.upload }()
	case <-r.Context().Done():
		return r.Context().Err()
	}
	t.touch()
	t.mu.Lock()
	p, err := t.planLocked(u, r.ContentLength)
	if err != nil {
		w.Header().Set("Content-Range", t.contentRangeLocked())
	}
	t.mu.Unlock()
	if err != nil {
		return err
	}

	var res pieceResult
	if p.skip > 0 { // bytes the message has already: they count once
		if _, err := io.CopyN(io.Discard, r.Body, p.skip); err != nil {
			res.readErr = err
		}
	}
	if res.readErr == nil && !p.repeat {
		res = s.feed(r.Context(), t, p, r.Body)
	}

	t.mu.Lock()
	t.accountLocked(p, res)
	cr := t.contentRangeLocked()
	t.mu.Unlock()
	w.Header().Set("Content-Range", cr)
	if res.readErr != nil {
		if r.Context().Err() != nil {
			return r.Context().Err()
		}
		return httpapi.Problem(http.StatusBadRequest, "incomplete_body",
			"the request body ended before it was complete; resume from the length Content-Range reports")
	}
	httpapi.WriteBody(w, http.StatusOK, []byte("{}"))
	return nil
}

// feed hands the body to the worker and writes it into the sink the worker grants, or
// drops it when there is none.
func (s *Server) feed(ctx context.Context, t *txn, p plan, body io.Reader) pieceResult {
	pc := &piece{want: p.want, last: p.last, grant: make(chan dataSink, 1), done: make(chan pieceResult, 1)}
	select {
	case t.pieces <- pc:
	case <-t.done:
		return drain(body, p.want)
	case <-ctx.Done():
		return pieceResult{readErr: ctx.Err()}
	}
	var sink dataSink
	select {
	case sink = <-pc.grant:
	case <-t.done:
	}
	var res pieceResult
	if sink != nil {
		res = copyInto(t, sink, body, p.want)
	}
	pc.done <- res
	if sink == nil || res.writeErr != nil && res.readErr == nil {
		left := int64(-1)
		if p.want >= 0 {
			left = p.want - res.read
		}
		more := drain(body, left)
		res.read += more.read
		res.readErr = more.readErr
	}
	return res
}

// copyBuf is the size of the copy from a request body into the SMTP session.
const copyBuf = 32 << 10

// copyInto writes want bytes of body (-1: all of it) into the sink.
func copyInto(t *txn, sink dataSink, body io.Reader, want int64) (res pieceResult) {
	buf := make([]byte, copyBuf)
	defer func() {
		// What the PUT is answered for has at least left for the peer.
		if res.writeErr == nil {
			if f, ok := sink.(interface{ flush() error }); ok {
				res.writeErr = f.flush()
			}
		}
	}()
	for want != 0 {
		n := len(buf)
		if want > 0 && want < int64(n) {
			n = int(want)
		}
		k, err := body.Read(buf[:n])
		if k > 0 {
			res.read += int64(k)
			if want > 0 {
				want -= int64(k)
			}
			if _, werr := sink.Write(buf[:k]); werr != nil {
				res.writeErr = werr
				return res
			}
			t.touch()
		}
		switch {
		case errors.Is(err, io.EOF):
			if want > 0 {
				res.readErr = io.ErrUnexpectedEOF
			}
			return res
		case err != nil:
			res.readErr = err
			return res
		}
	}
	return res
}

// drain reads and drops want bytes of body (-1: all of it).
func drain(body io.Reader, want int64) pieceResult {
	var res pieceResult
	r := body
	if want >= 0 {
		r = io.LimitReader(body, want)
	}
	n, err := io.Copy(io.Discard, r)
	res.read = n
	switch {
	case err != nil:
		res.readErr = err
	case want >= 0 && n < want:
		res.readErr = io.ErrUnexpectedEOF
	}
	return res
}
