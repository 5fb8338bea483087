package tx

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
)

// Body is the message of a transaction, in one of four forms:
//
//   - *InlineBody and *ReuseBody are how a client asks for a body; the store
//     turns them into a *Blob;
//   - *Blob is a stored RFC 822 message, possibly still being uploaded;
//   - *MessageBuilder is a structured message (spec section 8) whose parts
//     are blobs of their own.
//
// A Body value is never a typed nil.
type Body interface {
	// Complete reports whether every byte of the message is known (the
	// body is finalized).
	Complete() bool
	clone() Body
}

var (
	_ Body = (*InlineBody)(nil)
	_ Body = (*ReuseBody)(nil)
	_ Body = (*Blob)(nil)
	_ Body = (*MessageBuilder)(nil)
)

// InlineBody is a whole RFC 822 message given as text in the request.
type InlineBody struct{ Text string }

// ReuseBody asks for the finalized blob of another transaction by URI.
type ReuseBody struct{ URI string }

// Blob is a stored blob as a transaction sees it: the tx body or one
// message-builder part.
type Blob struct {
	ID        string // TxBodyBlobID for a tx body, else the part's blob id
	URI       string // where clients PUT or reuse it; filled in by the REST layer
	Length    int64  // bytes stored so far; not part of any JSON
	Finalized bool
}

// MessageBuilder is a body built from a spec. Clients send the spec; they read
// back the status of its part blobs (and, from a receiver that parses
// messages, the URI that takes the parsed JSON).
type MessageBuilder struct {
	Spec  MessageSpec
	URI   string // where a receiver accepts the parsed-message JSON (section 2.11)
	Blobs []Blob // status of the part blobs, at most one per ID
	Raw   *Blob  // the RFC 822 message the spec was parsed from, if any
}

func (b *InlineBody) Complete() bool { return true }
func (b *ReuseBody) Complete() bool  { return true } // only finalized blobs can be reused
func (b *Blob) Complete() bool       { return b.Finalized }

// Complete reports whether the raw message and every part blob are finalized;
// a part the client still has to upload (create_id) counts as incomplete
// until a finalized blob status for it is present.
func (b *MessageBuilder) Complete() bool {
	if b.Raw != nil && !b.Raw.Finalized {
		return false
	}
	done := map[string]bool{}
	for _, bl := range b.Blobs {
		if !bl.Finalized {
			return false
		}
		done[bl.ID] = true
	}
	for ref := range b.Spec.parts() {
		if c := ref.part.Content; c.Kind == ContentCreate && !done[c.Value] {
			return false
		}
	}
	return true
}

func (b *InlineBody) clone() Body { c := *b; return &c }
func (b *ReuseBody) clone() Body  { c := *b; return &c }
func (b *Blob) clone() Body       { c := *b; return &c }

func (b *MessageBuilder) clone() Body {
	c := *b
	c.Spec = b.Spec.clone()
	c.Blobs = slices.Clone(b.Blobs)
	c.Raw = clonePtr(b.Raw)
	return &c
}

func cloneBody(b Body) Body {
	if b == nil {
		return nil
	}
	return b.clone()
}

// growBody checks that n is o with more of the message known: a blob that got
// longer or finalized, part blobs filled in. Anything else is a different body.
func growBody(o, n Body) error {
	switch o := o.(type) {
	case *Blob:
		if n, ok := n.(*Blob); ok {
			return o.growsTo(*n)
		}
	case *MessageBuilder:
		if n, ok := n.(*MessageBuilder); ok {
			return o.growsTo(n)
		}
	}
	return errors.New("cannot be replaced by a different body")
}

func (o Blob) growsTo(n Blob) error {
	switch {
	case o.ID != n.ID:
		return fmt.Errorf("blob %q cannot be replaced by blob %q", o.ID, n.ID)
	case n.Length < o.Length:
		return fmt.Errorf("blob %q cannot shrink from %d to %d bytes", o.ID, o.Length, n.Length)
	case o.Finalized && (!n.Finalized || n.Length != o.Length):
		return fmt.Errorf("blob %q is finalized and cannot change", o.ID)
	}
	return nil
}

func (o *MessageBuilder) growsTo(n *MessageBuilder) error {
	switch {
	case !reflect.DeepEqual(o.Spec, n.Spec):
		return errors.New("message_builder spec cannot change")
	case o.URI != "" && o.URI != n.URI:
		return errors.New("message_builder uri cannot change")
	case o.Raw != nil && n.Raw == nil:
		return errors.New("blob_status cannot be removed")
	case o.Raw != nil:
		if err := o.Raw.growsTo(*n.Raw); err != nil {
			return err
		}
	}
	for _, ob := range o.Blobs {
		i := blobIndex(n.Blobs, ob.ID)
		if i < 0 {
			return fmt.Errorf("blob %q cannot be removed", ob.ID)
		}
		if err := ob.growsTo(n.Blobs[i]); err != nil {
			return err
		}
	}
	return nil
}

func blobIndex(blobs []Blob, id string) int {
	for i, b := range blobs {
		if b.ID == id {
			return i
		}
	}
	return -1
}
