package dsn

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/emersion/go-message"
)

// genMessage yields a message of size bytes, a header section and then
// numbered body lines, without ever holding it.
type genMessage struct {
	size, off int
	header    string
	lf        bool // Unix line ends in the body
}

func (g *genMessage) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	n := min(len(p), g.size-g.off)
	for i := range n {
		p[i] = g.byteAt(g.off + i)
	}
	g.off += n
	return n, nil
}

const bodyLine = "The quick brown fox jumps over the lazy dog 0123456789.\r\n"

func (g *genMessage) byteAt(i int) byte {
	if i < len(g.header) {
		return g.header[i]
	}
	line := bodyLine
	if g.lf {
		line = strings.Replace(bodyLine, "\r\n", "\n", 1)
	}
	return line[(i-len(g.header))%len(line)]
}

// sink counts what it is written and the largest single write.
type sink struct{ total, writes, largest int }

func (s *sink) Write(p []byte) (int, error) {
	s.total += len(p)
	s.writes++
	s.largest = max(s.largest, len(p))
	return len(p), nil
}

func fullNotification(orig io.Reader) Notification {
	return fixed(Notification{
		Ret:        RetFull,
		Original:   orig,
		Recipients: []Recipient{{Address: "bob@example.org", Action: ActionFailed, Code: 552, Reply: "5.3.4 message too big"}},
	})
}

// TestBuildStreamsFull returns a 32 MiB message with RET=FULL and checks
// that it passes through in pieces, with memory use far below its size.
func TestBuildStreamsFull(t *testing.T) {
	const size = 32 << 20
	orig := &genMessage{size: size, header: "Subject: big\r\nMessage-ID: <big@example.com>\r\n\r\n"}
	var out sink
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := Build(&out, fullNotification(orig)); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if out.total < size {
		t.Errorf("wrote %d bytes, less than the %d of the original", out.total, size)
	}
	if out.largest > maxHeaderSection+4096 || out.writes < size/maxHeaderSection {
		t.Errorf("%d writes, the largest %d bytes: not streamed in pieces", out.writes, out.largest)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d writes, the largest %d bytes; %d bytes allocated", out.writes, out.largest, alloc)
	if alloc > 2<<20 {
		t.Errorf("allocated %d bytes to return a %d byte message", alloc, size)
	}
}

// TestBuildFullRoundTrip returns a message with LF line ends that is longer
// than the buffered 64 KiB and checks that it comes back whole, with CRLF.
func TestBuildFullRoundTrip(t *testing.T) {
	gen := func() *genMessage {
		return &genMessage{size: 300 << 10, header: "Subject: lf\nMessage-ID: <lf@example.com>\n\n", lf: true}
	}
	var out bytes.Buffer
	if err := Build(&out, fullNotification(gen())); err != nil {
		t.Fatal(err)
	}
	checkLines(t, out.Bytes())
	orig, _ := io.ReadAll(gen())
	want := bytes.ReplaceAll(orig, []byte("\n"), []byte("\r\n"))

	e, err := message.Read(&out)
	if err != nil {
		t.Fatal(err)
	}
	if ids, _ := (&e.Header).Text("In-Reply-To"); ids != "<lf@example.com>" {
		t.Errorf("In-Reply-To %q", ids)
	}
	mr := e.MultipartReader()
	var p *message.Entity
	for range 3 {
		if p, err = mr.NextPart(); err != nil {
			t.Fatal(err)
		}
	}
	if typ, _, _ := p.Header.ContentType(); typ != "message/rfc822" {
		t.Fatalf("third part is %s", typ)
	}
	got, _ := io.ReadAll(p.Body)
	if !bytes.Equal(got, want) {
		t.Errorf("returned message differs: %d bytes, want %d", len(got), len(want))
	}
}
