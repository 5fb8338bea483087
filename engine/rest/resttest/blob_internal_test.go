package resttest

import "testing"

// Uploads in pieces: overlaps are skipped, gaps and conflicting totals are
// refused, and the blob is finalized when it reaches its total.
func TestBlobWrite(t *testing.T) {
	type step struct {
		u      upload
		data   string
		status int // 0: accepted
		final  bool
	}
	piece := func(off, total int64) upload { return upload{offset: off, total: total} }
	for _, tc := range []struct {
		name  string
		steps []step
		want  string
		cr    string
	}{
		{"in order", []step{{piece(0, -1), "abc", 0, false}, {piece(3, 5), "de", 0, true}}, "abcde", "bytes 0-4/5"},
		{"overlap", []step{{piece(0, -1), "abc", 0, false}, {piece(1, -1), "bcd", 0, false}}, "abcd", "bytes 0-3/*"},
		{"gap", []step{{piece(0, -1), "abc", 0, false}, {piece(4, -1), "e", 416, false}}, "abc", "bytes 0-2/*"},
		{"early total", []step{{piece(0, 5), "abc", 0, false}, {piece(3, -1), "de", 0, true}}, "abcde", "bytes 0-4/5"},
		{"other total", []step{{piece(0, 5), "abc", 0, false}, {piece(3, 6), "de", 416, false}}, "abc", "bytes 0-2/5"},
		{"past the total", []step{{piece(0, 5), "abc", 0, false}, {piece(3, -1), "def", 416, false}}, "abc", "bytes 0-2/5"},
		{"total below what is held", []step{{piece(0, -1), "abcd", 0, false}, {piece(0, 3), "abc", 416, false}}, "abcd", "bytes 0-3/*"},
		{"finalize", []step{{piece(0, -1), "ab", 0, false}, {upload{finalize: true, offset: 2, total: 2}, "", 0, true}}, "ab", "bytes 0-1/2"},
		{"finalize short", []step{{piece(0, -1), "ab", 0, false}, {upload{finalize: true, offset: 3, total: 3}, "", 416, false}}, "ab", "bytes 0-1/*"},
		{"whole", []step{{upload{whole: true, total: -1}, "abc", 0, true}, {upload{whole: true, total: -1}, "abc", 0, false}}, "abc", "bytes 0-2/3"},
		{"whole again, other bytes", []step{{upload{whole: true, total: -1}, "abc", 0, true}, {upload{whole: true, total: -1}, "xyz", 409, false}}, "abc", "bytes 0-2/3"},
		{"empty", []step{{upload{finalize: true, total: 0}, "", 0, true}}, "", "bytes */0"},
	} {
		b := &blob{total: -1}
		for i, s := range tc.steps {
			final, e := b.write(s.u, []byte(s.data))
			status := 0
			if e != nil {
				status = e.status
			}
			if status != s.status || final != s.final {
				t.Errorf("%s, step %d: status %d final %v, want %d %v", tc.name, i, status, final, s.status, s.final)
			}
		}
		if string(b.data) != tc.want || b.contentRange() != tc.cr {
			t.Errorf("%s: blob %q %s, want %q %s", tc.name, b.data, b.contentRange(), tc.want, tc.cr)
		}
	}
}
