package rest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/koukan/koukan/engine/tx"
)

// Tx is a transaction created upstream, as this client knows it: where it
// lives, its version, and the upstream's latest read form of it. The read
// form shows request fields as placeholders, so the state holds the
// upstream's responses and body status, not the envelope the caller sent.
type Tx struct {
	c        *Client
	location *url.URL
	etag     string
	state    *tx.Tx
}

// Create posts t's create form to uri (e.g.
// http://gateway:8000/senders/router/transactions). The upstream must answer
// 201 with a Location (resolved if relative), an ETag and the transaction's
// read form. It does not wait for any response; see Wait.
func (c *Client) Create(ctx context.Context, uri string, t *tx.Tx) (*Tx, error) {
	const op = "create"
	body, err := t.MarshalFor(tx.RestCreate)
	if err != nil {
		return nil, &Error{Op: op, Kind: KindLocal, Err: err}
	}
	req, err := newRequest(ctx, op, http.MethodPost, uri, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.do(op, req)
	if err != nil {
		return nil, err
	}
	if res.status != http.StatusCreated {
		return nil, statusError(op, res)
	}
	loc := res.header.Get("Location")
	if loc == "" {
		return nil, protocolError(op, errors.New("201 without Location"))
	}
	u, err := resolve(res.url, loc)
	if err != nil {
		return nil, protocolError(op, fmt.Errorf("Location %q: %w", loc, err))
	}
	t2 := &Tx{c: c, location: u}
	if err := t2.adopt(op, res); err != nil {
		return nil, err
	}
	return t2, nil
}

// Location is the transaction's absolute URL.
func (t *Tx) Location() string { return t.location.String() }

// ETag is the version of State, as the upstream sent it.
func (t *Tx) ETag() string { return t.etag }

// State is a copy of the upstream's latest read form of the transaction.
func (t *Tx) State() *tx.Tx { return t.state.Copy() }

// Update sends the update form of delta (the gateway's new recipients,
// rest_output's new filter_output entries) with If-Match. A nil delta, or
// one the update form carries nothing of, sends a heartbeat instead: an
// empty PATCH that only moves the version on, so the upstream knows we are
// still here. On 412 the transaction is read again and the error's Kind is
// KindConflict.
func (t *Tx) Update(ctx context.Context, delta *tx.Tx) error {
	const op = "update"
	var body []byte
	if delta != nil {
		b, err := delta.MarshalFor(tx.RestUpdate)
		if err != nil {
			return &Error{Op: op, Kind: KindLocal, Err: err}
		}
		if string(b) != "{}" {
			body = b
		}
	}
	req, err := newRequest(ctx, op, http.MethodPatch, t.Location(), body)
	if err != nil {
		return err
	}
	req.Header.Set("If-Match", t.etag)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := t.c.do(op, req)
	switch {
	case err != nil:
		return err
	case res.status == http.StatusOK:
		return t.adopt(op, res)
	case res.status == http.StatusPreconditionFailed:
		e := statusError(op, res)
		e.Kind = KindConflict
		e.Err = errors.Join(e.Err, t.refresh(ctx))
		return e
	}
	return statusError(op, res)
}

// refresh reads the transaction at once, without waiting for a change.
func (t *Tx) refresh(ctx context.Context) error {
	const op = "read"
	req, err := newRequest(ctx, op, http.MethodGet, t.Location(), nil)
	if err != nil {
		return err
	}
	res, err := t.c.do(op, req)
	switch {
	case err != nil:
		return err
	case res.status != http.StatusOK:
		return statusError(op, res)
	}
	return t.adopt(op, res)
}

// Cancel tells the upstream that the transaction is abandoned (the SMTP
// client went away, or Koukan gave up on it). Any 2xx is success; the
// upstream's answer is not read, since a reference receiver sends none.
func (t *Tx) Cancel(ctx context.Context) error {
	const op = "cancel"
	req, err := newRequest(ctx, op, http.MethodPost, strings.TrimSuffix(t.Location(), "/")+"/cancel", nil)
	if err != nil {
		return err
	}
	res, err := t.c.do(op, req)
	if err != nil {
		return err
	}
	if res.status/100 != 2 {
		return statusError(op, res)
	}
	return nil
}

// adopt takes the transaction from a 200 or 201 answer as the new state,
// if it carries an ETag and extends the current state.
func (t *Tx) adopt(op string, res *response) error {
	etag := res.header.Get("ETag")
	if etag == "" {
		return protocolError(op, fmt.Errorf("%d from %s without ETag", res.status, res.url))
	}
	state, err := tx.Parse(res.body, tx.RestRead)
	if err != nil {
		return protocolError(op, fmt.Errorf("%s: the transaction JSON: %w", res.url, err))
	}
	if t.state != nil {
		if _, err := tx.Delta(t.state, state); err != nil {
			return protocolError(op, fmt.Errorf("%s: the transaction does not extend the previous one: %w", res.url, err))
		}
	}
	t.etag, t.state = etag, state
	return nil
}

// sameETag compares entity tags as the API does: quotes and a weak prefix
// do not count.
func sameETag(a, b string) bool { return bareETag(a) == bareETag(b) }

func bareETag(s string) string {
	return strings.Trim(strings.TrimPrefix(strings.TrimSpace(s), "W/"), `"`)
}
