package tx

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file reads JSON strictly and reports problems as *FieldError with the
// path of the bad value, never with encoding/json's Go-flavoured messages.
// The whole document is checked for syntax once (checkSyntax); the helpers
// below then walk already-valid raw values.

// member is one key of a JSON object, in document order.
type member struct {
	key string
	raw json.RawMessage
}

func checkSyntax(data []byte) error {
	// The common case, a valid document, costs two scans without copying anything.
	if json.Valid(data) && utf8.Valid(data) {
		return nil
	}
	var v json.RawMessage
	err := json.Unmarshal(data, &v)
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return &SyntaxError{Offset: se.Offset, Reason: se.Error()}
	}
	if err != nil {
		return &SyntaxError{Reason: "unreadable document"}
	}
	// encoding/json would quietly replace bad bytes in the strings it
	// decodes but keep them in raw values, which a UTF-8 database rejects.
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return &SyntaxError{Offset: int64(i + 1), Reason: "invalid UTF-8"}
		}
		i += n
	}
	return nil
}

// joinPath names key inside the value at path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

func firstByte(raw json.RawMessage) byte {
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// readObject returns the members of the object raw, rejecting other types and
// duplicate keys. raw is valid JSON (checkSyntax), so one pass over its bytes finds
// each member: far cheaper than a tokenizing decoder, which this hot path (every read
// of a stored transaction) used to spend most of its time in.
func readObject(raw json.RawMessage, path string) ([]member, error) {
	b := raw
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, fieldErr(path, "must be an object")
	}
	var out []member
	for i = skipSpace(b, i+1); i < len(b) && b[i] != '}'; {
		if b[i] != '"' {
			return nil, fieldErr(path, "must be an object")
		}
		end := skipString(b, i)
		key, err := unquote(b[i:end])
		if err != nil {
			return nil, fieldErr(path, "must be an object")
		}
		if i = skipSpace(b, end); i >= len(b) || b[i] != ':' {
			return nil, fieldErr(path, "must be an object")
		}
		i = skipSpace(b, i+1)
		vend := skipValue(b, i)
		for _, m := range out {
			if m.key == key {
				return nil, fieldErr(joinPath(path, key), "duplicate key")
			}
		}
		out = append(out, member{key, append(json.RawMessage(nil), b[i:vend]...)})
		if i = skipSpace(b, vend); i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return out, nil
}

// readList returns the elements of the array raw.
func readList(raw json.RawMessage, path string) ([]json.RawMessage, error) {
	b := raw
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, fieldErr(path, "must be a list")
	}
	var out []json.RawMessage
	for i = skipSpace(b, i+1); i < len(b) && b[i] != ']'; {
		end := skipValue(b, i)
		out = append(out, append(json.RawMessage(nil), b[i:end]...))
		if i = skipSpace(b, end); i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return out, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index just past the (valid) JSON value that starts at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	}
	for i < len(b) && !strings.ContainsRune(",}] \t\n\r", rune(b[i])) {
		i++
	}
	return i
}

// unquote decodes a JSON string literal, the common case without escapes cheaply.
func unquote(lit []byte) (string, error) {
	if len(lit) >= 2 && bytes.IndexByte(lit, '\\') < 0 {
		return string(lit[1 : len(lit)-1]), nil
	}
	var s string
	err := json.Unmarshal(lit, &s)
	return s, err
}

func isEmptyList(raw json.RawMessage) bool {
	l, err := readList(raw, "")
	return err == nil && len(l) == 0
}

func readString(raw json.RawMessage, path string) (string, error) {
	if s, ok := plainString(raw); ok {
		return s, nil
	}
	var s string
	if firstByte(raw) != '"' || json.Unmarshal(raw, &s) != nil {
		return "", fieldErr(path, "must be a string")
	}
	return s, nil
}

// plainString reads a JSON string literal without escapes, the common case, without
// encoding/json: a quote at each end and valid UTF-8 without quotes, backslashes or control
// characters in between.
func plainString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c < 0x20 || c == '"' || c == '\\' {
			return "", false
		}
	}
	if !utf8.Valid(inner) {
		return "", false
	}
	return string(inner), true
}

// readText is readString for text that ends up in a protocol line (SMTP
// commands, MIME headers, URLs), where control characters would allow
// injection.
func readText(raw json.RawMessage, path string) (string, error) {
	s, err := readString(raw, path)
	if err == nil && hasControl(s) {
		return "", fieldErr(path, "must not contain control characters")
	}
	return s, err
}

func readBool(raw json.RawMessage, path string) (bool, error) {
	switch string(raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fieldErr(path, "must be true or false")
}

// readInt accepts only integer literals (no fraction or exponent) in [lo, hi].
func readInt(raw json.RawMessage, path string, lo, hi int64) (int64, error) {
	s := string(raw)
	if s == "" || strings.ContainsAny(s, ".eE") || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return 0, fieldErr(path, "must be an integer")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fieldErr(path, "must be an integer from %d to %d", lo, hi)
	}
	return n, nil
}

// readRaw keeps an opaque value, compacted so that equal documents compare
// equal byte for byte. Null is rejected: no field is ever set back to null.
func readRaw(raw json.RawMessage, path string) (json.RawMessage, error) {
	if isNull(raw) {
		return nil, fieldErr(path, "must not be null")
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, fieldErr(path, "unreadable value")
	}
	return json.RawMessage(b.Bytes()), nil
}

// readRawMap reads an object of opaque values (filter_output, retry, ...).
func readRawMap(raw json.RawMessage, path string) (map[string]json.RawMessage, error) {
	mem, err := readObject(raw, path)
	if err != nil {
		return nil, err
	}
	out := make(map[string]json.RawMessage, len(mem))
	for _, m := range mem {
		if out[m.key], err = readRaw(m.raw, joinPath(path, m.key)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// notAllowed is the error for a key the schema has but context c does not carry.
func notAllowed(path string, c Context) error { return fieldErr(path, "not allowed in %s", c) }

// unknownKey is the error for a key the schema does not have.
func unknownKey(path, key string) error { return fieldErr(joinPath(path, key), "unknown field") }

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}
