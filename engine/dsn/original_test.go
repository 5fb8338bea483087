package dsn

import (
	"bytes"
	"strings"
	"testing"
	"testing/iotest"
)

func TestCRLFWriter(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\r\nb\nc", "a\r\nb\r\nc"},
		{"\n\n", "\r\n\r\n"},
		{"a\rb\n", "a\rb\r\n"},
		{"", ""},
	}
	for _, tt := range tests {
		// Whole, and one byte per write: a CRLF split across writes stays one.
		for _, step := range []int{len(tt.in) + 1, 1} {
			var out bytes.Buffer
			w := &crlfWriter{w: &out}
			for p := []byte(tt.in); len(p) > 0; p = p[min(step, len(p)):] {
				if n, err := w.Write(p[:min(step, len(p))]); err != nil || n != min(step, len(p)) {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if out.String() != tt.want {
				t.Errorf("crlf(%q) in steps of %d = %q; want %q", tt.in, step, out.String(), tt.want)
			}
		}
	}
}

func TestHeaderSection(t *testing.T) {
	tests := []struct {
		name  string
		msg   string
		whole bool
		want  string
	}{
		{"crlf", "A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore", false, "A: 1\r\nB: 2\r\n\r\n"},
		{"lf only", "A: 1\nB: 2\n\nbody\n", false, "A: 1\nB: 2\n\n"},
		{"mixed", "A: 1\r\nB: 2\n\r\nbody", false, "A: 1\r\nB: 2\n\r\n"},
		{"folded", "A: 1\r\n  2\r\n\r\nbody", false, "A: 1\r\n  2\r\n\r\n"},
		{"no body", "A: 1\r\nB: 2\r\n", true, "A: 1\r\nB: 2\r\n"},
		{"no line end", "A: 1\r\nB: 2", true, "A: 1\r\nB: 2"},
		{"cut at line end", "A: 1\r\nB: 2\r\nC: trunc", false, "A: 1\r\nB: 2\r\n"},
		{"no line at all", "A: 1", false, ""},
		{"empty header section", "\r\nbody", false, "\r\n"},
		{"empty", "", true, ""},
	}
	for _, tt := range tests {
		if got := string(headerSection([]byte(tt.msg), tt.whole)); got != tt.want {
			t.Errorf("%s: headerSection = %q; want %q", tt.name, got, tt.want)
		}
	}
}

func TestReadOriginal(t *testing.T) {
	// A header section of 100 KiB comes back as its first 64 KiB, cut after
	// the last line end.
	big := "Message-ID: <big@example.com>\r\n" + strings.Repeat("X-Filler: "+strings.Repeat("x", 90)+"\r\n", 1000)
	bigCut := big[:strings.LastIndex(big[:maxHeaderSection], "\n")+1]
	tests := []struct {
		name       string
		msg        string
		wantHeader string
		wantID     string
		wantUTF8   bool
	}{
		{
			name:       "crlf",
			msg:        "Subject: hi\r\nMessage-ID: <abc@example.com>\r\n\r\nbody\r\n",
			wantHeader: "Subject: hi\r\nMessage-ID: <abc@example.com>\r\n\r\n",
			wantID:     "abc@example.com",
		},
		{
			name:       "lf only",
			msg:        "Subject: hi\nMessage-Id:  <abc@example.com> \n\nbody\n",
			wantHeader: "Subject: hi\r\nMessage-Id:  <abc@example.com> \r\n\r\n",
			wantID:     "abc@example.com",
		},
		{
			name:       "no blank line, no final line end",
			msg:        "Subject: hi\r\nMessage-ID: <abc@example.com>",
			wantHeader: "Subject: hi\r\nMessage-ID: <abc@example.com>\r\n",
			wantID:     "abc@example.com",
		},
		{
			name:       "malformed field after the id",
			msg:        "Message-ID: <abc@example.com>\r\nnot a field\r\n\r\n",
			wantHeader: "Message-ID: <abc@example.com>\r\nnot a field\r\n\r\n",
			wantID:     "abc@example.com",
		},
		{
			name:       "bad message-id",
			msg:        "Message-ID: abc\r\n\r\n",
			wantHeader: "Message-ID: abc\r\n\r\n",
		},
		{
			name:       "utf-8 header",
			msg:        "Subject: caf\u00e9\r\n\r\nbody",
			wantHeader: "Subject: caf\u00e9\r\n\r\n",
			wantUTF8:   true,
		},
		{
			name:       "utf-8 only in the body",
			msg:        "Subject: cafe\r\n\r\ncaf\u00e9",
			wantHeader: "Subject: cafe\r\n\r\n",
		},
		{
			name:       "header section over 64 KiB",
			msg:        big + "\r\nbody",
			wantHeader: bigCut,
			wantID:     "big@example.com",
		},
		{
			name: "one line over 64 KiB",
			msg:  strings.Repeat("x", 70<<10),
		},
	}
	for _, tt := range tests {
		// One byte per read: Peek must still fill its 64 KiB.
		o, err := readOriginal(iotest.OneByteReader(strings.NewReader(tt.msg)))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if string(o.header) != tt.wantHeader {
			t.Errorf("%s: header = %.200q; want %.200q", tt.name, o.header, tt.wantHeader)
		}
		if o.messageID != tt.wantID || o.utf8 != tt.wantUTF8 {
			t.Errorf("%s: id %q, utf8 %v; want %q, %v", tt.name, o.messageID, o.utf8, tt.wantID, tt.wantUTF8)
		}
		var full bytes.Buffer
		if err := o.writeFull(&full); err != nil {
			t.Fatal(err)
		}
		want := strings.ReplaceAll(strings.ReplaceAll(tt.msg, "\r\n", "\n"), "\n", "\r\n")
		if full.String() != want {
			t.Errorf("%s: writeFull did not return the whole message with CRLF", tt.name)
		}
	}
}
