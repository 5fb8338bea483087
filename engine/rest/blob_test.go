package rest

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/koukan/koukan/engine/rest/resttest"
	"github.com/koukan/koukan/engine/tx"
)

// onlyReader hides everything of a reader but Read (Seek in particular).
type onlyReader struct{ io.Reader }

// putVia creates a transaction on a receiver with middleware mw, PUTs r
// with the client options and length given, and returns the receiver's copy,
// the PUTs' headers and PutBlob's error.
func putVia(t *testing.T, opts Options, mw func(http.Handler) http.Handler, r io.Reader, length int64) (resttest.Received, []http.Header, error) {
	t.Helper()
	rec := &recorder{}
	wrap := rec.wrap
	if mw != nil {
		wrap = func(h http.Handler) http.Handler { return rec.wrap(mw(h)) }
	}
	rcv := newReceiver(t, resttest.Options{Middleware: wrap})
	ctx := testCtx(t, 5*time.Second)
	up, err := newClient(t, opts).Create(ctx, rcv.URL()+"/senders/x/transactions", envelope())
	if err != nil {
		t.Fatal(err)
	}
	err = up.PutBlob(ctx, up.State().Body.(*tx.Blob).URI, r, length)
	var hs []http.Header
	for _, s := range rec.of("PUT") {
		hs = append(hs, s.header)
	}
	return rcv.Transactions()[0], hs, err
}

// ranges lists the upload headers of PUTs: the Content-Range, "fin N" for
// X-Finalize-Blob-Length, "whole" for neither.
func ranges(hs []http.Header) string {
	var out []string
	for _, h := range hs {
		switch {
		case h.Get("Content-Range") != "":
			out = append(out, strings.TrimPrefix(h.Get("Content-Range"), "bytes "))
		case h.Get("X-Finalize-Blob-Length") != "":
			out = append(out, "fin "+h.Get("X-Finalize-Blob-Length"))
		default:
			out = append(out, "whole")
		}
	}
	return strings.Join(out, " ")
}

func message(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

func TestPutBlob(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		chunk     int
		size      int
		unknown   bool
		want      string
		seekFalse bool
	}{
		{"one put", 0, 20, false, "whole", false},
		{"one streamed put", 0, 20, true, "whole", true},
		{"fits a chunk", 7, 7, false, "whole", false},
		{"pieces", 7, 20, false, "0-6/* 7-13/* 14-19/20", false},
		{"pieces of unknown length", 7, 20, true, "0-6/* 7-13/* 14-19/20", true},
		{"ends at a piece boundary", 7, 14, true, "0-6/* 7-13/* fin 14", true},
		{"empty of unknown length", 7, 0, true, "fin 0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg := message(tc.size)
			var r io.Reader = bytes.NewReader(msg)
			if tc.seekFalse {
				r = onlyReader{r}
			}
			length := int64(tc.size)
			if tc.unknown {
				length = -1
			}
			got, hs, err := putVia(t, Options{ChunkSize: tc.chunk}, nil, r, length)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Body, msg) || !got.BodyFinalized {
				t.Errorf("receiver has %q finalized %v", got.Body, got.BodyFinalized)
			}
			if ranges(hs) != tc.want {
				t.Errorf("PUTs %q, want %q", ranges(hs), tc.want)
			}
		})
	}
}

