package dsn

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// TypedAddress is an address with its RFC 3464 address type, as ORCPT
// carries it and Original-Recipient reports it: {"rfc822", "bob@example.com"}.
type TypedAddress struct {
	Type    string
	Address string
}

// DecodeXtext decodes an RFC 3461 §4 xtext value such as ENVID: "+XX" is the
// byte with hex value XX, other characters stand for themselves. The text
// must decode to printable ASCII, as RFC 3461 requires of what is encoded,
// which keeps control characters out of the DSN.
func DecodeXtext(s string) (string, error) {
	return decodeXtext(s, false)
}

// ParseORCPT parses an ORCPT value, addr-type ";" xtext (RFC 3461 §4.2),
// and decodes the address. For the "utf-8" type (RFC 6533 §3) the address
// may also hold raw UTF-8 and \x{HEX} escapes for Unicode code points. The
// type is returned in lower case; types are case-insensitive.
func ParseORCPT(value string) (TypedAddress, error) {
	typ, enc, ok := strings.Cut(value, ";")
	if !ok || !isAtom(typ) || enc == "" {
		return TypedAddress{}, fmt.Errorf("dsn: ORCPT=%s: want addr-type;address", value)
	}
	typ = strings.ToLower(typ)
	addr, err := decodeXtext(enc, typ == "utf-8")
	if err != nil {
		return TypedAddress{}, fmt.Errorf("dsn: ORCPT=%s: %w", value, err)
	}
	return TypedAddress{typ, addr}, nil
}

// decodeXtext decodes xtext; with utf8Addr, also RFC 6533's
// utf-8-addr-xtext and utf-8-addr-unitext forms (\x{HEX} escapes, raw UTF-8).
func decodeXtext(s string, utf8Addr bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '+':
			hex := s[i+1 : min(i+3, len(s))]
			v, err := hexValue(hex, 2, 2)
			if err != nil || v < ' ' || v > '~' {
				return "", fmt.Errorf("bad escape %q", "+"+hex)
			}
			b.WriteByte(byte(v))
			i += 3
		case utf8Addr && strings.HasPrefix(s[i:], `\x{`):
			hex, _, ok := strings.Cut(s[i+3:], "}")
			v, err := hexValue(hex, 1, 6)
			if !ok || err != nil || !utf8.ValidRune(rune(v)) {
				return "", fmt.Errorf(`bad escape at %q`, s[i:])
			}
			b.WriteRune(rune(v))
			i += 3 + len(hex) + 1
		case c > ' ' && c < 0x7f && c != '=' || utf8Addr && c >= utf8.RuneSelf:
			b.WriteByte(c)
			i++
		default:
			return "", fmt.Errorf("character %q not allowed", c)
		}
	}
	out := b.String()
	if !utf8.ValidString(out) || strings.IndexFunc(out, unicode.IsControl) >= 0 {
		return "", fmt.Errorf("%q is not printable UTF-8", out)
	}
	return out, nil
}

// hexValue parses minLen to maxLen hex digits.
func hexValue(s string, minLen, maxLen int) (uint64, error) {
	if len(s) < minLen || len(s) > maxLen {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseUint(s, 16, 32)
}

// isAtom reports whether s is an RFC 5322 atom, the syntax of addr-type.
func isAtom(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		alnum := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && !strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", rune(c)) {
			return false
		}
	}
	return true
}
