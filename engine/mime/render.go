// Package mime renders a message_builder spec (tx.MessageSpec, spec section
// 8.1/8.2) into an RFC 5322 / MIME message.
//
// The structure is mixed(related(alternative(...), inline parts...),
// attachments...), each layer present only when needed:
//   - text_body[0] is the primary body; further text_body parts make a
//     multipart/alternative ordered least preferred first (RFC 2046):
//     text/plain parts first, then the others in reverse of their listing, so
//     text_body[0] comes last unless it is text/plain;
//   - related_attachments wrap that in multipart/related (Content-Disposition:
//     inline, Content-ID);
//   - file_attachments wrap everything in multipart/mixed
//     (Content-Disposition: attachment; filename=, RFC 2231 when non-ASCII).
//
// text/* parts must be valid UTF-8, get charset=utf-8, have their line
// endings made CRLF, and are quoted-printable when their start is mostly
// ASCII and base64 otherwise; other parts are base64.
package mime

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	stdmime "mime"
	"mime/quotedprintable"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"github.com/koukan/koukan/engine/tx"
)

// Opener opens the blob holding a part's bytes (a normalized part's
// create_id).
type Opener func(blobID string) (io.ReadCloser, error)

// Render writes the message for spec to w. Part contents are streamed: inline
// content comes from the spec, create_id content from open. reuse_uri content
// must have been normalized away (spec.Normalize) and is an error.
//
// Headers and part metadata are validated before anything is written; an
// error while reading a blob or an invalid UTF-8 text part is only found while
// streaming, so on any error the output is incomplete and must be discarded.
//
// With a seed the output is reproducible: multipart boundaries derive from it, so the same
// spec and contents render the same bytes every time (a chain reads the message more than
// once: to sign it, then to send it). An empty seed draws random boundaries.
func Render(w io.Writer, spec tx.MessageSpec, open Opener, seed string) error {
	boundary := randomBoundary
	if seed != "" {
		n := 0
		boundary = func() string {
			n++
			sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", seed, n))
			return "=_" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:20])
		}
	}
	return (&renderer{open: open, boundary: boundary}).render(w, spec)
}

type renderer struct {
	open     Opener
	boundary func() string
}

func randomBoundary() string {
	return "=_" + rand.Text()
}

// node is one entity of the MIME tree.
type node struct {
	header   message.Header
	children []*node  // multipart
	part     *tx.Part // leaf
	path     string   // leaf: e.g. text_body[1]
	text     bool     // leaf is text/*
	boundary string   // multipart
}

