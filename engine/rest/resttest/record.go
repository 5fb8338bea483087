package resttest

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/koukan/koukan/engine/tx"
)

// Received is what one transaction received, and the responses it gave.
type Received struct {
	ID string // the transaction's id in its URL
	// Tx holds the request fields as received: Sender (the name from the
	// path, the tag from the JSON), MailFrom, RcptTo, RemoteHost,
	// LocalHost, SMTPMeta, FilterOutput; the responses given so far; and
	// Cancelled. Its Body is nil: the body's bytes are in Body.
	Tx            *tx.Tx
	Body          []byte // the raw message as uploaded so far (or sent inline)
	BodyFinalized bool
	// Parsed is the parsed-message JSON posted to message_builder.uri.
	Parsed json.RawMessage
	// Parts are the message-builder part blobs by id, as uploaded so far.
	Parts      map[string][]byte
	Heartbeats int // empty PATCHes
	Cancels    int // POSTs to cancel, repeats included
}

// Finished reports whether the transaction will get no more responses: it
// was cancelled, DATA was answered, MAIL failed, or every recipient failed.
func (rc Received) Finished() bool {
	t := rc.Tx
	switch {
	case t.Cancelled, t.DataResponse != nil:
		return true
	case t.MailResponse != nil && t.MailResponse.Err():
		return true
	case len(t.RcptTo) == 0 || len(t.RcptResponse) < len(t.RcptTo):
		return false
	}
	return !slices.ContainsFunc(t.RcptResponse, tx.Response.Ok)
}

// snapshot copies t, under r.mu.
func (t *rtx) snapshot() Received {
	rc := Received{
		ID:            t.id,
		Tx:            t.state.Copy(),
		Body:          slices.Clone(t.body.data),
		BodyFinalized: t.body.final,
		Parsed:        slices.Clone(t.parsed),
		Heartbeats:    t.heartbeats,
		Cancels:       t.cancels,
	}
	if len(t.parts) > 0 {
		rc.Parts = make(map[string][]byte, len(t.parts))
		for id, b := range t.parts {
			rc.Parts[id] = slices.Clone(b.data)
		}
	}
	return rc
}

// Transactions is every transaction received so far, in creation order.
func (r *Receiver) Transactions() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshots()
}

func (r *Receiver) snapshots() []Received {
	out := make([]Received, len(r.order))
	for i, t := range r.order {
		out[i] = t.snapshot()
	}
	return out
}

// WaitFor waits until at least n transactions are Finished and returns all
// transactions, or ctx's error.
func (r *Receiver) WaitFor(ctx context.Context, n int) ([]Received, error) {
	for {
		r.mu.Lock()
		all := r.snapshots()
		changed := r.changed
		r.mu.Unlock()
		done := 0
		for _, rc := range all {
			if rc.Finished() {
				done++
			}
		}
		if done >= n {
			return all, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
