package mime

// Parser: RFC 5322 / MIME message -> the parsed-message JSON of
// reference §8.3 (what a receiver gets with receive_parsing).
//
// The MIME structure is split by a small streaming, line-based splitter
// rather than go-message's multipart reader, because the reference
// accepts malformed input that a strict reader rejects (a part header
// block with no blank line before the body, close delimiters followed by
// junk such as "--b---", missing close delimiters). A part ends at the
// delimiter of its own multipart or of any enclosing one, as in Python's
// email.feedparser. go-message is used for charsets (go-message/charset).
//
// Malformed input never makes Parse fail: it yields a best-effort tree.
// Parse only returns an error when reading the input fails or store
// fails.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	stdmime "mime"
	"mime/quotedprintable"
	"net/mail"
	"strconv"
	"strings"

	"github.com/emersion/go-message/charset"
)

// MaxParseDepth is the nesting depth from which a multipart or
// message/rfc822 entity is kept as an opaque leaf (a blob).
const MaxParseDepth = 10

// maxHeaderBytes bounds the header block kept per entity; further
// header bytes are read and dropped.
const maxHeaderBytes = 256 << 10

// BlobStore receives a non-inlined leaf: id is "0", "1", ... in tree
// order, contentType the leaf's media type, r the CTE-decoded payload
// (text re-encoded as UTF-8). r is only valid during the call; whatever
// store leaves unread is skipped.
type BlobStore func(id string, contentType string, r io.Reader) error

// Parse reads a message from r and returns its §8.3 JSON. Text leaves
// are inlined while the running total of inline bytes stays below
// maxInline; every other leaf is streamed to store. Attachments are
// never held in memory as a whole (at most maxInline bytes of a text
// leaf are buffered to decide on inlining).
func Parse(r io.Reader, maxInline int, store BlobStore) (json.RawMessage, error) {
	p := &parser{br: bufio.NewReaderSize(r, 64<<10), atStart: true, maxInline: maxInline, store: store}
	root, err := p.entity(0)
	if err != nil {
		return nil, err
	}
	out := parsedMessage{Parts: root}
	p.simplify(root, &out)
	return json.Marshal(out)
}

type parsedMessage struct {
	Parts              *pNode   `json:"parts"`
	TextBody           []*pFlat `json:"text_body,omitempty"`
	RelatedAttachments []*pFlat `json:"related_attachments,omitempty"`
	FileAttachments    []*pFlat `json:"file_attachments,omitempty"`
}

type pNode struct {
	Headers     []pHeader `json:"headers"`
	ContentType string    `json:"content_type,omitempty"`
	Parts       *[]*pNode `json:"parts,omitempty"`
	Content     *pContent `json:"content,omitempty"`
	params      map[string]string
	disposition string
	dispParams  map[string]string
	contentID   string
}

type pHeader [2]any

type pContent struct {
	Inline   *string `json:"inline,omitempty"`
	CreateID *string `json:"create_id,omitempty"`
}

type pFlat struct {
	ContentType string    `json:"content_type"`
	Filename    string    `json:"filename,omitempty"`
	ContentID   string    `json:"content_id,omitempty"`
	Content     *pContent `json:"content"`
}

type boundaryHit struct {
	level int
	close bool
}

type parser struct {
	br        *bufio.Reader
	atStart   bool
	pushed    []byte
	hasPushed bool
	stack     []string
	hit       *boundaryHit
	maxInline int
	inlined   int
	nextID    int
	store     BlobStore
}

// readLine returns the next line (with its EOL) or a fragment of a line
// longer than the buffer; start tells whether it begins a line. The
// slice is valid until the next call.
func (p *parser) readLine() (line []byte, start bool, err error) {
	if p.hasPushed {
		p.hasPushed = false
		p.atStart = true
		return p.pushed, true, nil
	}
	start = p.atStart
	line, err = p.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		p.atStart = false
		return line, start, nil
	}
	p.atStart = true
	return line, start, err
}

