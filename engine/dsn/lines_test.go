package dsn

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"550-5.1.1 first\r\n550 5.1.1 second", "550-5.1.1 first 550 5.1.1 second"},
		{"a\r\nBcc: evil@example.com", "a Bcc: evil@example.com"},
		{"  tabs\tand   spaces  ", "tabs and spaces"},
		{"nul\x00del\x7fnel\u0085", "nul del nel"},
		{"bad \xff utf-8", "bad \uFFFD utf-8"},
		{"zoë", "zoë"},
	}
	for _, tt := range tests {
		if got := clean(tt.in); got != tt.want {
			t.Errorf("clean(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestWrap(t *testing.T) {
	words := strings.Repeat("lorem ipsum dolor ", 20) + "end"
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"short", "a b c", []string{"a b c"}},
		{"exact", "abc def", []string{"abc def"}},
		{"at space", "abcd efgh", []string{"abcd", "efgh"}},
		{"long word", "ab cdefghijkl mn", []string{"ab", "cdefghijkl", "mn"}},
		{"no space", "abcdefghijkl", []string{"abcdefghijkl"}},
	}
	for _, tt := range tests {
		if got := wrap(tt.in, 7); !slices.Equal(got, tt.want) {
			t.Errorf("%s: wrap(%q, 7) = %q; want %q", tt.name, tt.in, got, tt.want)
		}
	}

	lines := wrap(words, lineWidth)
	if strings.Join(lines, " ") != words {
		t.Errorf("wrap lost text: %q", lines)
	}
	for _, l := range lines {
		if len(l) > lineWidth {
			t.Errorf("line of %d bytes: %q", len(l), l)
		}
	}

	// A word longer than hardWidth is cut, never inside a character: the
	// "a" puts every rune boundary at an odd offset.
	huge := "a" + strings.Repeat("é", hardWidth)
	lines = wrap(huge, lineWidth)
	if len(lines) != 3 || strings.Join(lines, "") != huge {
		t.Fatalf("wrap(huge) gave %d lines", len(lines))
	}
	for _, l := range lines {
		if len(l) > hardWidth || !utf8.ValidString(l) {
			t.Errorf("bad cut: %d bytes, valid %v", len(l), utf8.ValidString(l))
		}
	}
}
