package mime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

type blobMap map[string]string

func parseFile(t *testing.T, name string, maxInline int) (any, blobMap) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	blobs := blobMap{}
	raw, err := Parse(f, maxInline, func(id, ct string, r io.Reader) error {
		if _, dup := blobs[id]; dup {
			return fmt.Errorf("duplicate blob id %q", id)
		}
		b, err := io.ReadAll(r)
		blobs[id] = string(b)
		return err
	})
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("Parse(%s) gave invalid JSON: %v\n%s", name, err, raw)
	}
	return v, blobs
}

func loadJSON(t *testing.T, name string) any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// renumber rewrites create_id values to "0", "1", ... in order of first
// appearance ("parts" tree first, which is tree order). The reference
// JSON files for multipart2/related were produced with a blob counter
// shared across test cases (ids start at 2 and 4); ids per message
// start at "0" (§8.3).
func renumber(v any) {
	ids := map[string]string{}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if id, ok := x["create_id"].(string); ok {
				if _, ok := ids[id]; !ok {
					ids[id] = strconv.Itoa(len(ids))
				}
				x["create_id"] = ids[id]
			}
			for _, k := range []string{"parts", "text_body", "related_attachments", "file_attachments", "content"} {
				if c, ok := x[k]; ok {
					walk(c)
				}
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", " ")
	return string(b)
}

func TestParseReference(t *testing.T) {
	for _, tc := range []struct {
		name  string
		blobs blobMap
	}{
		{"multipart", blobMap{"0": "yolocat", "1": "yolocat2"}},
		{"multipart2", blobMap{"0": "yolocat", "1": "yolocat2"}},
		{"related", blobMap{"0": "yolocat"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, blobs := parseFile(t, tc.name+".msg", 1<<20)
			want := loadJSON(t, tc.name+".json")
			renumber(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%s\nwant\n%s", dump(got), dump(want))
			}
			if !reflect.DeepEqual(blobs, tc.blobs) {
				t.Errorf("blobs = %q, want %q", blobs, tc.blobs)
			}
		})
	}
}

func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

// TestParseSmallInline: §11.1 item 6 (max_inline 8).
func TestParseSmallInline(t *testing.T) {
	got, blobs := parseFile(t, "multipart.msg", 8)
	wantBlobs := blobMap{"0": "<b>hello</b>", "1": "yolocat", "2": "yolocat2"}
	if !reflect.DeepEqual(blobs, wantBlobs) {
		t.Errorf("blobs = %q, want %q", blobs, wantBlobs)
	}
	// Expected: multipart.json with html as blob 0 and the images 1, 2.
	want := loadJSON(t, "multipart.json")
	html := get(want, "parts", "parts", 0, "parts", 0, "parts", 1).(map[string]any)
	html["content"] = map[string]any{"create_id": "0"}
	get(want, "text_body", 1).(map[string]any)["content"] = map[string]any{"create_id": "0"}
	get(want, "parts", "parts", 0, "parts", 1, "content").(map[string]any)["create_id"] = "1"
	get(want, "related_attachments", 0, "content").(map[string]any)["create_id"] = "1"
	get(want, "parts", "parts", 1, "content").(map[string]any)["create_id"] = "2"
	get(want, "file_attachments", 0, "content").(map[string]any)["create_id"] = "2"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", dump(got), dump(want))
	}
	if s := get(got, "text_body", 0, "content", "inline"); s != "hello" {
		t.Errorf("text_body[0] inline = %v", s)
	}
	if s := get(got, "related_attachments", 0, "content_id"); s != "xyz" {
		t.Errorf("content_id = %v", s)
	}
	if s := get(got, "file_attachments", 0, "filename"); s != "funny cats.png" {
		t.Errorf("filename = %v", s)
	}
}

