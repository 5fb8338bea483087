package tx

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
)

var contentKeys = [...]string{ContentInline: "inline", ContentCreate: "create_id", ContentReuse: "reuse_uri"}

func (c Content) MarshalJSON() ([]byte, error) {
	if c.Kind < ContentInline || c.Kind > ContentReuse {
		return nil, errors.New("tx: content has no kind")
	}
	return encodeJSON(object{{Key: contentKeys[c.Kind], Value: c.Value}})
}

func (h Header) MarshalJSON() ([]byte, error) { return encodeJSON([]any{h.Name, h.Value}) }

func (s MessageSpec) MarshalJSON() ([]byte, error) { return encodeJSON(s.members()) }

// members lists the spec's keys in a fixed order, leaving out empty ones.
func (s MessageSpec) members() object {
	var o object
	add := func(k string, n int, v any) {
		if n > 0 {
			o = append(o, kv{Key: k, Value: v})
		}
	}
	add("headers", len(s.Headers), s.Headers)
	add("text_body", len(s.TextBody), s.TextBody)
	add("related_attachments", len(s.RelatedAttachments), s.RelatedAttachments)
	add("file_attachments", len(s.FileAttachments), s.FileAttachments)
	return o
}

func isSpecKey(k string) bool {
	return k == "headers" || k == "text_body" || k == "related_attachments" || k == "file_attachments"
}

// ParseMessageSpec reads a message_builder spec on its own, e.g. as the store
// keeps it.
func ParseMessageSpec(data []byte) (MessageSpec, error) {
	if err := checkSyntax(data); err != nil {
		return MessageSpec{}, err
	}
	mem, err := readObject(json.RawMessage(bytes.TrimSpace(data)), "")
	if err != nil {
		return MessageSpec{}, err
	}
	return decodeSpec(mem, "")
}

// decodeSpec reads the spec keys of a message_builder object.
func decodeSpec(mem []member, path string) (MessageSpec, error) {
	var s MessageSpec
	var err error
	for _, m := range mem {
		mp := joinPath(path, m.key)
		switch m.key {
		case "headers":
			s.Headers, err = decodeList(m.raw, mp, decodeHeader)
		case "text_body":
			s.TextBody, err = decodeList(m.raw, mp, decodePart)
		case "related_attachments":
			s.RelatedAttachments, err = decodeList(m.raw, mp, decodePart)
		case "file_attachments":
			s.FileAttachments, err = decodeList(m.raw, mp, decodePart)
		default:
			return s, unknownKey(path, m.key)
		}
		if err != nil {
			return s, err
		}
	}
	_, err = s.blobs(path)
	return s, err
}

func decodeHeader(raw json.RawMessage, path string) (Header, error) {
	l, err := readList(raw, path)
	if err != nil || len(l) != 2 {
		return Header{}, fieldErr(path, "must be a [name, value] pair")
	}
	name, err := readString(l[0], indexPath(path, 0))
	if err != nil {
		return Header{}, err
	}
	if !validHeaderName(name) {
		return Header{}, fieldErr(indexPath(path, 0), "must be a header field name (printable ASCII without spaces or colons)")
	}
	value, err := readRaw(l[1], indexPath(path, 1))
	return Header{name, value}, err
}

func decodePart(raw json.RawMessage, path string) (Part, error) {
	mem, err := readObject(raw, path)
	if err != nil {
		return Part{}, err
	}
	var p Part
	hasContent := false
	for _, m := range mem {
		mp := joinPath(path, m.key)
		switch m.key {
		case "content_type":
			if p.ContentType, err = readString(m.raw, mp); err == nil && !validContentType(p.ContentType) {
				err = fieldErr(mp, "must be a MIME type such as text/plain")
			}
		case "content":
			p.Content, err = decodeContent(m.raw, mp)
			hasContent = true
		case "content_id":
			p.ContentID, err = readText(m.raw, mp)
		case "filename":
			p.Filename, err = readText(m.raw, mp)
		default:
			return p, unknownKey(path, m.key)
		}
		if err != nil {
			return p, err
		}
	}
	switch {
	case p.ContentType == "":
		return p, fieldErr(joinPath(path, "content_type"), "is required")
	case !hasContent:
		return p, fieldErr(joinPath(path, "content"), "is required")
	}
	return p, nil
}

func decodeContent(raw json.RawMessage, path string) (Content, error) {
	mem, err := readObject(raw, path)
	if err != nil {
		return Content{}, err
	}
	if len(mem) != 1 {
		return Content{}, fieldErr(path, "needs exactly one of inline, create_id, reuse_uri")
	}
	m := mem[0]
	i := slices.Index(contentKeys[:], m.key)
	if i < int(ContentInline) {
		return Content{}, unknownKey(path, m.key)
	}
	mp := joinPath(path, m.key)
	value, err := readString(m.raw, mp)
	if err != nil {
		return Content{}, err
	}
	c := Content{ContentKind(i), value}
	if _, err := c.blobID(0); err != nil {
		return Content{}, asFieldErr(err, mp)
	}
	return c, nil
}

func validHeaderName(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == ':' })
}

// validContentType accepts type/subtype made of MIME token characters.
func validContentType(s string) bool {
	typ, sub, ok := strings.Cut(s, "/")
	token := func(t string) bool {
		return t != "" && !strings.ContainsFunc(t, func(r rune) bool {
			return r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?=`, r)
		})
	}
	return ok && token(typ) && token(sub)
}
