package resttest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
)

const maxBlob = 64 << 20

// blob is an uploaded blob: the raw message or one message-builder part.
type blob struct {
	data  []byte
	total int64 // the declared total; -1 until known
	final bool
}

// upload is what a PUT's headers ask for.
type upload struct {
	whole    bool  // no Content-Range: the body is the whole blob
	finalize bool  // X-Finalize-Blob-Length: an empty body that ends the blob at offset
	offset   int64 // where the body goes
	total    int64 // -1: not declared
}

func badHeader(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "invalid_header", msg}
}

func badRange(msg string) *apiError {
	return &apiError{http.StatusRequestedRangeNotSatisfiable, "invalid_range", msg}
}

var rangeRE = regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+|\*)$`)

// uploadOf reads the upload headers of a PUT (spec section 2.7).
func uploadOf(req *http.Request) (upload, *apiError) {
	u := upload{total: -1}
	cr, fin := req.Header.Get("Content-Range"), req.Header.Get("X-Finalize-Blob-Length")
	switch {
	case cr != "" && fin != "":
		return u, badHeader("send either Content-Range or X-Finalize-Blob-Length")
	case fin != "":
		n, err := strconv.ParseInt(fin, 10, 64)
		if err != nil || n < 0 {
			return u, badHeader("x-finalize-blob-length must be a byte count")
		}
		if req.ContentLength > 0 {
			return u, badHeader("x-finalize-blob-length goes with an empty body")
		}
		u.finalize, u.offset, u.total = true, n, n
	case cr != "":
		m := rangeRE.FindStringSubmatch(cr)
		if m == nil {
			return u, badHeader(`content-range must be "bytes first-last/total" or "bytes first-last/*"`)
		}
		first, err1 := strconv.ParseInt(m[1], 10, 64)
		last, err2 := strconv.ParseInt(m[2], 10, 64)
		if err1 != nil || err2 != nil || last < first {
			return u, badHeader("content-range is not a range of bytes")
		}
		if m[3] != "*" {
			total, err := strconv.ParseInt(m[3], 10, 64)
			if err != nil || last >= total {
				return u, badHeader("content-range ends past its total")
			}
			u.total = total
		}
		if req.ContentLength != last-first+1 {
			return u, badHeader("content-range needs a Content-Length of its size")
		}
		u.offset = first
	default:
		u.whole = true
	}
	return u, nil
}

// write applies an upload of data to b; finalized reports that this write
// completed the blob. A gap, a conflicting total or bytes past the end are
// 416, and the caller tells the client what b holds.
func (b *blob) write(u upload, data []byte) (finalized bool, e *apiError) {
	have := int64(len(b.data))
	switch {
	case u.finalize:
		if u.total != have || (b.total >= 0 && b.total != u.total) {
			return false, badRange("x-finalize-blob-length is not the blob's length")
		}
	case u.whole:
		if b.final {
			if bytes.Equal(b.data, data) {
				return false, nil // a repeated upload
			}
			return false, &apiError{http.StatusConflict, "conflict", "the blob is finalized"}
		}
		b.data = data
		u.total = int64(len(data))
	default:
		end := u.offset + int64(len(data))
		switch {
		case u.offset > have:
			return false, badRange("the piece starts after the end of the blob")
		case u.total >= 0 && b.total >= 0 && u.total != b.total:
			return false, badRange("the total differs from the one declared")
		case u.total >= 0 && have > u.total:
			return false, badRange("the blob already holds more than the total")
		case b.total >= 0 && end > b.total:
			return false, badRange("the piece ends past the declared total")
		case end > have:
			// Bytes the blob already holds are skipped, so a client that
			// resends after a lost answer is harmless.
			b.data = append(b.data, data[have-u.offset:]...)
		}
	}
	if u.total >= 0 {
		b.total = u.total
	}
	if !b.final && b.total == int64(len(b.data)) {
		b.final = true
		return true, nil
	}
	return false, nil
}

// contentRange says what b holds: "bytes 0-<n-1>/<total>", or "bytes
// */<total>" while empty, with total "*" until known.
func (b *blob) contentRange() string {
	total := "*"
	if b.total >= 0 {
		total = strconv.FormatInt(b.total, 10)
	}
	if len(b.data) == 0 {
		return "bytes */" + total
	}
	return "bytes 0-" + strconv.Itoa(len(b.data)-1) + "/" + total
}

func (r *Receiver) putBody(w http.ResponseWriter, req *http.Request) *apiError {
	return r.put(w, req, "")
}

func (r *Receiver) putPart(w http.ResponseWriter, req *http.Request) *apiError {
	return r.put(w, req, req.PathValue("blob"))
}

// put is PUT of the raw message (part "") or of a part blob.
func (r *Receiver) put(w http.ResponseWriter, req *http.Request, part string) *apiError {
	u, e := uploadOf(req)
	if e != nil {
		return e
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBlob))
	if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
		return &apiError{http.StatusRequestEntityTooLarge, "too_large", "the blob is too large"}
	}
	if err != nil {
		return &apiError{http.StatusBadRequest, "incomplete_body", "the request body ended early"}
	}
	if u.finalize && len(data) > 0 {
		return badHeader("x-finalize-blob-length goes with an empty body")
	}

	r.mu.Lock()
	t, e := r.lookup(req)
	if e != nil {
		r.mu.Unlock()
		return e
	}
	b := &t.body
	if part != "" {
		if b = t.parts[part]; b == nil {
			r.mu.Unlock()
			return &apiError{http.StatusNotFound, "unknown_blob", "no such blob; parts come from the parsed message's create_ids"}
		}
	}
	finalized, e := b.write(u, data)
	w.Header().Set("Content-Range", b.contentRange())
	if finalized {
		r.touch(t)
	}
	r.mu.Unlock()
	if e != nil {
		return e
	}
	if finalized {
		r.advance(t)
	}
	writeJSON(w, http.StatusOK, []byte("{}"))
	return nil
}

// postMessageBuilder is POST {body.message_builder.uri}: the parsed-message
// JSON (spec section 8.3). It creates a blob for every create_id in it and
// answers with the read form, whose blob_status lists them.
func (r *Receiver) postMessageBuilder(w http.ResponseWriter, req *http.Request) *apiError {
	data, e := readJSON(w, req)
	if e != nil {
		return e
	}
	ids, err := createIDs(data)
	if err != nil {
		return &apiError{http.StatusBadRequest, "invalid_json", err.Error()}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t, e := r.lookup(req)
	switch {
	case e != nil:
		return e
	case t.parsed != nil:
		return &apiError{http.StatusConflict, "conflict", "the parsed message was posted already"}
	}
	t.parsed = data
	t.partIDs = ids
	for _, id := range ids {
		t.parts[id] = &blob{total: -1}
	}
	r.touch(t)
	etag, body := r.view(t)
	writeTx(w, http.StatusOK, etag, body)
	return nil
}

// createIDs lists the distinct create_id values of a parsed-message
// document, sorted.
func createIDs(data []byte) ([]string, error) {
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, errors.New("the parsed message must be a JSON object")
	}
	var ids []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if id, ok := v["create_id"].(string); ok {
				ids = append(ids, id)
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
	if slices.Contains(ids, "") {
		return nil, errors.New("a create_id is empty")
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}