func (p *parser) unread(line []byte) {
	p.pushed = append(p.pushed[:0], line...)
	p.hasPushed = true
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// matchBoundary reports whether line is a delimiter of an open
// multipart, innermost first.
func (p *parser) matchBoundary(line []byte) (boundaryHit, bool) {
	l := trimEOL(line)
	if len(p.stack) == 0 || !bytes.HasPrefix(l, []byte("--")) {
		return boundaryHit{}, false
	}
	l = l[2:]
	for i := len(p.stack) - 1; i >= 0; i-- {
		b := p.stack[i]
		if !bytes.HasPrefix(l, []byte(b)) {
			continue
		}
		rest := l[len(b):]
		if bytes.HasPrefix(rest, []byte("--")) {
			return boundaryHit{level: i, close: true}, true
		}
		if len(bytes.Trim(rest, " \t")) == 0 {
			return boundaryHit{level: i}, true
		}
	}
	return boundaryHit{}, false
}

type rawField struct {
	name  string
	value []byte
}

// readHeaders reads a header block. It stops at a blank line, at a line
// that is not a header field (that line is the first body line), at a
// boundary (p.hit is set: the body is empty) or at EOF.
func (p *parser) readHeaders() ([]rawField, error) {
	var fs []rawField
	total := 0
	inField := false // the previous chunk continues the last field
	for {
		line, start, err := p.readLine()
		if len(line) > 0 {
			switch {
			case !start:
				if inField && total < maxHeaderBytes && len(fs) > 0 {
					fs[len(fs)-1].value = append(fs[len(fs)-1].value, line...)
					total += len(line)
				}
			case len(trimEOL(line)) == 0:
				return fs, nil
			case func() bool { h, ok := p.matchBoundary(line); p.setHit(h, ok); return ok }():
				return fs, nil
			case line[0] == ' ' || line[0] == '\t':
				if !inField {
					// Python treats a leading continuation line as a
					// defect and drops it; so do we.
					break
				}
				if total < maxHeaderBytes && len(fs) > 0 {
					fs[len(fs)-1].value = append(fs[len(fs)-1].value, line...)
					total += len(line)
				}
			default:
				i := bytes.IndexByte(line, ':')
				name := ""
				if i > 0 {
					name = strings.TrimRight(string(line[:i]), " \t")
				}
				if !validHeaderName(name) {
					p.unread(line)
					return fs, nil
				}
				inField = true
				if total < maxHeaderBytes {
					fs = append(fs, rawField{name: name, value: append([]byte(nil), line[i+1:]...)})
					total += len(line)
				} else {
					inField = false
				}
			}
		}
		if err == io.EOF {
			return fs, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (p *parser) setHit(h boundaryHit, ok bool) {
	if ok {
		p.hit = &h
	}
}

// bodyReader yields an entity body up to (not including the CRLF
// before) the next delimiter of an open multipart, or to EOF.
type bodyReader struct {
	p       *parser
	pendEOL []byte
	buf     []byte
	done    bool
}

func (p *parser) body() *bodyReader { return &bodyReader{p: p, done: p.hit != nil} }

func (b *bodyReader) Read(out []byte) (int, error) {
	for len(b.buf) == 0 {
		if b.done {
			return 0, io.EOF
		}
		line, start, err := b.p.readLine()
		if len(line) > 0 {
			if h, ok := b.p.matchBoundary(line); start && ok {
				b.p.hit = &h
				b.done = true
				continue
			}
			content := line
			var eol []byte
			if line[len(line)-1] == '\n' {
				content = trimEOL(line)
				eol = line[len(content):]
			}
			b.buf = append(append(b.buf[:0], b.pendEOL...), content...)
			b.pendEOL = append(b.pendEOL[:0], eol...)
		}
		if err == io.EOF {
			b.done = true
			b.buf = append(b.buf, b.pendEOL...)
			b.pendEOL = nil
		} else if err != nil {
			return 0, err
		}
	}
	n := copy(out, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

func (p *parser) entity(depth int) (*pNode, error) {
	fields, err := p.readHeaders()
	if err != nil {
		return nil, err
	}
	n := &pNode{Headers: []pHeader{}, ContentType: "text/plain", params: map[string]string{}}
	cte := ""
	for _, f := range fields {
		name := strings.ToLower(f.name)
		v := unfold(f.value)
		n.Headers = append(n.Headers, pHeader{name, headerValue(name, v)})
		switch name {
		case "content-type":
			if t, ps := mediaValue(v); strings.Contains(t, "/") {
				n.ContentType, n.params = t, ps
			}
		case "content-disposition":
			n.disposition, n.dispParams = mediaValue(v)
		case "content-transfer-encoding":
			cte = strings.ToLower(strings.TrimSpace(v))
		case "content-id":
			n.contentID = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(v), "<"), ">")
		}
	}
	ct := n.ContentType
	switch {
	case p.hit != nil:
		// Empty body: fall through to a (empty) leaf.
	case strings.HasPrefix(ct, "multipart/") && depth < MaxParseDepth && n.params["boundary"] != "":
		return n, p.multipart(n, n.params["boundary"], depth)
	case (ct == "message/rfc822" || ct == "message/global") && depth < MaxParseDepth && !encoded(cte):
		child, err := p.entity(depth + 1)
		if err != nil {
			return nil, err
		}
		n.Parts = &[]*pNode{child}
		return n, nil
	case ct == "text/rfc822-headers" && !encoded(cte):
		hs, err := p.readHeaders()
		if err != nil {
			return nil, err
		}
		child := &pNode{Headers: []pHeader{}}
		for _, f := range hs {
			name := strings.ToLower(f.name)
			child.Headers = append(child.Headers, pHeader{name, headerValue(name, unfold(f.value))})
		}
		n.Parts = &[]*pNode{child}
		if _, err := io.Copy(io.Discard, p.body()); err != nil {
			return nil, err
		}
		return n, nil
	}
	return n, p.leaf(n, cte)
}

func encoded(cte string) bool { return cte == "base64" || cte == "quoted-printable" }

func (p *parser) multipart(n *pNode, boundary string, depth int) error {
	parts := []*pNode{}
	n.Parts = &parts
	p.stack = append(p.stack, boundary)
	lvl := len(p.stack) - 1
	defer func() { p.stack = p.stack[:lvl] }()
	// Preamble.
	if _, err := io.Copy(io.Discard, p.body()); err != nil {
		return err
	}
	for {
		h := p.hit
		if h == nil || h.level < lvl {
			// EOF or an enclosing delimiter: no close delimiter.
			return nil
		}
		p.hit = nil
		if h.close {
			// Epilogue, up to an enclosing delimiter or EOF.
			p.stack = p.stack[:lvl]
			_, err := io.Copy(io.Discard, p.body())
			return err
		}
		child, err := p.entity(depth + 1)
		if err != nil {
			return err
		}
		parts = append(parts, child)
		n.Parts = &parts
	}
}

// errReader marks errors of the underlying input so lenient decoders
// can tell them from corrupt data.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// lenient turns decoding errors into EOF (best effort), but keeps
// input errors.
type lenient struct {
	r   io.Reader
	src *errReader
}

func (l lenient) Read(b []byte) (int, error) {
	n, err := l.r.Read(b)
	if err != nil && err != io.EOF {
		if l.src.err != nil {
			return n, l.src.err
		}
		return n, io.EOF
	}
	return n, err
}

// b64filter drops everything that is not base64 alphabet.
type b64filter struct{ r io.Reader }

func (f b64filter) Read(b []byte) (int, error) {
	for {
		n, err := f.r.Read(b)
		j := 0
		for _, c := range b[:n] {
			if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=' {
				b[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

func (p *parser) leaf(n *pNode, cte string) error {
	raw := p.body()
	src := &errReader{r: raw}
	var r io.Reader = src
	switch cte {
	case "base64":
		r = lenient{r: base64.NewDecoder(base64.StdEncoding, b64filter{src}), src: src}
	case "quoted-printable":
		r = lenient{r: quotedprintable.NewReader(src), src: src}
	}
	text := strings.HasPrefix(n.ContentType, "text/")
	if text {
		if cs := strings.ToLower(n.params["charset"]); cs != "" && cs != "utf-8" && cs != "us-ascii" && cs != "utf8" {
			if cr, err := charset.Reader(cs, r); err == nil {
				r = lenient{r: cr, src: src}
			}
		}
		if budget := p.maxInline - p.inlined; budget > 0 {
			b, err := io.ReadAll(io.LimitReader(r, int64(budget)))
			if err != nil {
				return err
			}
			if len(b) < budget {
				s := strings.ToValidUTF8(string(b), "\uFFFD")
				p.inlined += len(b)
				n.Content = &pContent{Inline: &s}
				_, err := io.Copy(io.Discard, raw)
				return err
			}
			r = io.MultiReader(bytes.NewReader(b), r)
		}
	}
	id := strconv.Itoa(p.nextID)
	p.nextID++
	n.Content = &pContent{CreateID: &id}
	if p.store != nil {
		if err := p.store(id, n.ContentType, r); err != nil {
			if src.err != nil {
				return src.err
			}
			return err
		}
	}
	_, err := io.Copy(io.Discard, raw)
	return err
}

// simplify fills the flat lists (§8.3 simplification rules).
func (p *parser) simplify(root *pNode, out *parsedMessage) {
	n := root
	kids := func(n *pNode) []*pNode {
		if n.Parts == nil {
			return nil
		}
		return *n.Parts
	}
	if n.ContentType == "multipart/signed" && len(kids(n)) > 0 {
		n = kids(n)[0]
	}
	if n.ContentType == "multipart/mixed" && len(kids(n)) > 0 {
		out.FileAttachments = flats(kids(n)[1:])
		n = kids(n)[0]
	}
	related := func() {
		if n.ContentType == "multipart/related" && len(kids(n)) > 0 && out.RelatedAttachments == nil {
			out.RelatedAttachments = flats(kids(n)[1:])
			n = kids(n)[0]
		}
	}
	related()
	if n.ContentType == "multipart/alternative" {
		ks := kids(n)
		next := -1
		for i, k := range ks {
			if k.ContentType == "text/plain" && k.Content != nil {
				out.TextBody = append(out.TextBody, flat(k))
				next = i + 1
				break
			}
		}
		if next >= 0 && next < len(ks) {
			n = ks[next]
			related()
		} else {
			n = nil
		}
	}
	if n != nil && n.Content != nil && (n.ContentType == "text/plain" || n.ContentType == "text/html") {
		out.TextBody = append(out.TextBody, flat(n))
	}
}

func flats(ns []*pNode) []*pFlat {
	var out []*pFlat
	for _, n := range ns {
		if n.Content != nil {
			out = append(out, flat(n))
		}
	}
	return out
}

func flat(n *pNode) *pFlat {
	f := &pFlat{ContentType: n.ContentType, ContentID: n.contentID, Content: n.Content}
	if n.disposition == "attachment" {
		f.Filename = n.dispParams["filename"]
	}
	return f
}

var wordDecoder = &stdmime.WordDecoder{CharsetReader: charset.Reader}

// unfold removes the line breaks of a folded raw value.
func unfold(v []byte) string {
	s := strings.NewReplacer("\r\n", "", "\n", "", "\r", "").Replace(string(v))
	return strings.TrimSpace(s)
}

func decodeText(s string) string {
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		s = d
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

type pAddress struct {
	DisplayName string `json:"display_name"`
	Address     string `json:"address"`
}

type pDate struct {
	UnixSecs int64 `json:"unix_secs"`
	TZOffset int   `json:"tz_offset"`
}

// headerValue renders one header value per §8.3; a value that does not
// parse as its structured form falls back to the decoded string.
func headerValue(name, v string) any {
	switch name {
	case "from", "to", "cc", "bcc":
		if strings.TrimSpace(v) == "" {
			return []pAddress{}
		}
		ap := mail.AddressParser{WordDecoder: wordDecoder}
		if as, err := ap.ParseList(v); err == nil {
			out := make([]pAddress, len(as))
			for i, a := range as {
				out[i] = pAddress{DisplayName: strings.ToValidUTF8(a.Name, "\uFFFD"), Address: strings.ToValidUTF8(a.Address, "\uFFFD")}
			}
			return out
		}
	case "date":
		if t, err := mail.ParseDate(v); err == nil {
			_, off := t.Zone()
			return pDate{UnixSecs: t.Unix(), TZOffset: off}
		}
	case "message-id":
		s := strings.TrimSpace(v)
		if strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") {
			s = s[1 : len(s)-1]
		}
		return strings.ToValidUTF8(s, "\uFFFD")
	case "content-type", "content-disposition":
		t, ps := mediaValue(v)
		return []any{t, ps}
	}
	return decodeText(v)
}

// mediaValue parses a Content-Type / Content-Disposition value into the
// lowercased value and its parameters (RFC 2231 and encoded words
// decoded). Unparseable parameters give {}.
func mediaValue(v string) (string, map[string]string) {
	t, ps, err := stdmime.ParseMediaType(v)
	if err != nil && !errors.Is(err, stdmime.ErrInvalidMediaParameter) {
		t, _, _ = strings.Cut(v, ";")
		t = strings.ToLower(strings.TrimSpace(t))
		ps = nil
	}
	out := make(map[string]string, len(ps))
	for k, pv := range ps {
		out[k] = decodeText(pv)
	}
	return strings.ToValidUTF8(t, "\uFFFD"), out
}
