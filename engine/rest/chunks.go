package rest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
)

// maxStalls is how many answers in a row may leave the upstream's copy no
// longer than before until an upload is given up: one resend after a lost
// piece is normal, an upstream that keeps losing the same bytes is broken.
const maxStalls = 3

// upload is a blob PUT in pieces. It holds the current piece, bytes
// [start, start+len(buf)) of the blob, and nothing else of it.
type upload struct {
	c      *Client
	uri    string
	src    io.Reader
	length int64 // -1: unknown
	buf    []byte
	start  int64
	eof    bool // src is drained: start+len(buf) is the blob's length
}

// run sends the blob piece by piece, each time from where the upstream says
// its copy ends.
func (u *upload) run(ctx context.Context) error {
	var off, best int64 // where the upstream's copy ends; the furthest it has reached
	stalls := 0
	for {
		end := u.start + int64(len(u.buf))
		switch {
		case off < u.start:
			return protocolError(opPut, fmt.Errorf("the upstream holds %d bytes, fewer than the %d already sent and dropped", off, u.start))
		case off > end:
			if err := u.skip(off - end); err != nil {
				return err
			}
			continue
		case off == end && !u.eof:
			if err := u.next(); err != nil {
				return err
			}
			continue
		}
		final, got, err := u.send(ctx, off, end)
		if err != nil {
			return err
		}
		if final {
			return nil
		}
		if got > best {
			best, stalls = got, 0
		} else if stalls++; stalls > maxStalls {
			return protocolError(opPut, fmt.Errorf("the upload makes no progress: the upstream keeps holding %d bytes", got))
		}
		off = got
	}
}

// next reads the piece after the current one.
func (u *upload) next() error {
	u.start += int64(len(u.buf))
	want := int64(cap(u.buf))
	if u.length >= 0 {
		want = min(want, u.length-u.start)
	}
	n, err := fill(u.src, u.buf[:want])
	u.buf = u.buf[:n]
	switch {
	case u.length >= 0 && err != nil:
		return &Error{Op: opPut, Kind: KindLocal, Err: fmt.Errorf("reading the blob at %d of %d bytes: %w", u.start+int64(n), u.length, err)}
	case err == io.EOF:
		u.eof = true
	case err != nil:
		return &Error{Op: opPut, Kind: KindLocal, Err: fmt.Errorf("reading the blob: %w", err)}
	}
	if u.length >= 0 && u.start+int64(n) == u.length {
		u.eof = true
	}
	return nil
}

// fill reads into buf until it is full or src ends. Unlike io.ReadFull it returns src's
// own error: only io.EOF is the end of the blob, so a source that fails with
// io.ErrUnexpectedEOF (an SMTP client gone in the middle of DATA) is an error, not a short
// blob to finalize.
func fill(src io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := src.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// skip drops n bytes of src that the upstream already holds.
func (u *upload) skip(n int64) error {
	u.start += int64(len(u.buf))
	u.buf = u.buf[:0]
	if u.eof || (u.length >= 0 && u.start+n > u.length) {
		return protocolError(opPut, fmt.Errorf("the upstream holds %d bytes, more than the blob has", u.start+n))
	}
	got, err := io.CopyN(io.Discard, u.src, n)
	switch {
	case err == io.EOF:
		return protocolError(opPut, fmt.Errorf("the upstream holds %d bytes, more than the blob's %d", u.start+n, u.start+got))
	case err != nil:
		return &Error{Op: opPut, Kind: KindLocal, Err: fmt.Errorf("reading the blob: %w", err)}
	}
	u.start += n
	return nil
}

// send PUTs the blob's bytes from off to the end of the current piece (or,
// if there are none and the blob has ended, finalizes it). final reports a
// finalized blob; otherwise got is where the upstream's copy now ends.
func (u *upload) send(ctx context.Context, off, end int64) (final bool, got int64, err error) {
	req, err := newRequest(ctx, opPut, http.MethodPut, u.uri, u.buf[off-u.start:])
	if err != nil {
		return false, 0, err
	}
	total := "*"
	if u.eof {
		total = strconv.FormatInt(end, 10)
	}
	if off == end {
		req.Header.Set("X-Finalize-Blob-Length", total)
	} else {
		req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%s", off, end-1, total))
	}
	res, err := u.c.do(opPut, req)
	if err != nil {
		return false, 0, err
	}
	u.uri = res.url.String() // after a redirect, go straight to the new place
	if res.status != http.StatusOK && res.status != http.StatusRequestedRangeNotSatisfiable {
		return false, 0, statusError(opPut, res)
	}
	held, known, err := heldRange(res.header.Get("Content-Range"))
	switch {
	case err != nil:
		return false, 0, protocolError(opPut, err)
	case res.status == http.StatusOK && !known:
		// An upstream that does not say what it holds is taken at its word.
		return u.eof, end, nil
	case res.status == http.StatusOK:
		return u.eof && held == end, held, nil
	case !known:
		return false, 0, protocolError(opPut, errors.New("416 without Content-Range"))
	}
	return false, held, nil
}

var heldRE = regexp.MustCompile(`^bytes (?:0-(\d+)|\*)/(?:\d+|\*)$`)

// heldRange reads the Content-Range of an upload's answer, which says how
// many bytes the upstream holds: "bytes 0-<n-1>/<total>" or, while empty,
// "bytes */<total>". known is false when there is none.
func heldRange(h string) (held int64, known bool, err error) {
	if h == "" {
		return 0, false, nil
	}
	m := heldRE.FindStringSubmatch(h)
	if m == nil {
		return 0, false, fmt.Errorf("malformed Content-Range %q", h)
	}
	if m[1] == "" {
		return 0, true, nil
	}
	last, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false, errors.New("Content-Range out of range")
	}
	return last + 1, true, nil
}
