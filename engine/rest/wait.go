package rest

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/koukan/koukan/engine/tx"
)

// An upstream may ignore If-None-Match and answer every GET at once. When an
// answer without a change comes back sooner than the current delay, Wait
// sleeps out the rest of the delay and doubles it, up to nospinMax; a change
// or an answer that really hung resets it.
const (
	nospinMin = time.Second
	nospinMax = 4 * time.Second
)

// maxRequestTimeout is the longest hanging GET the API grants.
const maxRequestTimeout = 30

// Wait reads the transaction with hanging GETs (If-None-Match,
// Request-Timeout) until done holds for its state, and returns a copy of that
// state. done gets the Tx's own state and must not modify it. It returns at
// once if done already holds. When ctx ends first the error's Kind is
// KindTimeout (or KindCanceled); the latest state is still in State.
func (t *Tx) Wait(ctx context.Context, done func(*tx.Tx) bool) (*tx.Tx, error) {
	nospin := nospinMin
	for !done(t.state) {
		start := time.Now()
		changed, err := t.poll(ctx)
		switch {
		case err != nil:
			return nil, err
		case changed:
			nospin = nospinMin
		case time.Since(start) >= nospin:
			nospin = nospinMin
		default:
			if err := sleep(ctx, nospin-time.Since(start)); err != nil {
				return nil, failure(ctx, "wait", err)
			}
			nospin = min(2*nospin, nospinMax)
		}
	}
	return t.state.Copy(), nil
}

// poll is one hanging GET; changed reports a new version.
func (t *Tx) poll(ctx context.Context) (changed bool, err error) {
	const op = "wait"
	req, err := newRequest(ctx, op, http.MethodGet, t.Location(), nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("If-None-Match", t.etag)
	req.Header.Set("Request-Timeout", strconv.Itoa(requestTimeout(ctx)))
	res, err := t.c.do(op, req)
	if err != nil {
		return false, err
	}
	switch res.status {
	case http.StatusNotModified:
		if got := res.header.Get("ETag"); !sameETag(got, t.etag) {
			return false, protocolError(op, fmt.Errorf("304 with ETag %q, not %q", got, t.etag))
		}
		return false, nil
	case http.StatusOK:
		old := t.etag
		if err := t.adopt(op, res); err != nil {
			return false, err
		}
		return !sameETag(old, t.etag), nil
	}
	return false, statusError(op, res)
}

// requestTimeout is how long the upstream may hold a GET: a second less than
// ctx leaves, so that its 304 arrives before our deadline, within [1, 30].
func requestTimeout(ctx context.Context) int {
	dl, ok := ctx.Deadline()
	if !ok {
		return maxRequestTimeout
	}
	secs := int(time.Until(dl)/time.Second) - 1
	return max(1, min(secs, maxRequestTimeout))
}

func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