func (r *renderer) render(w io.Writer, spec tx.MessageSpec) error {
	fields, hasMV, err := renderHeaders(spec.Headers)
	if err != nil {
		return err
	}
	root, err := r.tree(spec)
	if err != nil {
		return err
	}

	bw := bufio.NewWriterSize(w, 32<<10)
	out := &tailWriter{w: bw}
	create := func(eh textproto.Header) (io.Writer, error) {
		// textproto writes header fields last-added first; start from the
		// root entity's fields, add MIME-Version, then the spec's fields in
		// reverse, so the output reads: spec headers, MIME-Version, Content-*.
		h := eh.Copy()
		if !hasMV {
			h.AddRaw([]byte("MIME-Version: 1.0\r\n"))
		}
		for i := len(fields) - 1; i >= 0; i-- {
			h.AddRaw(fields[i])
		}
		return out, textproto.WriteHeader(out, h)
	}
	qp, err := r.write(create, root)
	if err != nil {
		return err
	}
	// A multipart body ends in its closing delimiter line; a single-part
	// body may end mid-line. End it with CRLF: for quoted-printable as a
	// soft line break, which decodes to nothing.
	if out.tail != [2]byte{'\r', '\n'} {
		end := "\r\n"
		if qp {
			end = "=\r\n"
		}
		if _, err := io.WriteString(out, end); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// tailWriter remembers the last two bytes written.
type tailWriter struct {
	w    io.Writer
	tail [2]byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	switch {
	case n >= 2:
		t.tail = [2]byte{p[n-2], p[n-1]}
	case n == 1:
		t.tail = [2]byte{t.tail[1], p[0]}
	}
	return n, err
}

// write creates the entity for n through create and writes its body. It
// reports whether n is a quoted-printable leaf.
func (r *renderer) write(create func(textproto.Header) (io.Writer, error), n *node) (qp bool, err error) {
	if n.part != nil {
		return r.writeLeaf(create, n)
	}
	w, err := create(n.header.Header)
	if err != nil {
		return false, err
	}
	mw := textproto.NewMultipartWriter(w)
	if err := mw.SetBoundary(n.boundary); err != nil {
		return false, err
	}
	for _, c := range n.children {
		if _, err := r.write(mw.CreatePart, c); err != nil {
			return false, err
		}
	}
	return false, mw.Close()
}

func (r *renderer) multipart(subtype string, children []*node) *node {
	n := &node{children: children, boundary: r.boundary()}
	n.header.SetContentType("multipart/"+subtype, map[string]string{"boundary": n.boundary})
	return n
}

func (r *renderer) tree(spec tx.MessageSpec) (*node, error) {
	if len(spec.TextBody) == 0 {
		return nil, errors.New("text_body: at least one part is required")
	}
	var texts []*node
	for i := range spec.TextBody {
		n, err := leaf(&spec.TextBody[i], fmt.Sprintf("text_body[%d]", i), "")
		if err != nil {
			return nil, err
		}
		texts = append(texts, n)
	}
	body := texts[0]
	if len(texts) > 1 {
		body = r.multipart("alternative", alternativeOrder(texts))
	}
	if len(spec.RelatedAttachments) > 0 {
		children := []*node{body}
		for i := range spec.RelatedAttachments {
			n, err := leaf(&spec.RelatedAttachments[i], fmt.Sprintf("related_attachments[%d]", i), "inline")
			if err != nil {
				return nil, err
			}
			children = append(children, n)
		}
		body = r.multipart("related", children)
	}
	if len(spec.FileAttachments) > 0 {
		children := []*node{body}
		for i := range spec.FileAttachments {
			n, err := leaf(&spec.FileAttachments[i], fmt.Sprintf("file_attachments[%d]", i), "attachment")
			if err != nil {
				return nil, err
			}
			children = append(children, n)
		}
		body = r.multipart("mixed", children)
	}
	return body, nil
}

// alternativeOrder orders text parts least preferred first: text/plain
// parts in their listed order, then the rest in reverse, so the primary
// text_body[0] ends up last (most preferred) unless it is text/plain.
func alternativeOrder(texts []*node) []*node {
	var plain, rich []*node
	for _, n := range texts {
		if t, _, _ := n.header.ContentType(); t == "text/plain" {
			plain = append(plain, n)
		} else {
			rich = append([]*node{n}, rich...)
		}
	}
	return append(plain, rich...)
}

func leaf(p *tx.Part, path, disposition string) (*node, error) {
	n := &node{part: p, path: path}
	mt, params, err := stdmime.ParseMediaType(p.ContentType)
	if err != nil || !strings.Contains(mt, "/") {
		return nil, fmt.Errorf("%s.content_type: invalid media type %q", path, p.ContentType)
	}
	if strings.HasPrefix(mt, "multipart/") || strings.HasPrefix(mt, "message/") {
		return nil, fmt.Errorf("%s.content_type: %s parts are not supported", path, mt)
	}
	switch p.Content.Kind {
	case tx.ContentInline, tx.ContentCreate:
	default:
		return nil, fmt.Errorf("%s.content: must be inline or create_id (normalize the spec first)", path)
	}
	n.text = strings.HasPrefix(mt, "text/")
	if n.text {
		params["charset"] = "utf-8"
	}
	if stdmime.FormatMediaType(mt, params) == "" {
		return nil, fmt.Errorf("%s.content_type: invalid media type %q", path, p.ContentType)
	}
	n.header.SetContentType(mt, params)
	if p.ContentID != "" {
		if !validID(p.ContentID) {
			return nil, fmt.Errorf("%s.content_id: invalid id %q (printable ASCII without <>, spaces)", path, p.ContentID)
		}
		n.header.Set("Content-ID", "<"+p.ContentID+">")
	}
	if disposition != "" {
		dp := map[string]string{}
		if p.Filename != "" {
			if strings.ContainsFunc(p.Filename, func(r rune) bool { return r < ' ' || r == 0x7f }) || !utf8.ValidString(p.Filename) {
				return nil, fmt.Errorf("%s.filename: must be UTF-8 without control characters", path)
			}
			dp["filename"] = p.Filename
		}
		v := stdmime.FormatMediaType(disposition, dp)
		if v == "" {
			return nil, fmt.Errorf("%s.filename: cannot be encoded", path)
		}
		n.header.Set("Content-Disposition", v)
	}
	return n, nil
}

// sniffLen is how much of a text part decides its transfer encoding.
const sniffLen = 4 << 10

// writeLeaf opens a leaf's content, picks its transfer encoding, creates
// the entity and streams the content into it.
func (r *renderer) writeLeaf(create func(textproto.Header) (io.Writer, error), n *node) (qp bool, err error) {
	var src io.Reader
	if n.part.Content.Kind == tx.ContentInline {
		src = strings.NewReader(n.part.Content.Value)
	} else {
		rc, err := r.open(n.part.Content.Value)
		if err != nil {
			return false, fmt.Errorf("%s.content: opening blob %q: %w", n.path, n.part.Content.Value, err)
		}
		defer rc.Close()
		src = rc
	}
	h := n.header.Copy()
	if n.text {
		br := bufio.NewReaderSize(src, sniffLen)
		peek, _ := br.Peek(sniffLen) // a read error resurfaces on Read
		qp = mostlyASCII(peek)
		src = br
	}
	cte := "base64"
	if qp {
		cte = "quoted-printable"
	}
	h.Set("Content-Transfer-Encoding", cte)
	// Put Content-Type first among the part's fields (they are written
	// last-added first).
	ct := h.Get("Content-Type")
	h.Set("Content-Type", ct)
	w, err := create(h.Header)
	if err != nil {
		return false, err
	}
	var enc io.WriteCloser
	if qp {
		enc = quotedprintable.NewWriter(w)
	} else {
		enc = base64.NewEncoder(base64.StdEncoding, &lineWrapper{w: w})
	}
	if n.text {
		err = copyText(enc, src)
	} else {
		_, err = io.Copy(enc, src)
	}
	if err == nil {
		err = enc.Close()
	}
	if err != nil {
		return false, fmt.Errorf("%s.content: %w", n.path, err)
	}
	return qp, nil
}

// base64LineLen is the length of base64 lines (RFC 2045: at most 76).
const base64LineLen = 76

var crlf = []byte("\r\n")

// lineWrapper breaks base64 output into CRLF-terminated lines without
// allocating (go-message's own wrapper allocates per line).
type lineWrapper struct {
	w   io.Writer
	col int
}

func (l *lineWrapper) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if l.col == base64LineLen {
			if _, err := l.w.Write(crlf); err != nil {
				return written, err
			}
			l.col = 0
		}
		k := min(len(p), base64LineLen-l.col)
		n, err := l.w.Write(p[:k])
		written += n
		l.col += n
		if err != nil {
			return written, err
		}
		p = p[k:]
	}
	return written, nil
}

