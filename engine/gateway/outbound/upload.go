package outbound

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"

	"github.com/koukan/koukan/engine/tx"
)

// This file is PUT /transactions/{tx}/body (reference §2.7). The message is never stored: a
// PUT hands its request body to the worker, which writes it into the SMTP session while the
// PUT waits, so the router's upload runs at the pace of the peer. A PUT whose bytes can no
// longer go anywhere (the transaction failed or ended) is read and dropped, and answered 200:
// the outcome is in data_response, not in the upload's status.

// upload is what a PUT's headers ask for.
type upload struct {
	whole       bool  // no Content-Range: the body is the whole message
	finalize    bool  // X-Finalize-Blob-Length: an empty body that ends the message at first
	first, last int64 // the range of a piece
	total       int64 // the declared length; -1: not declared
	length      int64 // Content-Length; -1: not known
}

var rangeRE = regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+|\*)$`)

// uploadOf reads the upload headers of a PUT.
func uploadOf(r *http.Request) (upload, error) {
	u := upload{total: -1, length: r.ContentLength}
	cr, fin := r.Header.Get("Content-Range"), r.Header.Get("X-Finalize-Blob-Length")
	switch {
	case cr != "" && fin != "":
		return u, problem(http.StatusBadRequest, "invalid_header", "send either Content-Range or X-Finalize-Blob-Length, not both")
	case fin != "":
		n, err := strconv.ParseInt(fin, 10, 64)
		if err != nil || n < 0 {
			return u, problem(http.StatusBadRequest, "invalid_header", "x-finalize-blob-length must be a byte count, not %q", fin)
		}
		if r.ContentLength != 0 {
			return u, problem(http.StatusBadRequest, "invalid_header", "x-finalize-blob-length goes with an empty body")
		}
		u.finalize, u.first, u.total = true, n, n
	case cr != "":
		m := rangeRE.FindStringSubmatch(cr)
		if m == nil {
			return u, problem(http.StatusBadRequest, "invalid_header", "content-range must be \"bytes first-last/total\" or \"bytes first-last/*\", not %q", cr)
		}
		first, err1 := strconv.ParseInt(m[1], 10, 64)
		last, err2 := strconv.ParseInt(m[2], 10, 64)
		if err1 != nil || err2 != nil || last < first {
			return u, problem(http.StatusBadRequest, "invalid_header", "content-range %q is not a range of bytes", cr)
		}
		if m[3] != "*" {
			total, err := strconv.ParseInt(m[3], 10, 64)
			if err != nil || last >= total {
				return u, problem(http.StatusBadRequest, "invalid_header", "content-range %q ends past its total", cr)
			}
			u.total = total
		}
		if r.ContentLength != last-first+1 {
			return u, problem(http.StatusBadRequest, "invalid_header", "content-range needs a Content-Length of its size (%d bytes)", last-first+1)
		}
		u.first, u.last = first, last
	default:
		u.whole = true
	}
	return u, nil
}

// plan is what to do with a PUT's body, given what the transaction already has.
type plan struct {
	skip int64 // leading bytes it already has (a piece sent again)
	want int64 // bytes to pass on after them; -1: up to the end of the request body
	last bool  // the message ends with them
	// repeat: nothing new; the body is read and dropped.
	repeat bool
}

func rangeError(format string, args ...any) error {
	return problem(http.StatusRequestedRangeNotSatisfiable, "invalid_range", format, args...)
}

// planLocked checks an upload against the message so far, under t.mu, and marks the
// message as started: no recipients may follow.
func (t *txn) planLocked(u upload) (plan, error) {
	if t.state.MailFrom == nil {
		return plan{}, &apiError{http.StatusConflict, "conflict", "the transaction has no mail_from yet", "mail_from"}
	}
	final := t.finalizedLocked()
	var p plan
	switch {
	case u.finalize:
		if u.total != t.received || t.total >= 0 && t.total != u.total {
			return p, rangeError("the message holds %d bytes, not %d", t.received, u.total)
		}
		p = plan{want: 0, last: true, repeat: final}
	case u.whole:
		if t.received > 0 || final {
			return p, problem(http.StatusConflict, "conflict",
				"%d bytes of the message have gone on already; resume with Content-Range", t.received)
		}
		p = plan{want: u.length, last: true}
	default:
		end := u.last + 1
		switch {
		case u.total >= 0 && t.total >= 0 && u.total != t.total:
			return p, rangeError("the total differs from the one declared (%d)", t.total)
		case u.first > t.received:
			return p, rangeError("the piece starts after the end of the message so far (%d bytes)", t.received)
		case t.total >= 0 && end > t.total:
			return p, rangeError("the piece ends past the declared total (%d)", t.total)
		case u.total >= 0 && t.received > u.total:
			return p, rangeError("the message already holds more than the total")
		}
		if u.total >= 0 {
			t.total = u.total
		}
		if end <= t.received {
			return plan{skip: u.last - u.first + 1, repeat: true}, nil
		}
		p = plan{skip: t.received - u.first, want: end - t.received, last: t.total >= 0 && end == t.total}
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
	u, err := uploadOf(r)
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
	p, err := t.planLocked(u)
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
		return problem(http.StatusBadRequest, "incomplete_body",
			"the request body ended before it was complete; resume from the length Content-Range reports")
	}
	writeJSON(w, http.StatusOK, []byte("{}"))
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
