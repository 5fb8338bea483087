package chain

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxHeaderSize bounds the header section a step may read: the header is held in memory,
// the body never is.
const MaxHeaderSize = 1 << 20

// ErrHeaderTooLarge is returned by Header for a message whose header section is longer
// than MaxHeaderSize.
var ErrHeaderTooLarge = fmt.Errorf("message header section larger than %d bytes", MaxHeaderSize)

// Message is the message as a chain sends it upstream: the stored body, read as a stream,
// with header fields that steps prepended on top (Received, DKIM-Signature) and fields that
// steps deleted left out. The body bytes are never copied or held in memory; the header
// section is, once a step reads it. Steps may prepend and delete fields but never rewrite
// bytes in place, which keeps earlier signatures over the rest valid.
type Message struct {
	open    func(ctx context.Context) (io.ReadCloser, error)
	size    int64
	prepend []Field // in the order added: the last one is on top
	// header is the stored message's header section once read; deleted marks its fields
	// that are left out.
	header  *storedHeader
	deleted []bool
}

// Field is one header field as it is on the wire: Raw holds "Name: value\r\n" with any
// folding.
type Field struct {
	Name string
	Raw  []byte
}

// Value is the field's body unfolded, without the leading space and the line ending.
func (f Field) Value() string {
	_, v, _ := strings.Cut(string(f.Raw), ":")
	v = strings.NewReplacer("\r\n", "", "\n", "").Replace(v)
	return strings.TrimLeft(v, " \t")
}

// storedHeader is the parsed header section of the stored message: its fields in order and
// the number of bytes they take, which Open skips when fields are deleted.
type storedHeader struct {
	fields []Field
	length int64
}

// NewMessage describes a body of size bytes (-1: not known until streamed, as for a message
// rendered on the fly) that open streams, the same bytes at every call.
func NewMessage(size int64, open func(ctx context.Context) (io.ReadCloser, error)) *Message {
	return &Message{open: open, size: size}
}

// Prepend adds a complete header field ("Name: value\r\n", folded as needed) above those
// already there: the field added last comes first, as each hop's trace header does.
func (m *Message) Prepend(field string) {
	name, _, _ := strings.Cut(field, ":")
	m.prepend = append(m.prepend, Field{Name: name, Raw: []byte(field)})
}

// Header returns the message's header fields as Open streams them, top to bottom: those
// prepended (newest first), then the stored message's own that are not deleted. It reads
// the stored header section once.
func (m *Message) Header(ctx context.Context) ([]Field, error) {
	if err := m.readHeader(ctx); err != nil {
		return nil, err
	}
	out := make([]Field, 0, len(m.prepend)+len(m.header.fields))
	for i := len(m.prepend) - 1; i >= 0; i-- {
		out = append(out, m.prepend[i])
	}
	for i, f := range m.header.fields {
		if !m.deleted[i] {
			out = append(out, f)
		}
	}
	return out, nil
}

// Delete removes header fields named name (case-insensitively): the nth of them counted
// from the top, or all of them when nth is 0. It reports how many it removed.
func (m *Message) Delete(ctx context.Context, name string, nth int) (int, error) {
	if err := m.readHeader(ctx); err != nil {
		return 0, err
	}
	seen, removed := 0, 0
	match := func(f Field) bool {
		if !strings.EqualFold(f.Name, name) {
			return false
		}
		seen++
		return nth == 0 || seen == nth
	}
	kept := m.prepend[:0:0]
	for i := len(m.prepend) - 1; i >= 0; i-- {
		if match(m.prepend[i]) {
			removed++
			continue
		}
		kept = append(kept, m.prepend[i])
	}
	for l, r := 0, len(kept)-1; l < r; l, r = l+1, r-1 {
		kept[l], kept[r] = kept[r], kept[l]
	}
	m.prepend = kept
	for i, f := range m.header.fields {
		if !m.deleted[i] && match(f) {
			m.deleted[i] = true
			removed++
		}
	}
	return removed, nil
}

// readHeader parses the stored message's header section, up to the empty line that ends
// it (or the end of a message that is all header).
func (m *Message) readHeader(ctx context.Context) error {
	if m.header != nil {
		return nil
	}
	body, err := m.open(ctx)
	if err != nil {
		return err
	}
	defer body.Close()
	r := bufio.NewReader(io.LimitReader(body, MaxHeaderSize+1))
	h := &storedHeader{}
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			var rest []byte
			rest, err = r.ReadBytes('\n')
			line = append(append([]byte(nil), line...), rest...)
		}
		if len(line) == 0 || line[0] == '\r' && len(line) <= 2 || line[0] == '\n' {
			break // the separator line, or the end
		}
		if h.length+int64(len(line)) > MaxHeaderSize {
			return ErrHeaderTooLarge
		}
		if n := len(h.fields); n > 0 && (line[0] == ' ' || line[0] == '\t') {
			h.fields[n-1].Raw = append(h.fields[n-1].Raw, line...)
		} else if name, _, ok := bytes.Cut(line, []byte(":")); ok && len(name) > 0 {
			h.fields = append(h.fields, Field{Name: string(bytes.TrimRight(name, " \t")), Raw: append([]byte(nil), line...)})
		} else {
			break // not a header line: the body starts here (a malformed message)
		}
		h.length += int64(len(line))
		if err != nil {
			break
		}
	}
	m.header, m.deleted = h, make([]bool, len(h.fields))
	return nil
}

// Size is the length of the message as Open streams it, or -1 if not known.
func (m *Message) Size() int64 {
	if m.size < 0 {
		return -1
	}
	n := m.size
	for _, f := range m.prepend {
		n += int64(len(f.Raw))
	}
	for i, del := range m.deleted {
		if del {
			n -= int64(len(m.header.fields[i].Raw))
		}
	}
	return n
}

// Open streams the message: prepended fields, newest first, then the stored message less
// its deleted fields.
func (m *Message) Open(ctx context.Context) (io.ReadCloser, error) {
	body, err := m.open(ctx)
	if err != nil {
		return nil, err
	}
	readers := make([]io.Reader, 0, len(m.prepend)+len(m.deleted)+1)
	for i := len(m.prepend) - 1; i >= 0; i-- {
		readers = append(readers, bytes.NewReader(m.prepend[i].Raw))
	}
	if m.anyDeleted() {
		// Skip the stored header section and stream the fields that remain in its place.
		if _, err := io.CopyN(io.Discard, body, m.header.length); err != nil {
			body.Close()
			return nil, fmt.Errorf("skipping the message header: %w", err)
		}
		for i, f := range m.header.fields {
			if !m.deleted[i] {
				readers = append(readers, bytes.NewReader(f.Raw))
			}
		}
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(append(readers, body)...), body}, nil
}

func (m *Message) anyDeleted() bool {
	for _, del := range m.deleted {
		if del {
			return true
		}
	}
	return false
}

// Fork is a message with the same body and the header edits made so far, whose further
// edits are its own: a copy of the transaction on another chain (add_route) must not see
// this chain's later edits, nor this chain its.
func (m *Message) Fork() *Message {
	return &Message{open: m.open, size: m.size, prepend: append([]Field(nil), m.prepend...),
		header: m.header, deleted: append([]bool(nil), m.deleted...)}
}
