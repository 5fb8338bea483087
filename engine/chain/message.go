package chain

import (
	"bytes"
	"context"
	"io"
)

// Message is the message as a chain sends it upstream: the stored body, read as a stream,
// with header fields that steps prepended on top (Received, DKIM-Signature). The body bytes
// are never copied or held in memory; header edits are the only bytes a step adds. Steps may
// prepend but never rewrite bytes in place, which keeps earlier signatures valid.
type Message struct {
	open    func(ctx context.Context) (io.ReadCloser, error)
	size    int64
	prepend [][]byte
}

// NewMessage describes a body of size bytes (-1: not known until streamed, as for a message
// rendered on the fly) that open streams, the same bytes at every call.
func NewMessage(size int64, open func(ctx context.Context) (io.ReadCloser, error)) *Message {
	return &Message{open: open, size: size}
}

// Prepend adds a complete header field ("Name: value\r\n", folded as needed) above those
// already there: the field added last comes first, as each hop's trace header does.
func (m *Message) Prepend(field string) {
	m.prepend = append(m.prepend, []byte(field))
}

// Size is the length of the message as Open streams it, or -1 if not known.
func (m *Message) Size() int64 {
	if m.size < 0 {
		return -1
	}
	n := m.size
	for _, f := range m.prepend {
		n += int64(len(f))
	}
	return n
}

// Open streams the message: prepended fields, newest first, then the stored body.
func (m *Message) Open(ctx context.Context) (io.ReadCloser, error) {
	body, err := m.open(ctx)
	if err != nil {
		return nil, err
	}
	readers := make([]io.Reader, 0, len(m.prepend)+1)
	for i := len(m.prepend) - 1; i >= 0; i-- {
		readers = append(readers, bytes.NewReader(m.prepend[i]))
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(append(readers, body)...), body}, nil
}

// Fork is a message with the same body and the header fields prepended so far, whose
// further edits are its own: a copy of the transaction on another chain (add_route) must
// not see this chain's later edits, nor this chain its.
func (m *Message) Fork() *Message {
	return &Message{open: m.open, size: m.size, prepend: append([][]byte(nil), m.prepend...)}
}
