package router

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzAppendOf: the upload headers of a blob PUT never panic, and what they accept is a
// consistent range: within its total, at the offset given, of the body's length.
func FuzzAppendOf(f *testing.F) {
	for _, seed := range []string{"bytes 0-9/10", "bytes 5-9/*", "bytes 9-0/10", "bytes 0-99999999999999999999/*", "bytes */10", ""} {
		f.Add(seed, "", int64(10))
	}
	f.Add("", "10", int64(0))
	f.Fuzz(func(t *testing.T, contentRange, finalize string, length int64) {
		r := httptest.NewRequest("PUT", "/transactions/x/body", strings.NewReader(""))
		r.ContentLength = length
		if contentRange != "" {
			r.Header.Set("Content-Range", contentRange)
		}
		if finalize != "" {
			r.Header.Set("X-Finalize-Blob-Length", finalize)
		}
		a, err := appendOf(r)
		if err != nil {
			return
		}
		if a.Offset < 0 || (a.Total >= 0 && a.Offset > a.Total) {
			t.Errorf("accepted %q %q as offset %d of %d", contentRange, finalize, a.Offset, a.Total)
		}
		if contentRange != "" && a.Total >= 0 && a.Offset+length > a.Total {
			t.Errorf("accepted %q with %d bytes past the total %d", contentRange, length, a.Total)
		}
	})
}
