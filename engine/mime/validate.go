package mime

// Validation: how well formed a message is, in the four levels of reference §6.11, for
// policies that refuse badly formed mail (message_validation's signal and matcher).
//
// It is a streaming check of its own rather than a use of Parse, because it must report
// what Parse forgives (missing delimiters, bad base64, header fields that do not parse).
// Memory is bounded: the header section (1 MiB at most) and each part's header block
// (64 KiB at most) are held, bodies are read line by line and never kept, and the first
// defect of the MIME tree ends the reading.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	stdmime "mime"
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/koukan/koukan/engine/addr"
)

// Level is how well formed a message is; each level includes those below it.
type Level int

const (
	// LevelNone: the header section cannot be told from the body.
	LevelNone Level = iota
	// LevelBasic: every header line is a field, but the header section has bytes it may
	// not have, or From, Date or Message-ID is missing, repeated or does not parse.
	LevelBasic
	// LevelMedium: the header section is clean and has exactly one valid From, Date and
	// Message-ID, but something in the MIME tree is malformed.
	LevelMedium
	// LevelHigh: no defect found.
	LevelHigh
)

var levelNames = [...]string{"NONE", "BASIC", "MEDIUM", "HIGH"}

func (l Level) String() string {
	if l >= LevelNone && l <= LevelHigh {
		return levelNames[l]
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// ParseLevel reads a level's name (NONE, BASIC, MEDIUM, HIGH; any case).
func ParseLevel(s string) (Level, bool) {
	for i, n := range levelNames {
		if strings.EqualFold(s, n) {
			return Level(i), true
		}
	}
	return 0, false
}

// Defaults of ValidateOptions.
const (
	DefaultMaxHeaderBytes = 1 << 20
	DefaultMaxDepth       = 20
	// maxPartHeader bounds the header block of a part or an enclosed message.
	maxPartHeader = 64 << 10
)

// ValidateOptions tune Validate.
type ValidateOptions struct {
	// SMTPUTF8 allows UTF-8 in header fields (RFC 6532); without it they must be ASCII.
	SMTPUTF8 bool
	// MaxHeaderBytes is how far the end of the header section is looked for
	// (DefaultMaxHeaderBytes when zero).
	MaxHeaderBytes int
	// MaxDepth is how deep multiparts and enclosed messages may nest (DefaultMaxDepth when
	// zero).
	MaxDepth int
}

// Validation is what Validate found.
type Validation struct {
	Level Level
	// Err says why the message is not one level higher; "" at LevelHigh. Defects are named
	// as the reference's parser names them (InvalidHeaderDefect, ...), for REST clients
	// that look for those names.
	Err string
	// ReceivedCount is the number of Received fields of the header section; -1 at
	// LevelNone, when the header section was not made out.
	ReceivedCount int
	// HeaderFrom is the address of the From field when it holds exactly one (as in
	// koukan.addr.parse_header), and HeaderFromName its display name.
	HeaderFrom, HeaderFromName string
}

// Validate reads a message from r and rates it. It fails only when reading r does.
func Validate(r io.Reader, o ValidateOptions) (*Validation, error) {
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	v := &validator{o: o, br: bufio.NewReaderSize(r, 64<<10), atStart: true}
	res := &Validation{Level: LevelHigh, ReceivedCount: -1}
	err := v.validate(res)
	var d *levelError
	if errors.As(err, &d) {
		res.Level, res.Err = d.level, d.msg
		return res, nil
	}
	return res, err
}

// levelError ends validation at a level, with the reason.
type levelError struct {
	level Level
	msg   string
}

func (e *levelError) Error() string { return e.msg }

func fail(level Level, format string, args ...any) error {
	return &levelError{level: level, msg: fmt.Sprintf(format, args...)}
}

// defect is a defect of the MIME tree: the message is LevelMedium.
func defect(format string, args ...any) error { return fail(LevelMedium, format, args...) }

type validator struct {
	o  ValidateOptions
	br *bufio.Reader
	// atStart tells whether the next read begins a line; pushed is a line given back.
	atStart   bool
	pushed    []byte
	hasPushed bool
	// stack holds the boundaries of the open multiparts, outermost first; hit is the
	// delimiter line that ended the last body read, nil at the end of the input.
	stack []string
	hit   *boundaryHit
}

// field is one header field: its name and its raw value (after the colon, folding kept).
type field struct {
	name  string
	value []byte
}

func (f field) unfolded() string { return unfold(f.value) }

func (v *validator) validate(res *Validation) error {
	section, err := v.headerSection()
	if err != nil {
		return err
	}
	fields, lead, err := splitFields(section)
	if err != nil {
		return err
	}
	res.ReceivedCount = 0
	for _, f := range fields {
		if strings.EqualFold(f.name, "received") {
			res.ReceivedCount++
		}
	}
	if err := checkEncoding(section, v.o.SMTPUTF8, LevelBasic); err != nil {
		return err
	}
	if err := v.checkRequired(fields, res); err != nil {
		return err
	}
	if lead {
		return defect("FirstHeaderLineIsContinuationDefect: the header section starts with a continuation line")
	}
	return v.entity(fields, 0, false)
}

// readLine returns the next line with its line ending, or a piece of a line longer than
// the buffer; start tells whether it begins a line. The slice is valid until the next call.
func (v *validator) readLine() (line []byte, start bool, err error) {
	if v.hasPushed {
		v.hasPushed = false
		v.atStart = true
		return v.pushed, true, nil
	}
	start = v.atStart
	line, err = v.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		v.atStart = false
		return line, start, nil
	}
	v.atStart = true
	return line, start, err
}

func (v *validator) unread(line []byte) {
	v.pushed = append(v.pushed[:0], line...)
	v.hasPushed = true
}

func isBlank(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}

// headerSection reads the message's header section, up to and without the empty line
// that ends it.
func (v *validator) headerSection() ([]byte, error) {
	var section []byte
	for {
		line, start, err := v.readLine()
		if start && isBlank(line) {
			return section, nil
		}
		if len(section)+len(line) > v.o.MaxHeaderBytes {
			return nil, fail(LevelNone, "MissingHeaderBodySeparatorDefect: no end of the header section within %d bytes", v.o.MaxHeaderBytes)
		}
		section = append(section, line...)
		if errors.Is(err, io.EOF) {
			return nil, fail(LevelNone, "MissingHeaderBodySeparatorDefect: no empty line after the header section")
		}
		if err != nil {
			return nil, err
		}
	}
}

// lines splits a header block at LF, keeping the line endings.
func lines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n') + 1
		if i == 0 {
			i = len(b)
		}
		out = append(out, b[:i])
		b = b[i:]
	}
	return out
}

