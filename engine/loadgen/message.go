package loadgen

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ParseSize reads a message size: a whole number of bytes with an optional suffix k
// (KiB) or m (MiB), as in "2k", "100k", "1m" or "512". A trailing "b" ("2kb") is
// allowed; case does not matter.
func ParseSize(s string) (int, error) {
	t := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "b")
	mult := 1
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1<<10, strings.TrimSuffix(t, "k")
	case strings.HasSuffix(t, "m"):
		mult, t = 1<<20, strings.TrimSuffix(t, "m")
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 || n > (1<<30)/mult {
		return 0, fmt.Errorf("bad size %q: want bytes with an optional k or m suffix, such as 2k, 100k or 1m, at most 1g", s)
	}
	return n * mult, nil
}

// bodyLineLen is the length of a full body line without its CRLF: short enough for any
// mail reader, far below the 998 octets RFC 5322 allows.
const bodyLineLen = 76

// idDomain is the right-hand side of generated Message-IDs.
const idDomain = "bench.koukan.invalid"

// Template is a generated RFC 5322 message of a fixed size, from which each Next call
// makes a copy with a Message-ID of its own. The bytes around the Message-ID are
// built once and shared; a Template is safe for concurrent use.
type Template struct {
	head, tail []byte // the message up to the Message-ID's value, and after it
	token      string // unique to this template, so ids never repeat across runs
	seq        atomic.Uint64
}

// idLen is the length of every Message-ID value: "<" token "." 12 digits "@" domain ">".
func (t *Template) idLen() int { return 1 + len(t.token) + 1 + 12 + 1 + len(idDomain) + 1 }

// NewTemplate builds a message of size bytes (CRLF line ends, 7-bit printable text)
// with Date, Message-ID, From, To, Subject and MIME headers, and a body of printable
// lines filling it to size. The size is exact unless the headers alone are larger, in
// which case the message is the headers and an empty body.
func NewTemplate(size int, from, to string, date time.Time) *Template {
	var tok [8]byte
	rand.Read(tok[:])
	t := &Template{token: hex.EncodeToString(tok[:])}
	var h bytes.Buffer
	fmt.Fprintf(&h, "Date: %s\r\n", date.Format(time.RFC1123Z))
	h.WriteString("Message-ID: ")
	t.head = bytes.Clone(h.Bytes())
	h.Reset()
	h.WriteString("\r\n")
	fmt.Fprintf(&h, "From: <%s>\r\n", from)
	fmt.Fprintf(&h, "To: <%s>\r\n", to)
	fmt.Fprintf(&h, "Subject: koukan bench, %d bytes\r\n", size)
	h.WriteString("MIME-Version: 1.0\r\n")
	h.WriteString("Content-Type: text/plain; charset=us-ascii\r\n")
	h.WriteString("\r\n")
	bodyLen := size - len(t.head) - t.idLen() - h.Len()
	h.Write(body(max(bodyLen, 0)))
	t.tail = h.Bytes()
	return t
}

// body is n bytes of CRLF-terminated printable lines (n is rounded up to 2 when it is 1,
// the only length no line can make). Lines are numbered so that no two look alike, and
// none starts with "." or "From ".
func body(n int) []byte {
	if n == 1 {
		n = 2
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 "
	full, rem := n/(bodyLineLen+2), n%(bodyLineLen+2)
	lens := make([]int, 0, full+1)
	for range full {
		lens = append(lens, bodyLineLen)
	}
	switch {
	case rem >= 2:
		lens = append(lens, rem-2)
	case rem == 1: // full > 0 here: lengthen the last line by one
		lens[len(lens)-1]++
	}
	b := make([]byte, 0, n)
	for i, l := range lens {
		line := fmt.Appendf(nil, "%07d ", i)
		for j := 0; len(line) < l; j++ {
			line = append(line, alphabet[(i+j)%len(alphabet)])
		}
		b = append(b, line[:l]...)
		b = append(b, '\r', '\n')
	}
	return b
}

// Size is the length of every message made from t, in bytes.
func (t *Template) Size() int { return len(t.head) + t.idLen() + len(t.tail) }

// Next is the next message: t's bytes with a Message-ID no other message has.
func (t *Template) Next() Message {
	return Message{t: t, ID: fmt.Sprintf("<%s.%012d@%s>", t.token, t.seq.Add(1), idDomain)}
}

// Message is one message made from a Template.
type Message struct {
	t  *Template
	ID string // the Message-ID header's value, with its angle brackets
}

// Len is the message's size in bytes.
func (m Message) Len() int { return len(m.t.head) + len(m.ID) + len(m.t.tail) }

// WriteTo writes the message to w without copying it first.
func (m Message) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for _, b := range [][]byte{m.t.head, []byte(m.ID), m.t.tail} {
		n, err := w.Write(b)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Reader reads the message.
func (m Message) Reader() io.Reader {
	return io.MultiReader(bytes.NewReader(m.t.head), strings.NewReader(m.ID), bytes.NewReader(m.t.tail))
}

// String is the whole message.
func (m Message) String() string { return string(m.t.head) + m.ID + string(m.t.tail) }
