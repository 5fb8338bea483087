package tx

import (
	"encoding/json"
	"strings"
)

// bodyForms says which body JSON forms a context carries: request forms
// (inline, reuse_uri, a message_builder spec) and status forms (blob_status,
// message_builder uri and blob_status). Copies between transactions carry
// both so that nothing is lost.
type bodyForms struct{ request, status bool }

func formsFor(c Context) bodyForms {
	switch c {
	case RestRead:
		return bodyForms{status: true}
	case RestCreate, RestUpdate:
		return bodyForms{request: true}
	}
	return bodyForms{request: true, status: true}
}

// encodeBody renders the parts of b that context c carries; ok is false when
// none are left.
func encodeBody(b Body, c Context) (any, bool) {
	f := formsFor(c)
	switch b := b.(type) {
	case *InlineBody:
		return object{{Key: "inline", Value: b.Text}}, f.request
	case *ReuseBody:
		return object{{Key: "reuse_uri", Value: b.URI}}, f.request
	case *Blob:
		return object{{Key: "blob_status", Value: blobStatus(*b)}}, f.status
	case *MessageBuilder:
		var mb object
		if f.request {
			mb = b.Spec.members()
		}
		if f.status && b.URI != "" {
			mb = append(mb, kv{Key: "uri", Value: b.URI})
		}
		if f.status && len(b.Blobs) > 0 {
			var st object
			for _, bl := range b.Blobs {
				st = append(st, kv{Key: bl.ID, Value: blobStatus(bl)})
			}
			mb = append(mb, kv{Key: "blob_status", Value: st})
		}
		out := object{{Key: "message_builder", Value: mb}}
		if f.status && b.Raw != nil {
			out = append(out, kv{Key: "blob_status", Value: blobStatus(*b.Raw)})
		}
		return out, true
	}
	return nil, false
}

type blobStatusJSON struct {
	URI       string `json:"uri,omitempty"`
	Finalized bool   `json:"finalized,omitempty"`
}

func blobStatus(b Blob) blobStatusJSON { return blobStatusJSON{b.URI, b.Finalized} }

func decodeBody(raw json.RawMessage, path string, c Context) (Body, error) {
	f := formsFor(c)
	mem, err := readObject(raw, path)
	if err != nil {
		return nil, err
	}
	var got []string
	var body Body
	var blob *Blob
	for _, m := range mem {
		mp := joinPath(path, m.key)
		switch m.key {
		case "inline":
			if !f.request {
				return nil, notAllowed(mp, c)
			}
			var text string
			text, err = readString(m.raw, mp)
			body = &InlineBody{text}
		case "reuse_uri":
			if !f.request {
				return nil, notAllowed(mp, c)
			}
			var uri string
			if uri, err = readString(m.raw, mp); err == nil {
				_, _, err = ParseReuseURI(uri)
			}
			body = &ReuseBody{uri}
		case "blob_status":
			if !f.status {
				return nil, notAllowed(mp, c)
			}
			var b Blob
			b, err = decodeBlobStatus(m.raw, mp, TxBodyBlobID)
			blob = &b
		case "message_builder":
			body, err = decodeMessageBuilder(m.raw, mp, c)
		default:
			return nil, unknownKey(path, m.key)
		}
		if err != nil {
			return nil, asFieldErr(err, mp)
		}
		got = append(got, m.key)
	}
	mb, isMB := body.(*MessageBuilder)
	switch {
	case len(got) == 1 && blob != nil:
		return blob, nil
	case len(got) == 1:
		return body, nil
	case len(got) == 2 && isMB && blob != nil:
		mb.Raw = blob
		return mb, nil
	}
	alts := []string{"message_builder"}
	if f.request {
		alts = append(alts, "inline", "reuse_uri")
	}
	if f.status {
		alts = append(alts, "blob_status")
	}
	reason := "needs exactly one of " + strings.Join(alts, ", ")
	if f.status {
		reason += " (blob_status may accompany message_builder)"
	}
	return nil, &FieldError{Field: path, Reason: reason}
}

func decodeMessageBuilder(raw json.RawMessage, path string, c Context) (*MessageBuilder, error) {
	f := formsFor(c)
	mem, err := readObject(raw, path)
	if err != nil {
		return nil, err
	}
	mb := &MessageBuilder{}
	var spec []member
	for _, m := range mem {
		mp := joinPath(path, m.key)
		switch {
		case m.key == "uri" || m.key == "blob_status":
			if !f.status {
				return nil, notAllowed(mp, c)
			}
			if m.key == "uri" {
				mb.URI, err = readText(m.raw, mp)
			} else {
				mb.Blobs, err = decodeBlobStatuses(m.raw, mp)
			}
			if err != nil {
				return nil, err
			}
		case isSpecKey(m.key):
			if !f.request {
				return nil, notAllowed(mp, c)
			}
			spec = append(spec, m)
		default:
			return nil, unknownKey(path, m.key)
		}
	}
	mb.Spec, err = decodeSpec(spec, path)
	return mb, err
}

func decodeBlobStatuses(raw json.RawMessage, path string) ([]Blob, error) {
	mem, err := readObject(raw, path)
	if err != nil {
		return nil, err
	}
	var out []Blob
	for _, m := range mem {
		mp := joinPath(path, m.key)
		if m.key == "" || hasControl(m.key) {
			return nil, fieldErr(mp, "blob id must be non-empty text")
		}
		b, err := decodeBlobStatus(m.raw, mp, m.key)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func decodeBlobStatus(raw json.RawMessage, path, id string) (Blob, error) {
	mem, err := readObject(raw, path)
	if err != nil {
		return Blob{}, err
	}
	b := Blob{ID: id}
	for _, m := range mem {
		mp := joinPath(path, m.key)
		switch m.key {
		case "uri":
			b.URI, err = readText(m.raw, mp)
		case "finalized":
			b.Finalized, err = readBool(m.raw, mp)
		default:
			return b, unknownKey(path, m.key)
		}
		if err != nil {
			return b, err
		}
	}
	return b, nil
}
