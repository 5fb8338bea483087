package mime

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/koukan/koukan/engine/tx"
)

const validHeader = "From: \"alice a\" <alice@example.com>\r\nSubject: hello\r\nMessage-id: <abc@xyz>\r\n" +
	"Date: Wed, 06 Mar 2024 10:42:31 -0800\r\n"

func TestValidate(t *testing.T) {
	file := func(name string) string {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	mp := func(inner string) string {
		return validHeader + "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + inner
	}
	const b64part = "--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	for _, c := range []struct {
		name     string
		msg      string
		smtputf8 bool
		level    Level
		err      string // a part of Err
		received int
	}{
		{"trivial", validHeader + "Received: from a by b; Fri, 13 Feb 2009 23:31:29 +0000\r\n\r\nworld!\r\n", false, LevelHigh, "", 1},
		{"multipart.msg", file("multipart.msg"), false, LevelHigh, "", 0},
		// related.msg ends with "--yyy---", which is no close delimiter (RFC 2046 5.1.1): the
		// line is base64 content, as it is to Python's parser.
		{"related.msg", file("related.msg"), false, LevelMedium, "InvalidBase64CharactersDefect", 0},
		{"nested.msg", file("nested.msg"), false, LevelHigh, "", 0},
		{"unknown_content_type.msg", file("unknown_content_type.msg"), false, LevelHigh, "", 0},
		{"bad_multipart.msg", file("bad_multipart.msg"), false, LevelMedium, "CloseBoundaryNotFoundDefect", 0},
		// multipart2.msg has parts whose header runs into the body without an empty line.
		{"multipart2.msg", file("multipart2.msg"), false, LevelMedium, "MissingHeaderBodySeparatorDefect", 0},
		{"utf8 headers without SMTPUTF8", file("utf8_headers.msg"), false, LevelBasic, "UndecodableBytesDefect", 1},
		{"utf8 headers with SMTPUTF8", file("utf8_headers.msg"), true, LevelHigh, "", 1},
		{"utf8 local part", "From:  <\xe3\x82\xa2\xe3\x83\xaa\xe3\x82\xb9@example.com>\r\nMessage-id: <abc@xyz>\r\nDate: Wed, 06 Mar 2024 10:42:31 -0800\r\n\r\nworld!\r\n", true, LevelHigh, "", 0},
		{"invalid utf8", validHeader + "Subject: \xff\xfe\r\n\r\nx\r\n", true, LevelBasic, "subject: UndecodableBytesDefect", 0},

		{"no separator", validHeader + "hello", false, LevelNone, "MissingHeaderBodySeparatorDefect", -1},
		{"bad_headers.msg", "To bob\r\nFrom: <alice@example.com>\r\n\r\nhello", false, LevelNone, "MissingHeaderBodySeparatorDefect", -1},
		{"space in name", "X Y: z\r\n" + validHeader + "\r\nhello", false, LevelNone, "line 1 is not a field", -1},

		{"bad_from.msg", "From: \"alice a\" <alice@ex\r\n" + validHeader[strings.Index(validHeader, "Subject"):] + "\r\nworld!\r\n", false, LevelBasic, "from: InvalidHeaderDefect", 0},
		{"bad_date.msg", strings.Replace(validHeader, "Date: Wed, 06 Mar 2024 10:42:31 -0800", "Date: today", 1) + "\r\nhello", false, LevelBasic, "date: InvalidDateDefect", 0},
		{"missing_headers.msg", strings.Replace(validHeader, "Message-id: <abc@xyz>\r\n", "", 1) + "Received: x; Fri, 13 Feb 2009 23:31:29 +0000\r\n\r\nworld!\r\n", false, LevelBasic, "message-id: missing", 1},
		{"two dates", validHeader + "Date: Wed, 06 Mar 2024 10:42:31 -0800\r\n\r\nx\r\n", false, LevelBasic, "date: 2 fields", 0},
		{"bad msg-id", strings.Replace(validHeader, "<abc@xyz>", "<abc>", 1) + "\r\nx\r\n", false, LevelBasic, "message-id: InvalidHeaderDefect", 0},
		{"8bit_headers.msg", validHeader + "Subject: hello \xaa\xbb\xcc\r\n\r\nworld!\r\n", false, LevelBasic, "subject: UndecodableBytesDefect", 0},
		{"ascii_ctl_headers.msg", validHeader + "Subject: hello \x07\x10\x00\r\n\r\nworld!\r\n", false, LevelBasic, "NonPrintableDefect: control character 0x07", 0},
		{"bare LF", validHeader + "Subject: x\n\r\nworld!\r\n", false, LevelBasic, "line ending is not CRLF", 0},
		{"group From", strings.Replace(validHeader, `"alice a" <alice@example.com>`, "undisclosed-recipients:;", 1) + "\r\nx\r\n", false, LevelBasic, "from: InvalidHeaderDefect: no mailbox", 0},

		{"bad_cc.msg", validHeader + "To: \"bob b\" <bob@ex\r\n\r\nworld!\r\n", false, LevelMedium, "to: InvalidHeaderDefect", 0},
		{"empty Bcc", validHeader + "Bcc:\r\n\r\nworld!\r\n", false, LevelHigh, "", 0},
		{"leading continuation", " x\r\n" + validHeader + "\r\nworld!\r\n", false, LevelMedium, "FirstHeaderLineIsContinuationDefect", 0},
		{"bad content-type", validHeader + "Content-Type: text plain\r\n\r\nx\r\n", false, LevelMedium, "content-type: InvalidHeaderDefect", 0},
		{"bad mime-version", validHeader + "MIME-Version: one (1.0)\r\n\r\nx\r\n", false, LevelMedium, "mime-version", 0},
		{"mime-version comment", validHeader + "MIME-Version: 1.0 (produced by x)\r\n\r\nx\r\n", false, LevelHigh, "", 0},
		{"no boundary", validHeader + "Content-Type: multipart/mixed\r\n\r\nx\r\n", false, LevelMedium, "NoBoundaryInMultipartDefect", 0},
		{"no start", mp("hello\r\n"), false, LevelMedium, "StartBoundaryNotFoundDefect", 0},
		{"close only", mp("--b--\r\n"), false, LevelMedium, "no parts", 0},
		{"base64 ok", mp(b64part + "eW9s\r\nb2Nh dA==\r\n--b--\r\nepilogue\r\n"), false, LevelHigh, "", 0},
		{"base64 bad char", mp(b64part + "eW9s*b2NhdA==\r\n--b--\r\n"), false, LevelMedium, "InvalidBase64CharactersDefect", 0},
		{"base64 no padding", mp(b64part + "eW9sb2NhdA\r\n--b--\r\n"), false, LevelMedium, "InvalidBase64PaddingDefect", 0},
		{"base64 length", mp(b64part + "eW9sb\r\n--b--\r\n"), false, LevelMedium, "InvalidBase64LengthDefect", 0},
		{"multipart cte", strings.Replace(mp("--b\r\n\r\nx\r\n--b--\r\n"), "\r\n\r\n", "\r\nContent-Transfer-Encoding: base64\r\n\r\n", 1), false, LevelMedium, "InvalidMultipartContentTransferEncodingDefect", 0},
		{"part header", mp("--b\r\nTo: <bob@\r\n\r\nx\r\n--b--\r\n"), false, LevelMedium, "to: InvalidHeaderDefect", 0},
		{"8bit part header", mp("--b\r\nContent-Description: \xe9\r\n\r\nx\r\n--b--\r\n"), false, LevelMedium, "UndecodableBytesDefect", 0},
		{"empty part", mp("--b\r\nContent-Type: text/plain\r\n--b--\r\n"), false, LevelHigh, "", 0},
		{"nested digest", mp("--b\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\n" +
			"From: <x@example.com>\r\nSubject: inner\r\n\r\nbody\r\n--d--\r\n--b--\r\n"), false, LevelHigh, "", 0},
		{"inner message defect", mp("--b\r\nContent-Type: message/rfc822\r\n\r\nDate: never\r\n\r\nbody\r\n--b--\r\n"), false, LevelMedium, "date: InvalidDateDefect", 0},
		{"inner close missing", mp("--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--b--\r\n"), false, LevelMedium, "no close delimiter --c--", 0},
		{"encoded rfc822", mp("--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\neA==\r\n--b--\r\n"), false, LevelMedium, "message/rfc822 with base64", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := Validate(strings.NewReader(c.msg), ValidateOptions{SMTPUTF8: c.smtputf8})
			if err != nil {
				t.Fatal(err)
			}
			if v.Level != c.level || !strings.Contains(v.Err, c.err) || (c.err == "") != (v.Err == "") || v.ReceivedCount != c.received {
				t.Errorf("got %s %q received %d, want %s %q received %d", v.Level, v.Err, v.ReceivedCount, c.level, c.err, c.received)
			}
		})
	}
}

