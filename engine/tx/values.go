package tx

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// HostPort is a network endpoint; JSON ["1.2.3.4", 25].
type HostPort struct {
	Host string
	Port int
}

func (h HostPort) MarshalJSON() ([]byte, error) { return encodeJSON([]any{h.Host, h.Port}) }

func decodeHostPort(raw json.RawMessage, path string) (HostPort, error) {
	l, err := readList(raw, path)
	if err != nil || len(l) != 2 {
		return HostPort{}, fieldErr(path, "must be a [host, port] pair")
	}
	host, err := readText(l[0], indexPath(path, 0))
	if err == nil && host == "" {
		err = fieldErr(indexPath(path, 0), "must not be empty")
	}
	if err != nil {
		return HostPort{}, err
	}
	port, err := readInt(l[1], indexPath(path, 1), 0, 65535)
	return HostPort{host, int(port)}, err
}

// EsmtpParam is one MAIL or RCPT parameter such as SIZE=1234; JSON
// {"k": "SIZE", "p": "1234"}. An empty Value means the keyword stands alone.
type EsmtpParam struct {
	Keyword string `json:"k"`
	Value   string `json:"p,omitempty"`
}

// ParseEsmtpParam parses one parameter as written after MAIL FROM:<...> or
// RCPT TO:<...>: KEYWORD or KEYWORD=VALUE (RFC 5321 4.1.2, with UTF-8 values
// as RFC 6531 allows).
func ParseEsmtpParam(s string) (EsmtpParam, error) {
	k, v, hasValue := strings.Cut(s, "=")
	if err := checkEsmtpKeyword(k); err != nil {
		return EsmtpParam{}, fmt.Errorf("esmtp parameter %q: %w", s, err)
	}
	if hasValue {
		if err := checkEsmtpValue(v); err != nil {
			return EsmtpParam{}, fmt.Errorf("esmtp parameter %q: %w", s, err)
		}
	}
	return EsmtpParam{k, v}, nil
}

func (p EsmtpParam) String() string {
	if p.Value == "" {
		return p.Keyword
	}
	return p.Keyword + "=" + p.Value
}

func checkEsmtpKeyword(k string) error {
	if k == "" {
		return errors.New("missing keyword")
	}
	for i, c := range []byte(k) {
		alnum := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '-') {
			return errors.New("keyword must be letters, digits and inner hyphens")
		}
	}
	return nil
}

func checkEsmtpValue(v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	for _, c := range []byte(v) {
		if c <= ' ' || c == '=' || c == 0x7f {
			return errors.New("value must not contain spaces, control characters or =")
		}
	}
	return nil
}

func decodeEsmtpParam(raw json.RawMessage, path string) (EsmtpParam, error) {
	mem, err := readObject(raw, path)
	if err != nil {
		return EsmtpParam{}, err
	}
	var p EsmtpParam
	hasKeyword := false
	for _, m := range mem {
		mp := joinPath(path, m.key)
		switch m.key {
		case "k":
			if p.Keyword, err = readString(m.raw, mp); err == nil {
				err = checkEsmtpKeyword(p.Keyword)
			}
			hasKeyword = true
		case "p":
			if p.Value, err = readString(m.raw, mp); err == nil {
				err = checkEsmtpValue(p.Value)
			}
		default:
			return p, unknownKey(path, m.key)
		}
		if err != nil {
			return p, asFieldErr(err, mp)
		}
	}
	if !hasKeyword {
		return p, fieldErr(joinPath(path, "k"), "is required")
	}
	return p, nil
}

// Mailbox is an envelope address with its ESMTP parameters; JSON
// {"m": "alice@example.com", "e": [...]}. The null reverse-path is Address "".
type Mailbox struct {
	Address string       `json:"m"`
	Esmtp   []EsmtpParam `json:"e,omitempty"`
}

func (m Mailbox) clone() Mailbox {
	m.Esmtp = slices.Clone(m.Esmtp)
	return m
}

