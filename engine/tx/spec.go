package tx

import (
	"encoding/json"
	"errors"
	"iter"
	"slices"
	"strconv"
)

// MessageSpec is a message_builder request (spec section 8.1): headers and
// parts from which engine/mime renders an RFC 5322 message.
type MessageSpec struct {
	Headers            []Header
	TextBody           []Part // the first is the primary body, the rest alternatives
	RelatedAttachments []Part // inline images and the like, usually with ContentID
	FileAttachments    []Part // usually with Filename
}

// Header is one header field of a MessageSpec. Value is kept as JSON because
// its shape depends on the name (address lists, dates, ids, plain strings);
// engine/mime interprets it.
type Header struct {
	Name  string
	Value json.RawMessage
}

// Part is one body part of a MessageSpec.
type Part struct {
	ContentType string  `json:"content_type"`
	Content     Content `json:"content"`
	ContentID   string  `json:"content_id,omitempty"`
	Filename    string  `json:"filename,omitempty"`
}

// ContentKind says where a part's bytes come from.
type ContentKind uint8

const (
	ContentInline ContentKind = iota + 1 // Value is the UTF-8 text itself
	ContentCreate                        // Value is a blob id the client uploads to later
	ContentReuse                         // Value is the URI of a finalized blob of another transaction
)

// Content is a part's payload; JSON {"inline": ...}, {"create_id": ...} or
// {"reuse_uri": ...}.
type Content struct {
	Kind  ContentKind
	Value string
}

func (s MessageSpec) clone() MessageSpec {
	s.Headers = slices.Clone(s.Headers)
	for i := range s.Headers {
		s.Headers[i].Value = cloneRaw(s.Headers[i].Value)
	}
	s.TextBody = slices.Clone(s.TextBody)
	s.RelatedAttachments = slices.Clone(s.RelatedAttachments)
	s.FileAttachments = slices.Clone(s.FileAttachments)
	return s
}

// blobID is the id under which the content of the n-th part (counting across
// text_body, related_attachments and file_attachments) is stored.
func (c Content) blobID(n int) (string, error) {
	switch c.Kind {
	case ContentInline:
		return "inline" + strconv.Itoa(n), nil
	case ContentCreate:
		return c.Value, checkBlobID(c.Value)
	case ContentReuse:
		_, id, err := ParseReuseURI(c.Value)
		if err == nil && id == TxBodyBlobID {
			err = errors.New("must name a blob (/transactions/{tx}/blob/{blob}); a transaction body cannot be reused as a part")
		}
		return id, err
	}
	return "", errors.New("needs exactly one of inline, create_id, reuse_uri")
}

// partRef is one part of a spec with its path and running index.
type partRef struct {
	path string
	n    int
	part *Part
}

// parts yields every part in the order that numbers inline blob ids.
func (s *MessageSpec) parts() iter.Seq[partRef] {
	return func(yield func(partRef) bool) {
		n := 0
		for _, l := range []struct {
			key   string
			parts []Part
		}{{"text_body", s.TextBody}, {"related_attachments", s.RelatedAttachments}, {"file_attachments", s.FileAttachments}} {
			for i := range l.parts {
				if !yield(partRef{indexPath(l.key, i), n, &l.parts[i]}) {
					return
				}
				n++
			}
		}
	}
}

// PartBlob is one blob a message-builder spec refers to, and where its bytes
// come from: Content is the part's content before normalization (inline text
// to store, a blob of another transaction to link, or a create_id the client
// will upload to).
type PartBlob struct {
	ID      string
	Content Content
}

// blobs lists the blob of every part, checking that the ids are distinct
// (a client create_id may not collide with a generated inline<N> id).
func (s MessageSpec) blobs(path string) ([]PartBlob, error) {
	var out []PartBlob
	seen := map[string]bool{}
	for ref := range s.parts() {
		cp := joinPath(joinPath(path, ref.path), "content")
		id, err := ref.part.Content.blobID(ref.n)
		if err != nil {
			return nil, asFieldErr(err, cp)
		}
		if seen[id] {
			return nil, fieldErr(cp, "duplicate blob id %q", id)
		}
		seen[id] = true
		out = append(out, PartBlob{id, ref.part.Content})
	}
	return out, nil
}

// Normalize prepares a spec for storage: every part's content becomes
// {"create_id": id}, where inline parts get id inline<N> (N counts all parts
// across text_body, related_attachments and file_attachments) and reused
// parts keep the blob id of their URI. It returns the normalized spec and
// the blobs the store must create, store or link, in part order. Normalizing
// a normalized spec changes nothing.
func (s MessageSpec) Normalize() (MessageSpec, []PartBlob, error) {
	blobs, err := s.blobs("")
	if err != nil {
		return MessageSpec{}, nil, err
	}
	out := s.clone()
	i := 0
	for ref := range out.parts() {
		ref.part.Content = Content{ContentCreate, blobs[i].ID}
		i++
	}
	return out, blobs, nil
}