// fault is a middleware that lets fn handle the n-th PUT (from 1) instead of
// the receiver; fn may call the receiver itself.
func fault(n int, fn func(w http.ResponseWriter, r *http.Request, next http.Handler)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		puts := 0
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut {
				if puts++; puts == n {
					fn(w, r, next)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Upstreams that lose bytes, or hold more than the client knows: the upload
// carries on from what the upstream holds.
func TestPutBlobResync(t *testing.T) {
	t.Parallel()
	msg := message(20)
	for _, tc := range []struct {
		name string
		mw   func(http.Handler) http.Handler
		want string
	}{{
		// The second piece is half stored, then the connection "breaks":
		// 416 with what the receiver really holds.
		"416 midway", fault(2, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			body, _ := io.ReadAll(r.Body)
			half := httptest.NewRequest(http.MethodPut, r.URL.String(), bytes.NewReader(body[:3]))
			half.Header.Set("Content-Range", "bytes 7-9/*")
			res := httptest.NewRecorder()
			next.ServeHTTP(res, half)
			w.Header().Set("Content-Range", res.Header().Get("Content-Range"))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		}),
		"0-6/* 7-13/* 10-13/* 14-19/20",
	}, {
		// The second piece is dropped, and the 200 says so.
		"dropped piece", fault(2, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Range", "bytes 0-6/*")
			w.WriteHeader(http.StatusOK)
		}),
		"0-6/* 7-13/* 7-13/* 14-19/20",
	}, {
		// An earlier attempt already stored 10 bytes: the receiver skips
		// the overlap and says it holds 10, so the client skips ahead.
		"upstream holds more", fault(1, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			early := httptest.NewRequest(http.MethodPut, r.URL.String(), bytes.NewReader(msg[:10]))
			early.Header.Set("Content-Range", "bytes 0-9/*")
			next.ServeHTTP(httptest.NewRecorder(), early)
			next.ServeHTTP(w, r)
		}),
		"0-6/* 10-16/* 17-19/20",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, hs, err := putVia(t, Options{ChunkSize: 7}, tc.mw, onlyReader{bytes.NewReader(msg)}, -1)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Body, msg) || !got.BodyFinalized {
				t.Errorf("receiver has %q finalized %v", got.Body, got.BodyFinalized)
			}
			if ranges(hs) != tc.want {
				t.Errorf("PUTs %q, want %q", ranges(hs), tc.want)
			}
		})
	}
}

func TestPutBlobErrors(t *testing.T) {
	t.Parallel()
	always := func(status int, cr string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPut {
					next.ServeHTTP(w, r)
					return
				}
				if cr != "" {
					w.Header().Set("Content-Range", cr)
				}
				w.WriteHeader(status)
			})
		}
	}
	failing := iotest.ErrReader(errors.New("disk on fire"))
	for _, tc := range []struct {
		name   string
		chunk  int
		mw     func(http.Handler) http.Handler
		r      io.Reader
		length int64
		want   Kind
		puts   int
	}{
		{"no progress", 7, always(416, "bytes */*"), bytes.NewReader(message(20)), 20, KindProtocol, maxStalls + 1},
		{"416 without range", 7, always(416, ""), bytes.NewReader(message(20)), 20, KindProtocol, 1},
		{"upstream holds more than the blob", 7, always(200, "bytes 0-99/*"), bytes.NewReader(message(20)), 20, KindProtocol, 1},
		{"upstream lost a sent piece", 7, fault(2, func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
			w.Header().Set("Content-Range", "bytes 0-2/*")
			w.WriteHeader(416)
		}), bytes.NewReader(message(20)), 20, KindProtocol, 2},
		{"500", 7, always(500, ""), bytes.NewReader(message(20)), 20, KindStatus, 1},
		{"500 one put", 0, always(500, ""), bytes.NewReader(message(20)), 20, KindStatus, 1},
		{"reader fails", 7, nil, failing, -1, KindLocal, 0},
		// A source cut short (an SMTP client gone mid-DATA) is not a short blob.
		{"reader cut short", 7, nil, io.MultiReader(bytes.NewReader(message(10)), iotest.ErrReader(io.ErrUnexpectedEOF)), -1, KindLocal, 1},
		{"reader fails in one put", 0, nil, failing, -1, KindLocal, -1},
		{"reader shorter than length", 7, nil, bytes.NewReader(message(10)), 20, KindLocal, 1},
		{"reader shorter than length in one put", 0, nil, onlyReader{bytes.NewReader(message(10))}, 20, KindLocal, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, hs, err := putVia(t, Options{ChunkSize: tc.chunk}, tc.mw, tc.r, tc.length)
			wantKind(t, err, tc.want)
			if tc.puts >= 0 && len(hs) != tc.puts {
				t.Errorf("%d PUTs, want %d: %s", len(hs), tc.puts, ranges(hs))
			}
		})
	}
}

func TestHeldRange(t *testing.T) {
	for _, tc := range []struct {
		h     string
		held  int64
		known bool
		err   bool
	}{
		{"", 0, false, false},
		{"bytes 0-6/*", 7, true, false},
		{"bytes 0-14/15", 15, true, false},
		{"bytes */*", 0, true, false},
		{"bytes */15", 0, true, false},
		{"bytes 3-6/*", 0, false, true},
		{"bytes 0-x/*", 0, false, true},
		{"bytes 0-99999999999999999999/*", 0, false, true},
	} {
		held, known, err := heldRange(tc.h)
		if held != tc.held || known != tc.known || (err != nil) != tc.err {
			t.Errorf("heldRange(%q) = %d %v %v", tc.h, held, known, err)
		}
	}
}
