package dsn

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// lineWidth is where text is folded or wrapped when it has a space.
	lineWidth = 76
	// hardWidth is where a word with no space is cut, well within RFC 5322's
	// 998 octets per line.
	hardWidth = 900
)

// clean makes text from elsewhere safe to write on one line: valid UTF-8,
// control characters (CR and LF among them) turned to spaces, runs of white
// space collapsed to one space.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// wrap splits cleaned text into lines at single spaces, dropping the space,
// so that each line is at most width bytes where a space allows it. A word
// longer than hardWidth is cut at a character boundary.
func wrap(s string, width int) []string {
	var lines []string
	for len(s) > width {
		i := strings.LastIndexByte(s[:width+1], ' ')
		if i <= 0 {
			i = strings.IndexByte(s, ' ')
		}
		switch {
		case i > 0 && i <= hardWidth:
			lines = append(lines, s[:i])
			s = s[i+1:]
		case len(s) <= hardWidth:
			return append(lines, s)
		default:
			cut := hardWidth
			for !utf8.RuneStart(s[cut]) {
				cut--
			}
			lines = append(lines, s[:cut])
			s = s[cut:]
		}
	}
	return append(lines, s)
}

// isASCII reports whether b has only 7-bit bytes.
func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