// splitFields parses the top-level header section into fields. A line that is neither a
// field nor a continuation means the parser cannot tell where the body starts. lead tells
// whether the section starts with a continuation line, which is dropped.
func splitFields(section []byte) (fs []field, lead bool, err error) {
	for i, l := range lines(section) {
		if l[0] == ' ' || l[0] == '\t' {
			if len(fs) == 0 {
				lead = true
				continue
			}
			fs[len(fs)-1].value = append(fs[len(fs)-1].value, l...)
			continue
		}
		name, value, ok := fieldLine(l)
		if !ok {
			return nil, false, fail(LevelNone, "MissingHeaderBodySeparatorDefect: header line %d is not a field: %q", i+1, excerpt(l))
		}
		fs = append(fs, field{name: name, value: value})
	}
	return fs, lead, nil
}

// fieldLine splits "Name: value" (RFC 5322 field-name: printable ASCII but ':'; the
// obsolete syntax allows blanks before the colon).
func fieldLine(l []byte) (name string, value []byte, ok bool) {
	colon := bytes.IndexByte(l, ':')
	if colon <= 0 {
		return "", nil, false
	}
	n := bytes.TrimRight(l[:colon], " \t")
	if len(n) == 0 {
		return "", nil, false
	}
	for _, c := range n {
		if c <= ' ' || c >= 0x7f {
			return "", nil, false
		}
	}
	return string(n), append([]byte(nil), l[colon+1:]...), true
}

