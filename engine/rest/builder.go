package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/koukan/koukan/engine/tx"
)

// PostMessageBuilder gives a receiver that parses messages (rest_output's
// receive_parsing) the parsed-message JSON of spec section 8.3, posted to
// the body's message_builder uri. The receiver must answer 200 with a read
// form whose body.message_builder.blob_status has a uri for every create_id
// in parsed; PostMessageBuilder returns those blobs, in the order their ids
// first appear in parsed, with absolute URIs to PutBlob each part to.
func (t *Tx) PostMessageBuilder(ctx context.Context, uri string, parsed json.RawMessage) ([]tx.Blob, error) {
	const op = "message builder"
	ids, err := createIDs(parsed)
	if err != nil {
		return nil, &Error{Op: op, Kind: KindLocal, Err: err}
	}
	u, err := resolve(t.location, uri)
	if err != nil {
		return nil, &Error{Op: op, Kind: KindLocal, Err: fmt.Errorf("message_builder uri %q: %w", uri, err)}
	}
	req, err := newRequest(ctx, op, http.MethodPost, u.String(), parsed)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := t.c.do(op, req)
	if err != nil {
		return nil, err
	}
	if res.status != http.StatusOK {
		return nil, statusError(op, res)
	}
	st, err := tx.Parse(res.body, tx.RestRead)
	if err != nil {
		return nil, protocolError(op, fmt.Errorf("%s: the answer: %w", res.url, err))
	}
	mb, _ := st.Body.(*tx.MessageBuilder)
	if mb == nil {
		return nil, protocolError(op, fmt.Errorf("%s: the answer has no body.message_builder", res.url))
	}
	status := map[string]tx.Blob{}
	for _, b := range mb.Blobs {
		status[b.ID] = b
	}
	out := make([]tx.Blob, 0, len(ids))
	for _, id := range ids {
		b, ok := status[id]
		if !ok || b.URI == "" {
			return nil, protocolError(op, fmt.Errorf("%s: no blob_status uri for create_id %q", res.url, id))
		}
		abs, err := resolve(res.url, b.URI)
		if err != nil {
			return nil, protocolError(op, fmt.Errorf("blob %q uri %q: %w", id, b.URI, err))
		}
		b.URI = abs.String()
		out = append(out, b)
	}
	return out, nil
}

// createIDs lists the distinct create_id values of a parsed-message
// document in document order. The same content object appears both in the
// MIME tree and in the flat text_body/attachment lists, hence the dedup.
func createIDs(parsed json.RawMessage) ([]string, error) {
	if !json.Valid(parsed) || bytes.TrimSpace(parsed)[0] != '{' {
		return nil, errors.New("the parsed message is not a JSON object")
	}
	// A frame is an open object or array; in an object, key is the member
	// whose value comes next.
	type frame struct {
		object, wantKey bool
		key             string
	}
	var stack []frame
	var ids []string
	seen := map[string]bool{}
	dec := json.NewDecoder(bytes.NewReader(parsed))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return ids, nil
		}
		if err != nil {
			return nil, err
		}
		d, isDelim := tok.(json.Delim)
		if isDelim && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		var top *frame
		if n := len(stack); n > 0 && stack[n-1].object {
			top = &stack[n-1]
		}
		switch {
		case top != nil && top.wantKey:
			top.key, top.wantKey = tok.(string), false
			continue
		case top != nil:
			top.wantKey = true
			if id, ok := tok.(string); ok && top.key == "create_id" && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		if isDelim {
			stack = append(stack, frame{object: d == '{', wantKey: d == '{'})
		}
	}
}