func TestValidateHeaderFrom(t *testing.T) {
	for _, c := range []struct{ from, addr, name string }{
		{`"alice a" <alice@example.com>`, "alice@example.com", "alice a"},
		{"=?utf-8?q?al=C3=AFce?= <Alice@Example.COM>", "Alice@Example.COM", "alïce"},
		{"a@example.com, b@example.com", "", ""},
		{"x@", "", ""},
	} {
		v, err := Validate(strings.NewReader(strings.Replace(validHeader, `"alice a" <alice@example.com>`, c.from, 1)+"\r\nx"), ValidateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if v.HeaderFrom != c.addr || v.HeaderFromName != c.name {
			t.Errorf("From: %s: got %q %q, want %q %q", c.from, v.HeaderFrom, v.HeaderFromName, c.addr, c.name)
		}
	}
}

// The limits of the reference's own tests: where the header section must end, and how deep
// the tree may go (multipart.msg nests three multiparts).
func TestValidateLimits(t *testing.T) {
	msg, err := os.ReadFile("testdata/multipart.msg")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o     ValidateOptions
		level Level
	}{
		{ValidateOptions{MaxHeaderBytes: 20}, LevelNone},
		{ValidateOptions{MaxHeaderBytes: 200}, LevelHigh},
		{ValidateOptions{MaxDepth: 1}, LevelMedium},
		{ValidateOptions{MaxDepth: 3}, LevelHigh},
	} {
		v, err := Validate(bytes.NewReader(msg), c.o)
		if err != nil {
			t.Fatal(err)
		}
		if v.Level != c.level {
			t.Errorf("%+v: %s (%s), want %s", c.o, v.Level, v.Err, c.level)
		}
	}
	var b strings.Builder
	b.WriteString(validHeader + "Content-Type: multipart/mixed; boundary=b0\r\n\r\n")
	for i := 1; i <= DefaultMaxDepth; i++ {
		b.WriteString("--b" + strconv.Itoa(i-1) + "\r\nContent-Type: multipart/mixed; boundary=b" + strconv.Itoa(i) + "\r\n\r\n")
	}
	v, err := Validate(strings.NewReader(b.String()), ValidateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Level != LevelMedium || !strings.Contains(v.Err, "deeper than 20") {
		t.Errorf("21 nested multiparts: %s %q", v.Level, v.Err)
	}
}

// Bodies are streamed: a large attachment is read through, never held, and a plain body at
// the top is not read at all.
func TestValidateStreams(t *testing.T) {
	head := validHeader + "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	line := strings.Repeat("QUJD", 19) + "\r\n"
	const lines = 200000 // about 15 MB
	r := io.MultiReader(strings.NewReader(head), &repeatReader{s: line, n: lines}, strings.NewReader("--b--\r\n"))
	v, err := Validate(r, ValidateOptions{})
	if err != nil || v.Level != LevelHigh {
		t.Fatalf("%v %v", v, err)
	}
	top := &countingReader{r: io.MultiReader(strings.NewReader(validHeader+"\r\n"), &repeatReader{s: line, n: lines})}
	if v, err := Validate(top, ValidateOptions{}); err != nil || v.Level != LevelHigh {
		t.Fatalf("%v %v", v, err)
	}
	if top.n > 1<<20 {
		t.Errorf("read %d bytes of a plain message", top.n)
	}
	failing := &errAfter{r: strings.NewReader(head + "QUJD\r\n")}
	if _, err := Validate(failing, ValidateOptions{}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("read error: %v", err)
	}
}

type repeatReader struct {
	s   string
	n   int
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := copy(p, r.s[r.off:])
	r.off += k
	if r.off == len(r.s) {
		r.off = 0
		r.n--
	}
	return k, nil
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// errAfter fails where its input ends.
type errAfter struct{ r io.Reader }

func (e *errAfter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, errors.New("disk on fire")
	}
	return n, err
}

// Message-builder bodies reach steps rendered (the router renders them as they are read),
// so they are validated like any other: the reference skipped them (its §12.29).
func TestValidateRendered(t *testing.T) {
	raw, err := os.ReadFile("testdata/message_builder.json")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := tx.ParseMessageSpec(json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(Render(pw, spec, func(blob string) (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader("blob " + blob + " contents")), nil
		}, "seed"))
	}()
	v, err := Validate(pr, ValidateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Level != LevelHigh || v.HeaderFrom == "" {
		t.Errorf("rendered message: %s %q from %q", v.Level, v.Err, v.HeaderFrom)
	}
}

func TestParseLevel(t *testing.T) {
	for i, n := range []string{"none", "BASIC", "Medium", "HIGH"} {
		if l, ok := ParseLevel(n); !ok || l != Level(i) || !strings.EqualFold(l.String(), n) {
			t.Errorf("%s: %v %v", n, l, ok)
		}
	}
	if _, ok := ParseLevel("LOW"); ok {
		t.Error("LOW parsed")
	}
}
