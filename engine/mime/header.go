package mime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	stdmime "mime"
	"net/mail"
	"strings"
	"time"

	"github.com/koukan/koukan/engine/tx"
)

// maxLineLen is the RFC 5322 hard limit on a line, without its CRLF.
const maxLineLen = 998

// foldLen is the length header lines are folded at when possible.
const foldLen = 78

// renderHeaders turns the spec's headers into raw header fields (each
// "Name: value\r\n", folded), validating every value. hasMIMEVersion
// reports whether the spec carries its own MIME-Version.
func renderHeaders(hs []tx.Header) (fields [][]byte, hasMIMEVersion bool, err error) {
	for i, h := range hs {
		path := fmt.Sprintf("headers[%d] (%s)", i, h.Name)
		if !validHeaderName(h.Name) {
			return nil, false, fmt.Errorf("headers[%d]: invalid header name %q", i, h.Name)
		}
		lname := strings.ToLower(h.Name)
		var v string
		switch lname {
		case "from", "to", "cc", "bcc", "reply-to", "sender":
			v, err = addressValue(h.Value, lname == "bcc", lname == "sender")
		case "date":
			v, err = dateValue(h.Value)
		case "message-id", "in-reply-to", "references":
			v, err = idValue(h.Value, lname == "message-id")
		case "content-type", "content-transfer-encoding":
			err = errors.New("is set by the renderer from the parts and may not be given")
		default:
			v, err = stringValue(h.Value)
			if err == nil && lname == "mime-version" {
				if v != "1.0" {
					err = errors.New(`must be "1.0"`)
				}
				hasMIMEVersion = true
			}
		}
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", path, err)
		}
		f, err := foldField(h.Name, v)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", path, err)
		}
		fields = append(fields, f)
	}
	return fields, hasMIMEVersion, nil
}

func validHeaderName(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == ':' })
}

type specAddress struct {
	Address     string `json:"address"`
	DisplayName string `json:"display_name"`
}

func addressValue(raw json.RawMessage, allowEmpty, single bool) (string, error) {
	var as []specAddress
	if err := strictUnmarshal(raw, &as); err != nil {
		return "", errors.New(`must be a list of {"address": ..., "display_name": ...}`)
	}
	if len(as) == 0 && !allowEmpty {
		return "", errors.New("must list at least one address")
	}
	if single && len(as) != 1 {
		return "", errors.New("must list exactly one address")
	}
	out := make([]string, len(as))
	for i, a := range as {
		if a.Address == "" {
			return "", fmt.Errorf("[%d]: address must not be empty", i)
		}
		if _, err := mail.ParseAddress("<" + a.Address + ">"); err != nil {
			return "", fmt.Errorf("[%d]: invalid address %q", i, a.Address)
		}
		if strings.ContainsAny(a.DisplayName, "\r\n") {
			return "", fmt.Errorf("[%d]: display_name must not contain line breaks", i)
		}
		out[i] = formatAddress(a)
	}
	return strings.Join(out, ", "), nil
}

// formatAddress writes a display name that is a plain phrase of atoms
// unquoted (alice a <alice@example.com>, as the reference does) and
// leaves everything else (quoting, RFC 2047 for non-ASCII) to net/mail.
func formatAddress(a specAddress) string {
	ma := mail.Address{Name: a.DisplayName, Address: a.Address}
	s := ma.String()
	if a.DisplayName == "" {
		return strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
	}
	if !isPhraseOfAtoms(a.DisplayName) {
		return s
	}
	// net/mail renders "name" <addr>; drop the quotes.
	if i := strings.LastIndex(s, " <"); i >= 0 {
		return a.DisplayName + s[i:]
	}
	return s
}

func isPhraseOfAtoms(s string) bool {
	for w := range strings.SplitSeq(s, " ") {
		if w == "" {
			return false
		}
		for _, c := range []byte(w) {
			if !isAtext(c) {
				return false
			}
		}
	}
	return true
}

func isAtext(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

type specDate struct {
	UnixSecs *int64 `json:"unix_secs"`
	TZOffset int    `json:"tz_offset"`
}

func dateValue(raw json.RawMessage) (string, error) {
	var d specDate
	if err := strictUnmarshal(raw, &d); err != nil {
		return "", errors.New(`must be {"unix_secs": int, "tz_offset": seconds east of UTC}`)
	}
	if d.UnixSecs == nil || *d.UnixSecs == 0 {
		return "", errors.New("unix_secs must be non-zero")
	}
	if d.TZOffset <= -24*3600 || d.TZOffset >= 24*3600 || d.TZOffset%60 != 0 {
		return "", errors.New("tz_offset must be whole minutes within ±24h")
	}
	t := time.Unix(*d.UnixSecs, 0).In(time.FixedZone("", d.TZOffset))
	if y := t.Year(); y < 1900 || y > 9999 {
		return "", errors.New("unix_secs is out of range")
	}
	return t.Format("Mon, 02 Jan 2006 15:04:05 -0700"), nil
}

func idValue(raw json.RawMessage, single bool) (string, error) {
	var ids []string
	if err := strictUnmarshal(raw, &ids); err != nil {
		return "", errors.New("must be a list of ids without <>")
	}
	if len(ids) == 0 {
		return "", errors.New("must list at least one id")
	}
	if single && len(ids) != 1 {
		return "", errors.New("must list exactly one id")
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		if !validID(id) {
			return "", fmt.Errorf("[%d]: invalid id %q (printable ASCII without <>, spaces)", i, id)
		}
		out[i] = "<" + id + ">"
	}
	return strings.Join(out, " "), nil
}

func validID(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '<' || r == '>' })
}

func stringValue(raw json.RawMessage) (string, error) {
	var s string
	if err := strictUnmarshal(raw, &s); err != nil {
		return "", errors.New("must be a string")
	}
	// QEncoding leaves printable ASCII alone and encodes anything else,
	// including control characters, so no raw CR/LF can get through.
	return stdmime.QEncoding.Encode("utf-8", s), nil
}

func strictUnmarshal(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// foldField formats "name: value\r\n", folding at spaces so lines stay
// within foldLen where possible. A line that cannot be folded below the
// RFC 5322 limit of 998 octets is an error.
func foldField(name, value string) ([]byte, error) {
	if strings.ContainsAny(value, "\r\n") {
		return nil, errors.New("value must not contain line breaks")
	}
	var b bytes.Buffer
	line := name + ":"
	if value != "" {
		line += " "
	}
	rest := value
	for {
		// Fold before the last space that keeps the line within foldLen,
		// but never leave a line empty of non-whitespace.
		if len(line)+len(rest) <= foldLen {
			line += rest
			break
		}
		cut := -1
		for i := 1; i < len(rest); i++ {
			if rest[i] == ' ' && strings.TrimSpace(line+rest[:i]) != "" && rest[i-1] != ' ' {
				if len(line)+i > foldLen && cut >= 0 {
					break
				}
				cut = i
			}
		}
		if cut < 0 {
			line += rest
			break
		}
		line += rest[:cut]
		if len(line) > maxLineLen {
			return nil, errors.New("contains a word too long for a header line")
		}
		b.WriteString(line)
		b.WriteString("\r\n")
		line, rest = "", rest[cut:] // rest starts with the folding space
	}
	if len(line) > maxLineLen {
		return nil, errors.New("contains a word too long for a header line")
	}
	b.WriteString(line)
	b.WriteString("\r\n")
	return b.Bytes(), nil
}