// mostlyASCII reports whether quoted-printable suits b: at most one byte in
// six needs escaping (beyond that base64 is smaller).
func mostlyASCII(b []byte) bool {
	esc := 0
	for _, c := range b {
		if c >= 0x7f || c < ' ' && c != '\t' && c != '\r' && c != '\n' {
			esc++
		}
	}
	return esc*6 <= len(b)
}

var errNotUTF8 = errors.New("text content is not valid UTF-8")

// copyText copies text from src to dst, checking that it is valid UTF-8
// and turning bare LF line endings into CRLF (the canonical form of text,
// RFC 2049). It works in fixed-size buffers.
func copyText(dst io.Writer, src io.Reader) error {
	buf := make([]byte, 32<<10)
	out := make([]byte, 0, 2*len(buf))
	carry := 0
	prevCR := false
	for {
		n, rerr := src.Read(buf[carry:])
		data := buf[:carry+n]
		cut := len(data)
		if rerr == nil {
			cut = completeRunes(data)
		} else if rerr != io.EOF {
			return rerr
		}
		if !utf8.Valid(data[:cut]) {
			return errNotUTF8
		}
		out = out[:0]
		for _, c := range data[:cut] {
			if c == '\n' && !prevCR {
				out = append(out, '\r')
			}
			out = append(out, c)
			prevCR = c == '\r'
		}
		if len(out) > 0 {
			if _, err := dst.Write(out); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		carry = copy(buf, data[cut:])
	}
}

// completeRunes returns the length of the prefix of b that does not end in
// the middle of a UTF-8 sequence.
func completeRunes(b []byte) int {
	for j := len(b) - 1; j >= 0 && j >= len(b)-utf8.UTFMax+1; j-- {
		if utf8.RuneStart(b[j]) {
			if !utf8.FullRune(b[j:]) {
				return j
			}
			break
		}
	}
	return len(b)
}
