package rest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
)

const opPut = "put blob"

// PutBlob uploads a blob: the raw message to the body's blob_status uri, or
// a message-builder part to its uri (relative URIs are taken relative to
// Location). length is the blob's size, or -1 to read r to EOF.
//
// With no ChunkSize, or a known length within it, the blob goes in one PUT,
// which the upstream finalizes at its end. Otherwise it goes in pieces of
// ChunkSize bytes with Content-Range "bytes a-b/*", the last one with its
// total "/N" (or, if r ended at a piece boundary, an empty PUT with
// X-Finalize-Blob-Length: N). After a 416, or a 200 whose Content-Range shows
// the upstream holds other than what was sent, the upload carries on from
// where the upstream's copy ends: bytes it already holds are skipped in r,
// bytes it lost are sent again if they are in the current piece.
func (t *Tx) PutBlob(ctx context.Context, uri string, r io.Reader, length int64) error {
	u, err := resolve(t.location, uri)
	if err != nil {
		return &Error{Op: opPut, Kind: KindLocal, Err: fmt.Errorf("blob uri %q: %w", uri, err)}
	}
	cs := int64(t.c.chunkSize)
	if cs == 0 || (length >= 0 && length <= cs) {
		return t.c.putWhole(ctx, u.String(), r, length)
	}
	up := &upload{c: t.c, uri: u.String(), src: r, length: length, buf: make([]byte, 0, cs)}
	return up.run(ctx)
}

// putWhole sends a blob in one PUT without Content-Range. A blob of known
// length within ChunkSize is read into memory first, so a redirect can be
// followed; a streamed one can be sent again only if r is an io.Seeker.
func (c *Client) putWhole(ctx context.Context, uri string, r io.Reader, length int64) error {
	var req *http.Request
	var err error
	src := &source{r: r, left: length, fail: &readFailure{}}
	if c.chunkSize > 0 || length == 0 {
		data, rerr := io.ReadAll(src)
		if rerr != nil {
			return &Error{Op: opPut, Kind: KindLocal, Err: rerr}
		}
		req, err = newRequest(ctx, opPut, http.MethodPut, uri, data)
	} else {
		req, err = streamRequest(ctx, uri, src)
	}
	if err != nil {
		return err
	}
	res, err := c.do(opPut, req)
	if ferr := src.fail.get(); ferr != nil {
		return &Error{Op: opPut, Kind: KindLocal, Err: ferr}
	}
	switch {
	case err != nil:
		return err
	case res.status == http.StatusOK:
		return nil
	}
	e := statusError(opPut, res)
	if res.status == http.StatusPermanentRedirect {
		e.Err = fmt.Errorf("%w: a streamed blob can be sent again only from an io.Seeker; set a ChunkSize", e.Err)
	}
	return e
}

// streamRequest is a PUT that streams src, replayable if src.r can seek.
func streamRequest(ctx context.Context, uri string, src *source) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, uri, src)
	if err != nil {
		return nil, &Error{Op: opPut, Kind: KindLocal, Err: err}
	}
	req.ContentLength = src.left // -1: chunked transfer-encoding
	if s, ok := src.r.(io.Seeker); ok {
		at, err := s.Seek(0, io.SeekCurrent)
		if err != nil {
			return req, nil // a reader that cannot tell where it is: no replay
		}
		left := src.left
		req.GetBody = func() (io.ReadCloser, error) {
			if _, err := s.Seek(at, io.SeekStart); err != nil {
				return nil, err
			}
			return io.NopCloser(&source{r: src.r, left: left, fail: src.fail}), nil
		}
	}
	return req, nil
}

// source reads exactly left bytes of r (all of r if left is -1) and keeps
// r's failure, which is ours to report, not the transport's.
type source struct {
	r    io.Reader
	left int64
	fail *readFailure
}

// readFailure is the first failure of the caller's reader. The transport
// reads a request body on a goroutine of its own, hence the lock.
type readFailure struct {
	mu  sync.Mutex
	err error
}

func (f *readFailure) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *readFailure) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (s *source) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	if s.left > 0 && int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.r.Read(p)
	if s.left > 0 {
		s.left -= int64(n)
		if err == io.EOF && s.left > 0 {
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil && err != io.EOF {
		s.fail.set(fmt.Errorf("reading the blob: %w", err))
	}
	return n, err
}