func TestParseRobustness(t *testing.T) {
	t.Run("nested", func(t *testing.T) {
		got, _ := parseFile(t, "nested.msg", 1<<20)
		if ct := get(got, "parts", "content_type"); ct != "message/rfc822" {
			t.Fatalf("content_type = %v", ct)
		}
		inner := get(got, "parts", "parts", 0)
		if s := get(inner, "content", "inline"); s != "hello\r\n" {
			t.Errorf("inner content = %q\n%s", s, dump(got))
		}
		if s := get(inner, "headers", 2, 1); s != "def@xyz" {
			t.Errorf("inner message-id = %v", s)
		}
		if tb := get(got, "text_body"); tb != nil {
			t.Errorf("text_body = %v", tb)
		}
	})
	t.Run("bad_multipart", func(t *testing.T) {
		// No close delimiter: best effort, both parts kept.
		got, _ := parseFile(t, "bad_multipart.msg", 1<<20)
		if s := get(got, "parts", "parts", 0, "content", "inline"); s != "hello      " {
			t.Errorf("part 0 = %q", s)
		}
		if s := get(got, "parts", "parts", 1, "content", "inline"); s != "<b>hello</b>\r\n\r\n" {
			t.Errorf("part 1 = %q", s)
		}
		if n := len(get(got, "text_body").([]any)); n != 2 {
			t.Errorf("text_body has %d entries", n)
		}
	})
	t.Run("unknown_content_type", func(t *testing.T) {
		got, blobs := parseFile(t, "unknown_content_type.msg", 1<<20)
		if s := get(got, "parts", "content", "create_id"); s != "0" || blobs["0"] != "hello\r\n" {
			t.Errorf("got %s blobs %q", dump(got), blobs)
		}
	})
	t.Run("utf8_headers", func(t *testing.T) {
		got, _ := parseFile(t, "utf8_headers.msg", 1<<20)
		if s := get(got, "parts", "headers", 1, 1); s != "hello 世界" {
			t.Errorf("subject = %q", s)
		}
		if s := get(got, "parts", "headers", 0, 1, 0, "address"); s != "alice@example.com" {
			t.Errorf("from = %s", dump(get(got, "parts", "headers", 0)))
		}
		if s := get(got, "parts", "headers", 4, 1); s != "from time-becomes-a-loop.example.com with ESMTP;          Fri, 13 Feb 2009 23:31:29 +0000" {
			t.Errorf("received = %q", s)
		}
	})
}

func TestParseEdgeCases(t *testing.T) {
	deep := strings.Repeat("content-type: multipart/mixed; boundary=b\r\n\r\n--b\r\n", 15) + "content-type: text/plain\r\n\r\nx\r\n"
	for name, msg := range map[string]string{
		"empty":           "",
		"headers only":    "Subject: x",
		"no boundary":     "content-type: multipart/mixed\r\n\r\nbody",
		"deep":            deep,
		"qp":              "content-type: text/plain; charset=iso-8859-1\r\ncontent-transfer-encoding: quoted-printable\r\n\r\ncaf=E9=\r\n!",
		"bad base64":      "content-type: image/png\r\ncontent-transfer-encoding: base64\r\n\r\n!!!eW9=sb2===NhdA==xx",
		"rfc822-headers":  "content-type: multipart/report; boundary=b\r\n\r\n--b\r\ncontent-type: text/rfc822-headers\r\n\r\nSubject: a\r\n b\r\n--b--\r\n",
		"signed":          "content-type: multipart/signed; boundary=s\r\n\r\n--s\r\ncontent-type: text/plain\r\n\r\nhi\r\n--s\r\ncontent-type: application/pgp-signature\r\n\r\nsig\r\n--s--\r\n",
		"long line":       "content-type: text/plain\r\n\r\n" + strings.Repeat("a", 200000),
		"bad header line": ": x\r\nfoo\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			raw, err := Parse(strings.NewReader(msg), 100, func(string, string, io.Reader) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(raw) {
				t.Fatalf("invalid JSON %s", raw)
			}
			var v any
			_ = json.Unmarshal(raw, &v)
			switch name {
			case "qp":
				if s := get(v, "parts", "content", "inline"); s != "café!" {
					t.Errorf("qp = %q", s)
				}
			case "rfc822-headers":
				if s := get(v, "parts", "parts", 0, "parts", 0, "headers", 0, 1); s != "a b" {
					t.Errorf("rfc822-headers: %s", raw)
				}
			case "signed":
				if s := get(v, "text_body", 0, "content", "inline"); s != "hi" {
					t.Errorf("signed: %s", raw)
				}
			case "deep":
				d := 0
				for n := get(v, "parts"); get(n, "parts") != nil; n = get(n, "parts", 0) {
					d++
				}
				if d != MaxParseDepth {
					t.Errorf("depth %d: %s", d, raw)
				}
			}
		})
	}
}

func TestParseStoreError(t *testing.T) {
	b, _ := os.ReadFile("testdata/multipart.msg")
	boom := fmt.Errorf("boom")
	_, err := Parse(bytes.NewReader(b), 0, func(string, string, io.Reader) error { return boom })
	if err != boom {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"multipart", "multipart2", "related", "nested", "bad_multipart", "unknown_content_type", "utf8_headers"} {
		b, err := os.ReadFile(filepath.Join("testdata", n+".msg"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, 8)
	}
	f.Fuzz(func(t *testing.T, msg []byte, maxInline int) {
		maxInline %= 1 << 16
		next := 0
		raw, err := Parse(bytes.NewReader(msg), maxInline, func(id, _ string, r io.Reader) error {
			if id != strconv.Itoa(next) {
				t.Fatalf("blob id %q, want %d", id, next)
			}
			next++
			_, err := io.Copy(io.Discard, r)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(raw) {
			t.Fatalf("invalid JSON: %s", raw)
		}
	})
}