func excerpt(b []byte) string {
	s := strings.TrimRight(string(b), "\r\n")
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// checkEncoding requires a header block to be ASCII (UTF-8 with SMTPUTF8) without control
// characters other than tab, with CRLF line endings; a failure rates the message at level.
func checkEncoding(block []byte, smtputf8 bool, level Level) error {
	name := "header"
	for _, l := range lines(block) {
		if n, _, ok := fieldLine(l); ok && l[0] != ' ' && l[0] != '\t' {
			name = strings.ToLower(n)
		}
		body, ok := bytes.CutSuffix(l, []byte("\r\n"))
		if !ok {
			return fail(level, "%s: InvalidHeaderDefect: line ending is not CRLF", name)
		}
		for _, c := range body {
			if c < ' ' && c != '\t' || c == 0x7f {
				return fail(level, "%s: NonPrintableDefect: control character 0x%02x", name, c)
			}
			if c >= 0x80 && !smtputf8 {
				return fail(level, "%s: UndecodableBytesDefect: 8-bit byte without SMTPUTF8", name)
			}
		}
		if smtputf8 && !utf8.Valid(body) {
			return fail(level, "%s: UndecodableBytesDefect: invalid UTF-8", name)
		}
	}
	return nil
}

// checkRequired rates the message BASIC unless it has exactly one valid From, Date and
// Message-ID, and notes the From address.
func (v *validator) checkRequired(fs []field, res *Validation) error {
	for _, name := range []string{"from", "date", "message-id"} {
		var found []field
		for _, f := range fs {
			if strings.EqualFold(f.name, name) {
				found = append(found, f)
			}
		}
		switch len(found) {
		case 0:
			return fail(LevelBasic, "%s: missing", name)
		case 1:
		default:
			return fail(LevelBasic, "%s: %d fields, want exactly 1", name, len(found))
		}
		if name == "from" {
			as, err := addr.ParseHeaderAddressList(found[0].unfolded())
			if err == nil && len(as) == 1 {
				res.HeaderFrom, res.HeaderFromName = as[0].Mailbox.String(), as[0].Name
			}
		}
		if err := v.checkField(found[0]); err != nil {
			return fail(LevelBasic, "%s", err)
		}
	}
	return nil
}

// addressFields are the header fields whose value is an address list.
var addressFields = map[string]bool{
	"from": true, "sender": true, "reply-to": true, "to": true, "cc": true, "bcc": true,
	"resent-from": true, "resent-sender": true, "resent-to": true, "resent-cc": true, "resent-bcc": true,
}

// checkField checks a structured field's value; the error names the defect.
func (v *validator) checkField(f field) error {
	name := strings.ToLower(f.name)
	val := f.unfolded()
	switch {
	case addressFields[name]:
		if strings.TrimSpace(val) == "" {
			if name == "bcc" || name == "resent-bcc" {
				return nil
			}
			return fmt.Errorf("%s: HeaderMissingRequiredValue: empty address list", name)
		}
		as, err := addr.ParseHeaderAddressList(val)
		if err != nil {
			return fmt.Errorf("%s: InvalidHeaderDefect: %v", name, err)
		}
		if len(as) == 0 && (name == "from" || name == "sender" || name == "resent-from" || name == "resent-sender") {
			return fmt.Errorf("%s: InvalidHeaderDefect: no mailbox", name)
		}
	case name == "date" || name == "resent-date":
		if _, err := mail.ParseDate(val); err != nil {
			return fmt.Errorf("%s: InvalidDateDefect: %q is not an RFC 5322 date", name, excerpt([]byte(val)))
		}
	case name == "message-id" || name == "resent-message-id":
		if !validMsgID(val, v.o.SMTPUTF8) {
			return fmt.Errorf("%s: InvalidHeaderDefect: %q is not a msg-id <left@right>", name, excerpt([]byte(val)))
		}
	case name == "content-type" || name == "content-disposition":
		if _, _, err := stdmime.ParseMediaType(val); err != nil {
			return fmt.Errorf("%s: InvalidHeaderDefect: %v", name, err)
		}
	case name == "content-transfer-encoding":
		if t := strings.TrimSpace(stripComments(val)); t == "" || strings.ContainsFunc(t, notTokenChar) {
			return fmt.Errorf("%s: InvalidHeaderDefect: %q is not a token", name, excerpt([]byte(val)))
		}
	case name == "mime-version":
		if !validMIMEVersion(stripComments(val)) {
			return fmt.Errorf("%s: InvalidHeaderDefect: %q is not a version such as 1.0", name, excerpt([]byte(val)))
		}
	}
	return nil
}

// notTokenChar is true for the characters an RFC 2045 token may not have.
func notTokenChar(r rune) bool {
	return r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?=`, r)
}

// stripComments removes RFC 5322 comments (nested, with quoted pairs) outside quoted
// strings.
func stripComments(s string) string {
	var b strings.Builder
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && (depth > 0 || quoted) && i+1 < len(s):
			if depth == 0 {
				b.WriteByte(c)
				b.WriteByte(s[i+1])
			}
			i++
			continue
		case c == '"' && depth == 0:
			quoted = !quoted
		case c == '(' && !quoted:
			depth++
			continue
		case c == ')' && !quoted && depth > 0:
			depth--
			b.WriteByte(' ')
			continue
		}
		if depth == 0 {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func validMIMEVersion(s string) bool {
	major, minor, ok := strings.Cut(strings.ReplaceAll(strings.TrimSpace(s), " ", ""), ".")
	return ok && allDigits(major) && allDigits(minor)
}

func allDigits(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
}

// validMsgID checks an RFC 5322 msg-id: "<" id-left "@" id-right ">", where id-left is a
// dot-atom or (obsolete) a quoted string and id-right a dot-atom or a no-fold literal.
func validMsgID(s string, utf8ok bool) bool {
	s = strings.TrimSpace(stripComments(s))
	inner, ok := strings.CutPrefix(s, "<")
	if !ok {
		return false
	}
	if inner, ok = strings.CutSuffix(inner, ">"); !ok {
		return false
	}
	at := strings.LastIndexByte(inner, '@')
	if at < 0 {
		return false
	}
	left, right := inner[:at], inner[at+1:]
	leftOK := dotAtom(left, utf8ok) || len(left) >= 2 && left[0] == '"' && left[len(left)-1] == '"' && !strings.ContainsAny(left, "\r\n")
	rightOK := dotAtom(right, utf8ok) || len(right) >= 2 && right[0] == '[' && right[len(right)-1] == ']' && !strings.ContainsAny(right[1:len(right)-1], "[]\\ \t")
	return leftOK && rightOK
}

// dotAtom checks RFC 5322 dot-atom-text (with UTF-8 atext when utf8ok, RFC 6532).
func dotAtom(s string, utf8ok bool) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		switch {
		case r == '.':
		case r < 0x80 && isAtext(byte(r)):
		case r >= 0x80 && utf8ok && r != utf8.RuneError:
		default:
			return false
		}
	}
	return true
}

// partHeader reads the header block of a part or an enclosed message, up to the empty line
// (or a delimiter, which leaves the body empty, or the end of the input). What comes past
// maxPartHeader is a defect.
func (v *validator) partHeader() ([]field, []byte, error) {
	var fs []field
	var block []byte
	for {
		line, start, err := v.readLine()
		if len(line) > 0 {
			switch {
			case start && isBlank(line):
				return fs, block, nil
			case start && v.delimiter(line):
				return fs, block, nil
			}
			if len(block)+len(line) > maxPartHeader {
				return nil, nil, defect("part header section larger than %d bytes", maxPartHeader)
			}
			block = append(block, line...)
			switch {
			case !start || line[0] == ' ' || line[0] == '\t':
				if len(fs) == 0 {
					return nil, nil, defect("FirstHeaderLineIsContinuationDefect: a part's header starts with a continuation line")
				}
				fs[len(fs)-1].value = append(fs[len(fs)-1].value, line...)
			default:
				name, value, ok := fieldLine(line)
				if !ok {
					return nil, nil, defect("MissingHeaderBodySeparatorDefect: part header line %q is not a field", excerpt(line))
				}
				fs = append(fs, field{name: name, value: value})
			}
		}
		if errors.Is(err, io.EOF) {
			v.hit = nil
			return fs, block, nil
		}
		if err != nil {
			return nil, nil, err
		}
	}
}

// delimiter reports whether line is a delimiter of an open multipart (innermost first) and
// if so records it in v.hit. A delimiter is "--" boundary, "--" more for the last one, and
// blanks (RFC 2046 5.1.1).
func (v *validator) delimiter(line []byte) bool {
	l := bytes.TrimRight(line, " \t\r\n")
	rest, ok := bytes.CutPrefix(l, []byte("--"))
	if !ok || len(v.stack) == 0 {
		return false
	}
	for i := len(v.stack) - 1; i >= 0; i-- {
		after, ok := bytes.CutPrefix(rest, []byte(v.stack[i]))
		if !ok {
			continue
		}
		switch string(after) {
		case "":
			v.hit = &boundaryHit{level: i}
			return true
		case "--":
			v.hit = &boundaryHit{level: i, close: true}
			return true
		}
	}
	return false
}

// body reads an entity's body up to a delimiter of an open multipart (then in v.hit) or
// the end of the input (v.hit nil), passing each piece of content to each, if not nil.
func (v *validator) body(each func([]byte) error) error {
	v.hit = nil
	for {
		line, start, err := v.readLine()
		if len(line) > 0 {
			if start && v.delimiter(line) {
				return nil
			}
			if each != nil {
				if err := each(line); err != nil {
					return err
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// entity checks an entity whose header fields are fs and whose body comes next. digest
// makes message/rfc822 the default type (the parts of a multipart/digest).
func (v *validator) entity(fs []field, depth int, digest bool) error {
	ct, params, cte := "text/plain", map[string]string{}, ""
	if digest {
		ct = "message/rfc822"
	}
	for _, f := range fs {
		if err := v.checkField(f); err != nil {
			return defect("%s", err)
		}
		switch strings.ToLower(f.name) {
		case "content-type":
			t, ps, _ := stdmime.ParseMediaType(f.unfolded())
			ct, params = t, ps
		case "content-transfer-encoding":
			cte = strings.ToLower(strings.TrimSpace(stripComments(f.unfolded())))
		}
	}
	switch {
	case strings.HasPrefix(ct, "multipart/"):
		if depth+1 > v.o.MaxDepth {
			return defect("MIME tree nested deeper than %d", v.o.MaxDepth)
		}
		b := params["boundary"]
		if b == "" {
			return defect("NoBoundaryInMultipartDefect: %s without a boundary", ct)
		}
		if cte != "" && cte != "7bit" && cte != "8bit" && cte != "binary" {
			return defect("InvalidMultipartContentTransferEncodingDefect: %s with %s", ct, cte)
		}
		return v.multipart(b, depth, ct == "multipart/digest")
	case ct == "message/rfc822" || ct == "message/global" && cte != "base64" && cte != "quoted-printable":
		if depth+1 > v.o.MaxDepth {
			return defect("MIME tree nested deeper than %d", v.o.MaxDepth)
		}
		if cte != "" && cte != "7bit" && cte != "8bit" && cte != "binary" {
			return defect("InvalidHeaderDefect: message/rfc822 with %s", cte)
		}
		v.hit = nil
		inner, block, err := v.partHeader()
		if err != nil {
			return err
		}
		if err := checkEncoding(block, v.o.SMTPUTF8, LevelMedium); err != nil {
			return err
		}
		if v.hit != nil {
			// A delimiter ended the enclosed message's header: it has no body.
			return v.fields(inner)
		}
		return v.entity(inner, depth+1, false)
	}
	switch cte {
	case "base64":
		var b b64check
		if err := v.body(b.feed); err != nil {
			return err
		}
		return b.finish()
	}
	if len(v.stack) == 0 {
		// A leaf at the top: nothing after it to check.
		return nil
	}
	return v.body(nil)
}

// fields checks the header fields of an entity without a body.
func (v *validator) fields(fs []field) error {
	for _, f := range fs {
		if err := v.checkField(f); err != nil {
			return defect("%s", err)
		}
	}
	return nil
}

// multipart checks a multipart body: preamble, parts, close delimiter, epilogue.
func (v *validator) multipart(boundary string, depth int, digest bool) error {
	v.stack = append(v.stack, boundary)
	lvl := len(v.stack) - 1
	defer func() { v.stack = v.stack[:lvl] }()
	if err := v.body(nil); err != nil { // the preamble
		return err
	}
	parts := 0
	for {
		h := v.hit
		switch {
		case h == nil && parts == 0, h != nil && h.level < lvl && parts == 0:
			return defect("StartBoundaryNotFoundDefect: no delimiter --%s", boundary)
		case h == nil, h.level < lvl:
			return defect("CloseBoundaryNotFoundDefect: no close delimiter --%s--", boundary)
		case h.close:
			if parts == 0 {
				return defect("StartBoundaryNotFoundDefect: multipart with no parts")
			}
			v.stack = v.stack[:lvl]
			return v.body(nil) // the epilogue, up to an enclosing delimiter
		}
		parts++
		v.hit = nil
		fs, block, err := v.partHeader()
		if err != nil {
			return err
		}
		if err := checkEncoding(block, v.o.SMTPUTF8, LevelMedium); err != nil {
			return err
		}
		if v.hit != nil {
			// A delimiter ended the part's header: it has no body.
			if err := v.fields(fs); err != nil {
				return err
			}
			continue
		}
		if err := v.entity(fs, depth+1, digest); err != nil {
			return err
		}
	}
}

// b64check follows base64 content (RFC 2045 6.8) and finds what Python's decoder reports
// as defects: characters outside the alphabet, a length that is not a whole number of
// quanta, and misplaced padding. Blanks and line breaks are ignored.
type b64check struct {
	n       int  // position in the current 4-character quantum
	needPad bool // a first '=' awaits its second
}

func (b *b64check) feed(p []byte) error {
	for _, c := range p {
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		case c == '=':
			switch {
			case b.needPad:
				b.needPad, b.n = false, 0
			case b.n == 2:
				b.needPad = true
			case b.n == 3:
				b.n = 0
			case b.n == 0:
				// Extra padding after a whole quantum: decoders skip it.
			default:
				return defect("InvalidBase64PaddingDefect: padding after a single character")
			}
		case 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/':
			if b.needPad {
				return defect("InvalidBase64PaddingDefect: data after a single '='")
			}
			b.n = (b.n + 1) % 4
		default:
			return defect("InvalidBase64CharactersDefect: byte 0x%02x in base64 content", c)
		}
	}
	return nil
}

func (b *b64check) finish() error {
	switch {
	case b.n == 1:
		return defect("InvalidBase64LengthDefect: base64 content is one character past a whole quantum")
	case b.n != 0 || b.needPad:
		return defect("InvalidBase64PaddingDefect: base64 content lacks its padding")
	}
	return nil
}
