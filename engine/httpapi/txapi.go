package httpapi

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/koukan/koukan/engine/tx"
)

// The transaction API's request headers and the transaction model's errors, read and
// answered the same way by every server of that API (the router, the gateway's REST
// listener).

// ETagHeader reads a version from If-Match or If-None-Match, tolerating the quotes and weak
// prefix of RFC 9110 entity tags; ok is false when the header is absent.
func ETagHeader(r *http.Request, name string) (version int64, ok bool, err error) {
	v := strings.TrimSpace(r.Header.Get(name))
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(v, "W/"), `"`), 10, 64)
	if err != nil {
		return 0, false, Problem(http.StatusBadRequest, "invalid_header", "%s must be a transaction version (an ETag), not %q", name, v)
	}
	return n, true, nil
}

// ContentRange is the Content-Range of a blob holding length bytes of total (-1: not known
// yet): "bytes 0-(length-1)/(total or *)", or "bytes */total" while it is empty.
func ContentRange(length, total int64) string {
	t := "*"
	if total >= 0 {
		t = strconv.FormatInt(total, 10)
	}
	if length == 0 {
		return "bytes */" + t
	}
	return "bytes 0-" + strconv.FormatInt(length-1, 10) + "/" + t
}

// Upload is what a blob PUT's headers say about its bytes: the whole blob (no header), a
// piece (Content-Range), or no bytes and the blob's final length (X-Finalize-Blob-Length).
type Upload struct {
	Whole bool
	// Finalize: the body is empty and the blob ends at Total.
	Finalize bool
	// First and Last delimit a piece.
	First, Last int64
	// Total is the declared length; -1 when not declared.
	Total int64
}

var rangeRE = regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+|\*)$`)

// ParseUpload reads the upload headers of a blob PUT, checking them against each other and
// against the request's Content-Length.
func ParseUpload(r *http.Request) (Upload, error) {
	u := Upload{Total: -1}
	cr, fin := r.Header.Get("Content-Range"), r.Header.Get("X-Finalize-Blob-Length")
	switch {
	case fin != "" && cr != "":
		return u, Problem(http.StatusBadRequest, "invalid_header", "send either Content-Range or X-Finalize-Blob-Length, not both")
	case fin != "":
		n, err := strconv.ParseInt(fin, 10, 64)
		if err != nil || n < 0 {
			return u, Problem(http.StatusBadRequest, "invalid_header", "x-finalize-blob-length must be a byte count, not %q", fin)
		}
		if r.ContentLength != 0 {
			return u, Problem(http.StatusBadRequest, "invalid_header", "x-finalize-blob-length goes with an empty body")
		}
		u.Finalize, u.First, u.Total = true, n, n
	case cr != "":
		m := rangeRE.FindStringSubmatch(cr)
		if m == nil {
			return u, Problem(http.StatusBadRequest, "invalid_header", "content-range must be \"bytes first-last/total\" or \"bytes first-last/*\", not %q", cr)
		}
		first, err1 := strconv.ParseInt(m[1], 10, 64)
		last, err2 := strconv.ParseInt(m[2], 10, 64)
		if err1 != nil || err2 != nil || last < first {
			return u, Problem(http.StatusBadRequest, "invalid_header", "content-range %q is not a range of bytes", cr)
		}
		if m[3] != "*" {
			total, err := strconv.ParseInt(m[3], 10, 64)
			if err != nil || last >= total {
				return u, Problem(http.StatusBadRequest, "invalid_header", "content-range %q ends past its total", cr)
			}
			u.Total = total
		}
		if r.ContentLength != last-first+1 {
			has := "no Content-Length"
			if r.ContentLength >= 0 {
				has = strconv.FormatInt(r.ContentLength, 10)
			}
			return u, Problem(http.StatusBadRequest, "invalid_header",
				"content-range %q covers %d bytes but the body has %s", cr, last-first+1, has)
		}
		u.First, u.Last = first, last
	default:
		u.Whole = true
	}
	return u, nil
}

// RequestError is the problem a transaction request's own mistake is answered with: an
// *Error a handler returned, a field or JSON error of the transaction model, a conflicting
// update, a body over the size limit. It is nil for any other error.
func RequestError(err error) *Error {
	var (
		ae     *Error
		fe     *tx.FieldError
		se     *tx.SyntaxError
		ce     *tx.ConflictError
		tooBig *http.MaxBytesError
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &fe):
		return &Error{Status: http.StatusBadRequest, Code: "invalid_field", Message: fe.Error(), Field: fe.Field}
	case errors.As(err, &se):
		return Problem(http.StatusBadRequest, "invalid_json", "%s", se.Error())
	case errors.As(err, &ce):
		return &Error{Status: http.StatusConflict, Code: "conflict", Message: ce.Error(), Field: ce.Field}
	case errors.As(err, &tooBig):
		return Problem(http.StatusRequestEntityTooLarge, "too_large", "request body exceeds the limit of %d bytes", tooBig.Limit)
	}
	return nil
}
