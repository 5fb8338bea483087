package inbound

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/koukan/koukan/engine/rest/resttest"
)

// putCounter counts body PUTs and the most bytes one carried.
type putCounter struct {
	puts, maxLen atomic.Int64
}

func (p *putCounter) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			p.puts.Add(1)
			for {
				m := p.maxLen.Load()
				if r.ContentLength <= m || p.maxLen.CompareAndSwap(m, r.ContentLength) {
					break
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// A message larger than SIZE gets 552 and is never whole anywhere: the
// router got at most a bounded prefix, which is cancelled.
func TestSizeExceededWhileStreaming(t *testing.T) {
	t.Parallel()
	pc := &putCounter{}
	const limit, chunk = 64 << 10, 8 << 10
	e := start(t, Options{MaxMessageBytes: limit, ChunkSize: chunk}, resttest.Options{Middleware: pc.middleware})
	c := e.client()
	if _, ext := c.Extension("SIZE"); ext != fmt.Sprint(limit) {
		t.Errorf("SIZE %s", ext)
	}

	// Declared too big: refused at MAIL.
	wantCode(t, c.Mail("alice@example.com", &smtp.MailOptions{Size: limit + 1}), 552, "5.3.4")

	line := strings.Repeat("z", 998) + "\r\n"
	_, err := send(c, "alice@example.com", []string{"bob@example.com"}, strings.Repeat(line, 1000)) // 1 MB
	wantCode(t, err, 552, "5.3.4")

	txs := e.waitFor("the transaction cancelled", func(txs []resttest.Received) bool { return len(txs) == 1 && txs[0].Tx.Cancelled })
	rc := txs[0]
	if len(rc.Body) > limit || rc.BodyFinalized || rc.Tx.DataResponse != nil {
		t.Errorf("the router got %d bytes (finalized %v, data response %v), want at most %d and no message", len(rc.Body), rc.BodyFinalized, rc.Tx.DataResponse, limit)
	}
	if pc.maxLen.Load() > chunk {
		t.Errorf("a PUT of %d bytes, over the chunk size", pc.maxLen.Load())
	}

	// The connection goes on; a message within the limit passes.
	if _, err := send(c, "alice@example.com", []string{"bob@example.com"}, strings.Repeat(line, 10)); err != nil {
		t.Fatal(err)
	}
	if txs := e.finished(2); len(txs[1].Body) != 10*len(line) {
		t.Errorf("%s", describe(txs))
	}

	// go-smtp's DATA limit: one byte under passes, exactly the limit does
	// not (its reader fails once the limit is used up, before it sees the
	// end of data).
	under := ofSize(limit - 1)
	if _, err := send(c, "alice@example.com", []string{"bob@example.com"}, under); err != nil {
		t.Errorf("a message of %d bytes: %v", len(under), err)
	}
	_, err = send(c, "alice@example.com", []string{"bob@example.com"}, "x"+under)
	wantCode(t, err, 552, "5.3.4")
}

// ofSize is a message of n bytes in lines of at most 1000.
func ofSize(n int) string {
	var b strings.Builder
	for b.Len() < n {
		line := min(n-b.Len(), 1000)
		b.WriteString(strings.Repeat("u", max(line-2, 0)) + "\r\n"[:min(line, 2)])
	}
	return b.String()
}

func TestClientDisconnectsMidData(t *testing.T) {
	t.Parallel()
	e := start(t, Options{ChunkSize: 4096}, resttest.Options{})
	r := e.dialRaw()
	r.expect("220 ")
	r.cmd("EHLO client.test", "250")
	r.cmd("MAIL FROM:<a@example.com>", "250")
	r.cmd("RCPT TO:<b@example.com>", "250")
	r.cmd("DATA", "354")
	r.write(strings.Repeat("some text that is not the end\r\n", 1000))
	// The router has part of it...
	e.waitFor("some body upstream", func(txs []resttest.Received) bool { return len(txs) == 1 && len(txs[0].Body) > 0 })
	r.c.Close()
	// ...and is told to forget it.
	txs := e.waitFor("the transaction cancelled", func(txs []resttest.Received) bool { return txs[0].Tx.Cancelled })
	if txs[0].BodyFinalized || txs[0].Tx.DataResponse != nil {
		t.Errorf("%s", describe(txs))
	}
}

func TestBDAT(t *testing.T) {
	t.Parallel()
	e := start(t, Options{ChunkSize: 1024, MaxMessageBytes: 10000}, resttest.Options{})
	r := e.dialRaw()
	r.expect("220 ")
	if caps := r.cmd("EHLO client.test", "250"); !strings.Contains(caps, "CHUNKING") {
		t.Fatalf("no CHUNKING in %q", caps)
	}
	part1 := "Subject: bdat\r\n\r\n" + strings.Repeat("binary\x00\nbare LF and no dot-stuffing:\r\n.\r\n", 50)
	part2 := "the end\r\n"
	// Pipelined: the envelope and the first chunk in one write.
	r.write(fmt.Sprintf("MAIL FROM:<a@example.com> BODY=8BITMIME\r\nRCPT TO:<b@example.com>\r\nBDAT %d\r\n%s", len(part1), part1))
	r.expect("250")
	r.expect("250")
	r.expect("250 2.0.0 Continue")
	r.write(fmt.Sprintf("BDAT %d LAST\r\n%s", len(part2), part2))
	r.expect("250 2.0.0 ok")
	rc := e.finished(1)[0]
	if string(rc.Body) != part1+part2 || !rc.BodyFinalized {
		t.Errorf("body %q", rc.Body)
	}

	// Over the limit across chunks: 552, cancelled upstream, and (a BDAT
	// transfer that ended without the router's answer) the end of the
	// connection; see Session.Data.
	r.cmd("MAIL FROM:<a@example.com>", "250")
	r.cmd("RCPT TO:<b@example.com>", "250")
	r.write("BDAT 6000\r\n" + strings.Repeat("y", 6000))
	r.expect("250")
	r.write("BDAT 6000 LAST\r\n" + strings.Repeat("y", 6000) + "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT 1 LAST\r\nz")
	r.expect("552 5.3.4")
	// What was pipelined after it is refused, and no BDAT starts.
	r.expect("421 4.7.0")
	r.expect("502 5.5.1")
	r.expect("502 5.5.1")
	r.closed()
	txs := e.waitFor("the second transaction cancelled", func(txs []resttest.Received) bool { return len(txs) == 2 && txs[1].Tx.Cancelled })
	if txs[1].BodyFinalized {
		t.Error("finalized")
	}

	// RSET in the middle of a BDAT transfer cancels upstream.
	r = e.dialRaw()
	r.expect("220 ")
	r.cmd("EHLO client.test", "250")
	r.cmd("MAIL FROM:<a@example.com>", "250")
	r.cmd("RCPT TO:<b@example.com>", "250")
	r.write("BDAT 100\r\n" + strings.Repeat("w", 100))
	r.expect("250")
	r.cmd("RSET", "250")
	e.waitFor("the third transaction cancelled", func(txs []resttest.Received) bool { return len(txs) == 3 && txs[2].Tx.Cancelled })
	r.closed()
}

func TestPipelining(t *testing.T) {
	t.Parallel()
	e := start(t, Options{}, resttest.Options{})
	r := e.dialRaw()
	r.expect("220 ")
	r.cmd("EHLO client.test", "250")
	r.write("MAIL FROM:<a@example.com>\r\nRCPT TO:<b1@example.com>\r\nRCPT TO:<b2@example.com>\r\nRCPT TO:<b3@example.com>\r\nDATA\r\n")
	for range 4 {
		r.expect("250")
	}
	r.expect("354")
	r.write("Subject: piped\r\n\r\nbody\r\n.\r\nMAIL FROM:<c@example.com>\r\nRCPT TO:<d@example.com>\r\nDATA\r\n")
	r.expect("250 2.0.0 ok")
	r.expect("250")
	r.expect("250")
	r.expect("354")
	r.cmd("second\r\n.", "250")
	txs := e.finished(2)
	if len(txs[0].Tx.RcptTo) != 3 || txs[0].Tx.RcptTo[2].Address != "b3@example.com" || string(txs[1].Body) != "second\r\n" {
		t.Errorf("%s", describe(txs))
	}
}

// RFC 5321 §4.5.3.1: lines up to MaxLineLength, CRLF included, are
// fine; a longer one ends the connection.
func TestLongCommandLines(t *testing.T) {
	t.Parallel()
	e := start(t, Options{}, resttest.Options{})
	r := e.dialRaw()
	r.expect("220 ")
	r.cmd("EHLO client.test", "250")
	// NOOP's argument is ignored, so the line's length is all that counts.
	line := "NOOP " + strings.Repeat("x", 8192-len("NOOP ")-2)
	r.cmd(line, "250")
	// An 8 kB RCPT line with its parameters.
	r.cmd("MAIL FROM:<a@example.com>", "250")
	orcpt := "RCPT TO:<b@example.com> NOTIFY=FAILURE ORCPT=rfc822;"
	r.cmd(orcpt+strings.Repeat("c", 8000-len(orcpt))+"@example.com", "250")
	r.cmd("RSET", "250")
	r.write(line + "x\r\n")
	r.expect("500 5.4.0")
	r.closed()
}

// Bare LF: commands may end in LF alone; in DATA, only CRLF.CRLF ends the
// message, so text that another MTA might read as an end of data (and a
// smuggled second message) stays text.
func TestBareLF(t *testing.T) {
	t.Parallel()
	e := start(t, Options{}, resttest.Options{})
	r := e.dialRaw()
	r.expect("220 ")
	r.write("EHLO client.test\n")
	r.expect("250")
	r.write("MAIL FROM:<a@example.com>\n")
	r.expect("250")
	r.write("RCPT TO:<b@example.com>\n")
	r.expect("250")
	r.write("DATA\n")
	r.expect("354")
	r.write("line one\n.\nMAIL FROM:<smuggled@example.com>\r\n\n.\r\nRCPT TO:<x@example.com>\r\nDATA\r\nsmuggled\r\n.\r\n")
	r.expect("250 2.0.0 ok")
	r.cmd("QUIT", "221")
	txs := e.finished(1)
	if len(txs) != 1 {
		t.Fatalf("%d transactions: %s", len(txs), describe(txs))
	}
	want := "line one\n.\nMAIL FROM:<smuggled@example.com>\r\n\n.\r\nRCPT TO:<x@example.com>\r\nDATA\r\nsmuggled\r\n"
	if got := string(txs[0].Body); got != want {
		t.Errorf("body %q, want %q", got, want)
	}
}

// A stalled body upload is a timeout, told apart from a slow client.
func TestPutStalls(t *testing.T) {
	t.Parallel()
	var stall atomic.Bool
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && stall.Load() {
				select {
				case <-time.After(5 * time.Second):
				case <-r.Context().Done():
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	e := start(t, Options{PutTimeout: 300 * time.Millisecond, ChunkSize: 1024}, resttest.Options{Middleware: mw})
	r := e.dialRaw()
	r.expect("220 ")
	r.cmd("EHLO client.test", "250")
	r.cmd("MAIL FROM:<a@example.com>", "250")
	r.cmd("RCPT TO:<b@example.com>", "250")
	r.cmd("DATA", "354")
	// A client slower than PutTimeout is fine...
	r.write(strings.Repeat("a", 500))
	time.Sleep(500 * time.Millisecond)
	r.write(strings.Repeat("b", 1000) + "\r\n")
	time.Sleep(500 * time.Millisecond)
	r.cmd(".", "250")
	// ...a router that does not take the body is not.
	stall.Store(true)
	r.cmd("MAIL FROM:<a@example.com>", "250")
	r.cmd("RCPT TO:<b@example.com>", "250")
	r.cmd("DATA", "354")
	text := r.cmd(strings.Repeat("c", 3000)+"\r\n.", "451 4.4.5")
	if !strings.Contains(text, "transaction ") {
		t.Errorf("no transaction id: %q", text)
	}
	e.waitFor("the second transaction cancelled", func(txs []resttest.Received) bool { return len(txs) == 2 && txs[1].Tx.Cancelled })
}