func decodeMailbox(raw json.RawMessage, path string) (Mailbox, error) {
	mem, err := readObject(raw, path)
	if err != nil {
		return Mailbox{}, err
	}
	var mb Mailbox
	hasAddress := false
	for _, m := range mem {
		mp := joinPath(path, m.key)
		switch m.key {
		case "m":
			mb.Address, err = readText(m.raw, mp)
			hasAddress = true
		case "e":
			mb.Esmtp, err = decodeList(m.raw, mp, decodeEsmtpParam)
		default:
			return mb, unknownKey(path, m.key)
		}
		if err != nil {
			return mb, err
		}
	}
	if !hasAddress {
		return mb, fieldErr(joinPath(path, "m"), "is required")
	}
	return mb, nil
}

// CodeInternal is the code of a Response made inside Koukan that must never
// reach an SMTP client as is.
const CodeInternal = 600

// Response is an SMTP-style reply to one request of the transaction; JSON
// {"code": 250, "message": "ok"}.
type Response struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// DefaultMessage is the message a Response gets when its JSON has none.
func DefaultMessage(code int) string {
	switch code / 100 {
	case 2:
		return "ok"
	case 4:
		return "temporary error"
	case 5:
		return "permanent error"
	}
	return "internal error"
}

func (r Response) Ok() bool   { return r.Code >= 200 && r.Code <= 299 }
func (r Response) Temp() bool { return r.Code >= 400 && r.Code <= 499 }
func (r Response) Perm() bool { return r.Code >= 500 && r.Code <= 599 }

// Err reports any response that is not a success, including internal ones.
func (r Response) Err() bool { return !r.Ok() }

func (r Response) String() string { return fmt.Sprintf("%d %s", r.Code, r.Message) }

func decodeResponse(raw json.RawMessage, path string) (Response, error) {
	mem, err := readObject(raw, path)
	if err != nil {
		return Response{}, err
	}
	var r Response
	hasCode, hasMessage := false, false
	for _, m := range mem {
		mp := joinPath(path, m.key)
		switch m.key {
		case "code":
			var c int64
			c, err = readInt(m.raw, mp, 100, 699)
			r.Code, hasCode = int(c), true
		case "message":
			r.Message, err = readString(m.raw, mp)
			hasMessage = true
		default:
			return r, unknownKey(path, m.key)
		}
		if err != nil {
			return r, err
		}
	}
	if !hasCode {
		return r, fieldErr(joinPath(path, "code"), "is required")
	}
	if !hasMessage {
		r.Message = DefaultMessage(r.Code)
	}
	return r, nil
}

// Sender names the principal that submitted the transaction and the tag that
// picks its output chain; JSON {"name": "submission", "tag": "smtp-msa"}.
type Sender struct {
	Name string `json:"name,omitempty"`
	Tag  string `json:"tag,omitempty"`
}

func decodeSender(raw json.RawMessage, path string) (Sender, error) {
	mem, err := readObject(raw, path)
	if err != nil {
		return Sender{}, err
	}
	var s Sender
	for _, m := range mem {
		mp := joinPath(path, m.key)
		switch m.key {
		case "name":
			s.Name, err = readText(m.raw, mp)
		case "tag":
			s.Tag, err = readText(m.raw, mp)
		default:
			return s, fieldErr(path, "may only contain name, tag")
		}
		if err != nil {
			return s, err
		}
	}
	return s, nil
}

// decodeList reads a JSON list whose elements dec reads; an empty list gives nil.
func decodeList[E any](raw json.RawMessage, path string, dec func(json.RawMessage, string) (E, error)) ([]E, error) {
	l, err := readList(raw, path)
	if err != nil || len(l) == 0 {
		return nil, err
	}
	out := make([]E, len(l))
	for i, r := range l {
		if out[i], err = dec(r, indexPath(path, i)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// asFieldErr gives a plain validation error the path of the value it is about.
func asFieldErr(err error, path string) error {
	if _, ok := errors.AsType[*FieldError](err); ok {
		return err
	}
	return &FieldError{Field: path, Reason: err.Error()}
}
