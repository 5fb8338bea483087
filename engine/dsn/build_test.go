package dsn

import (
	"bufio"
	"bytes"
	"flag"
	"io"
	nettextproto "net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

var (
	t0       = time.Date(2024, 3, 6, 18, 50, 0, 0, time.UTC)
	arrival  = t0.Add(-26 * time.Hour)
	giveUpAt = t0.Add(70 * time.Hour)
)

const t0s = "Wed, 06 Mar 2024 18:50:00 +0000"

// buildCase is one DSN built from a fixed Notification, with the structure
// expected when it is parsed back.
type buildCase struct {
	name string
	n    Notification
	// orig names the original message in testdata/; "" for none.
	orig string
	// wantSubject, wantParts (content types) and wantBlocks (the status
	// blocks, field name to unfolded value) describe the parsed output.
	wantSubject string
	wantParts   []string
	wantBlocks  []map[string]string
	// wantOrig is what the third part holds: "headers" or "full".
	wantOrig string
	// wantText and notText are in and not in the human-readable part.
	wantText []string
	notText  []string
}

func fixed(n Notification) Notification {
	n.ReportingMTA = "mx.example.com"
	n.To = "alice@example.com"
	n.Date = t0
	n.MessageID = "0123456789abcdef0123456789abcdef@mx.example.com"
	n.Boundary = "dsn-boundary-1"
	return n
}

var buildCases = []buildCase{
	{
		name: "failed",
		orig: "trivial.msg",
		n: fixed(Notification{
			EnvelopeID: "QQ314159",
			Arrival:    arrival,
			Recipients: []Recipient{{
				ORCPT:       TypedAddress{"rfc822", "bob@example.org"},
				Address:     "bob@example.org",
				Action:      ActionFailed,
				Code:        550,
				Reply:       "5.1.1 <bob@example.org>: Recipient address rejected: User unknown in virtual mailbox table",
				RemoteMTA:   "mx1.example.org",
				LastAttempt: t0,
			}},
		}),
		wantSubject: "Delivery Status Notification (Failure)",
		wantParts:   []string{"text/plain", "message/delivery-status", "text/rfc822-headers"},
		wantBlocks: []map[string]string{
			{"Reporting-MTA": "dns; mx.example.com", "Original-Envelope-Id": "QQ314159", "Arrival-Date": "Tue, 05 Mar 2024 16:50:00 +0000"},
			{
				"Original-Recipient": "rfc822; bob@example.org",
				"Final-Recipient":    "rfc822; bob@example.org",
				"Action":             "failed",
				"Status":             "5.1.1",
				"Remote-MTA":         "dns; mx1.example.org",
				"Diagnostic-Code":    "smtp; 550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown in virtual mailbox table",
				"Last-Attempt-Date":  t0s,
			},
		},
		wantOrig: "headers",
		wantText: []string{"could not be delivered", "bob@example.org", "mx1.example.org said: 550 5.1.1"},
	},
	{
		name: "delayed",
		orig: "multipart.msg",
		n: fixed(Notification{
			Arrival: arrival,
			Ret:     RetFull, // a delay DSN returns headers all the same
			Recipients: []Recipient{
				{
					Address:        "bob@example.org",
					Action:         ActionDelayed,
					Code:           421,
					Reply:          "4.4.1 Connection timed out",
					RemoteMTA:      "mx1.example.org",
					LastAttempt:    t0,
					WillRetryUntil: giveUpAt,
				},
				{
					ORCPT:          TypedAddress{"rfc822", "Carol@Example.NET"},
					Address:        "carol@example.net",
					Action:         ActionDelayed,
					LastAttempt:    t0,
					WillRetryUntil: giveUpAt,
				},
			},
		}),
		wantSubject: "Delivery Status Notification (Delay)",
		wantParts:   []string{"text/plain", "message/delivery-status", "text/rfc822-headers"},
		wantBlocks: []map[string]string{
			{"Reporting-MTA": "dns; mx.example.com", "Arrival-Date": "Tue, 05 Mar 2024 16:50:00 +0000"},
			{
				"Final-Recipient":   "rfc822; bob@example.org",
				"Action":            "delayed",
				"Status":            "4.4.1",
				"Remote-MTA":        "dns; mx1.example.org",
				"Diagnostic-Code":   "smtp; 421 4.4.1 Connection timed out",
				"Last-Attempt-Date": t0s,
				"Will-Retry-Until":  "Sat, 09 Mar 2024 16:50:00 +0000",
			},
			{
				"Original-Recipient": "rfc822; Carol@Example.NET",
				"Final-Recipient":    "rfc822; carol@example.net",
				"Action":             "delayed",
				"Status":             "4.0.0",
				"Last-Attempt-Date":  t0s,
				"Will-Retry-Until":   "Sat, 09 Mar 2024 16:50:00 +0000",
			},
		},
		wantOrig: "headers",
		wantText: []string{"not been delivered yet", "Will retry until Sat, 09 Mar 2024 16:50:00 +0000.", "carol@example.net"},
		notText:  []string{"could not be delivered"},
	},
	{
		name: "mixed-full",
		orig: "multipart.msg",
		n: fixed(Notification{
			Ret: RetFull,
			Recipients: []Recipient{
				{
					Address:   "bob@example.org",
					Action:    ActionFailed,
					Code:      554,
					Reply:     "5.7.1 Message rejected under policy.\r\n5.7.1 See https://postmaster.example.org/policy?id=abcdef0123456789abcdef0123456789 for details",
					RemoteMTA: "mx1.example.org",
				},
				{
					Address: "dave@example.org",
					Action:  ActionFailed,
					Code:    600,
					Reply:   "store: dial tcp 10.0.0.7:5432: connection refused",
				},
				{
					Address: "erin@example.com",
					Action:  ActionDelivered,
					Code:    250,
					Reply:   "2.0.0 Ok: queued as 4Tq9Yk0Vx2z",
				},
			},
		}),
		wantSubject: "Delivery Status Notification (Failure)",
		wantParts:   []string{"text/plain", "message/delivery-status", "message/rfc822"},
		wantBlocks: []map[string]string{
			{"Reporting-MTA": "dns; mx.example.com"},
			{
				"Final-Recipient": "rfc822; bob@example.org",
				"Action":          "failed",
				"Status":          "5.7.1",
				"Remote-MTA":      "dns; mx1.example.org",
				"Diagnostic-Code": "smtp; 554 5.7.1 Message rejected under policy. 5.7.1 See https://postmaster.example.org/policy?id=abcdef0123456789abcdef0123456789 for details",
			},
			{"Final-Recipient": "rfc822; dave@example.org", "Action": "failed", "Status": "5.0.0"},
			{"Final-Recipient": "rfc822; erin@example.com", "Action": "delivered", "Status": "2.0.0", "Diagnostic-Code": "smtp; 250 2.0.0 Ok: queued as 4Tq9Yk0Vx2z"},
		},
		wantOrig: "full",
		wantText: []string{"could not be delivered", "was delivered", "dave@example.org", "erin@example.com"},
		notText:  []string{"connection refused", "10.0.0.7"},
	},
	{
		name: "utf8",
		orig: "utf8_local_part.msg",
		n: fixed(Notification{
			Recipients: []Recipient{{
				ORCPT:   mustORCPT(`utf-8;j\x{F6}e@b\x{FC}cher.example`),
				Address: "jöe@bücher.example",
				Action:  ActionFailed,
				Code:    550,
				Reply:   "5.1.1 mailbox unavailable",
			}},
		}),
		wantSubject: "Delivery Status Notification (Failure)",
		wantParts:   []string{"text/plain", "message/global-delivery-status", "message/global-headers"},
		wantBlocks: []map[string]string{
			{"Reporting-MTA": "dns; mx.example.com"},
			{
				"Original-Recipient": "utf-8; jöe@bücher.example",
				"Final-Recipient":    "utf-8; jöe@bücher.example",
				"Action":             "failed",
				"Status":             "5.1.1",
				"Diagnostic-Code":    "smtp; 550 5.1.1 mailbox unavailable",
			},
		},
		wantOrig: "headers",
		wantText: []string{"jöe@bücher.example"},
	},
	{
		name: "delivered-no-original",
		n: fixed(Notification{
			From: mail.Address{Name: "Postmaster", Address: "postmaster@example.com"},
			Recipients: []Recipient{{
				Address:   "bob@example.org",
				Action:    ActionRelayed,
				Code:      250,
				Reply:     "ok",
				RemoteMTA: "legacy.example.org",
			}},
		}),
		wantSubject: "Delivery Status Notification (Success)",
		wantParts:   []string{"text/plain", "message/delivery-status"},
		wantBlocks: []map[string]string{
			{"Reporting-MTA": "dns; mx.example.com"},
			{"Final-Recipient": "rfc822; bob@example.org", "Action": "relayed", "Status": "2.0.0", "Remote-MTA": "dns; legacy.example.org", "Diagnostic-Code": "smtp; 250 ok"},
		},
		wantText: []string{"passed on", "legacy.example.org said: 250 ok"},
	},
}

func mustORCPT(s string) TypedAddress {
	a, err := ParseORCPT(s)
	if err != nil {
		panic(err)
	}
	return a
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (c *buildCase) build(t *testing.T) []byte {
	t.Helper()
	n := c.n
	if c.orig != "" {
		n.Original = bytes.NewReader(readTestdata(t, c.orig))
	}
	var out bytes.Buffer
	if err := Build(&out, n); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestBuildGolden(t *testing.T) {
	for _, c := range buildCases {
		t.Run(c.name, func(t *testing.T) {
			got := c.build(t)
			path := filepath.Join("testdata", c.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (go test -update to accept):\n%s", path, got)
			}
		})
	}
}

// TestBuildParses reads each DSN back with go-message and checks its
// structure against what the case expects.
func TestBuildParses(t *testing.T) {
	for _, c := range buildCases {
		t.Run(c.name, func(t *testing.T) {
			out := c.build(t)
			checkLines(t, out)
			e, err := message.Read(bytes.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			checkTopHeader(t, &c, mail.Header{Header: e.Header})

			var types []string
			var bodies [][]byte
			mr := e.MultipartReader()
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				typ, _, _ := p.Header.ContentType()
				types = append(types, typ)
				b, err := io.ReadAll(p.Body)
				if err != nil {
					t.Fatal(err)
				}
				bodies = append(bodies, b)
			}
			if strings.Join(types, " ") != strings.Join(c.wantParts, " ") {
				t.Fatalf("parts %q; want %q", types, c.wantParts)
			}

			text := string(bodies[0])
			for _, s := range c.wantText {
				if !strings.Contains(text, s) {
					t.Errorf("text part lacks %q:\n%s", s, text)
				}
			}
			for _, s := range c.notText {
				if strings.Contains(text, s) {
					t.Errorf("text part has %q:\n%s", s, text)
				}
			}

			checkBlocks(t, statusBlocks(t, bodies[1]), c.wantBlocks)

			if c.orig == "" {
				return
			}
			orig := readTestdata(t, c.orig)
			want := orig
			if c.wantOrig == "headers" {
				want = orig[:bytes.Index(orig, []byte("\r\n\r\n"))+4]
			}
			if !bytes.Equal(bodies[2], want) {
				t.Errorf("third part:\n%q\nwant\n%q", bodies[2], want)
			}
		})
	}
}

func checkTopHeader(t *testing.T, c *buildCase, h mail.Header) {
	t.Helper()
	typ, params, err := h.ContentType()
	if err != nil || typ != "multipart/report" || params["report-type"] != "delivery-status" || params["boundary"] != c.n.Boundary {
		t.Errorf("Content-Type %q %v, %v", typ, params, err)
	}
	if s, _ := h.Subject(); s != c.wantSubject {
		t.Errorf("Subject %q; want %q", s, c.wantSubject)
	}
	if id, err := h.MessageID(); err != nil || id != c.n.MessageID {
		t.Errorf("Message-ID %q, %v", id, err)
	}
	if d, err := h.Date(); err != nil || !d.Equal(t0) {
		t.Errorf("Date %v, %v", d, err)
	}
	if to, err := h.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != c.n.To {
		t.Errorf("To %v, %v", to, err)
	}
	wantFrom := "mailer-daemon@mx.example.com"
	if c.n.From.Address != "" {
		wantFrom = c.n.From.Address
	}
	if from, err := h.AddressList("From"); err != nil || len(from) != 1 || from[0].Address != wantFrom {
		t.Errorf("From %v, %v", from, err)
	}
	if v := h.Get("Auto-Submitted"); v != "auto-replied" {
		t.Errorf("Auto-Submitted %q", v)
	}
	if v := h.Get("MIME-Version"); v != "1.0" {
		t.Errorf("MIME-Version %q", v)
	}
	var wantRefs []string
	if c.orig != "" {
		wantRefs = []string{"abc@xyz"} // the Message-id of every original used here
	}
	for _, k := range []string{"In-Reply-To", "References"} {
		if ids, err := h.MsgIDList(k); err != nil || strings.Join(ids, " ") != strings.Join(wantRefs, " ") {
			t.Errorf("%s %q, %v; want %q", k, ids, err, wantRefs)
		}
	}
}

// checkLines checks that every line of a message ends in CRLF and fits
// RFC 5322's 998 octets.
func checkLines(t *testing.T, msg []byte) {
	t.Helper()
	if !bytes.HasSuffix(msg, []byte("\r\n")) {
		t.Error("message does not end in CRLF")
	}
	for i, l := range bytes.SplitAfter(msg, []byte("\n")) {
		if len(l) > 0 && !bytes.HasSuffix(l, []byte("\r\n")) || bytes.ContainsRune(bytes.TrimSuffix(l, []byte("\r\n")), '\r') {
			t.Errorf("line %d: bare CR or LF: %q", i+1, l)
		}
		if len(l) > 1000 {
			t.Errorf("line %d: %d octets", i+1, len(l))
		}
	}
}

// statusBlocks parses message/delivery-status content into its blocks, each
// a map from canonical field name to unfolded value.
func statusBlocks(t *testing.T, content []byte) []map[string]string {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(content))
	var blocks []map[string]string
	for {
		h, err := textproto.ReadHeader(br)
		if err != nil {
			t.Fatalf("status block %d: %v", len(blocks)+1, err)
		}
		if h.Len() == 0 {
			// ReadHeader reads nothing at the end; an empty block before
			// it is an error.
			if _, err := br.Peek(1); err != io.EOF {
				t.Fatalf("empty status block %d", len(blocks)+1)
			}
			return blocks
		}
		m := map[string]string{}
		for f := h.Fields(); f.Next(); {
			if _, dup := m[f.Key()]; dup {
				t.Errorf("field %s twice in a block", f.Key())
			}
			m[f.Key()] = f.Value()
		}
		blocks = append(blocks, m)
	}
}

func checkBlocks(t *testing.T, got, want []map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d status blocks; want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		w := map[string]string{}
		for k, v := range want[i] {
			w[nettextproto.CanonicalMIMEHeaderKey(k)] = v
		}
		for k, v := range w {
			if got[i][k] != v {
				t.Errorf("block %d: %s = %q; want %q", i, k, got[i][k], v)
			}
		}
		for k, v := range got[i] {
			if _, ok := w[k]; !ok {
				t.Errorf("block %d: unexpected %s: %q", i, k, v)
			}
		}
	}
}

func TestBuildDefaults(t *testing.T) {
	n := Notification{
		ReportingMTA: "mx.example.com",
		To:           "alice@example.com",
		Recipients:   []Recipient{{Address: "bob@example.org", Action: ActionFailed, Code: 550}},
	}
	before := time.Now().Add(-time.Second)
	var out bytes.Buffer
	if err := Build(&out, n); err != nil {
		t.Fatal(err)
	}
	e, err := message.Read(&out)
	if err != nil {
		t.Fatal(err)
	}
	h := mail.Header{Header: e.Header}
	if v := h.Get("Message-Id"); !regexp.MustCompile(`^<[0-9a-f]{32}@mx\.example\.com>$`).MatchString(v) {
		t.Errorf("Message-ID %q", v)
	}
	if _, params, _ := h.ContentType(); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(params["boundary"]) {
		t.Errorf("boundary %q", params["boundary"])
	}
	if d, err := h.Date(); err != nil || d.Before(before) || d.After(time.Now().Add(time.Second)) {
		t.Errorf("Date %v, %v", d, err)
	}
	if from := h.Get("From"); from != `"Mail Delivery Subsystem" <mailer-daemon@mx.example.com>` {
		t.Errorf("From %q", from)
	}
	if h.Has("In-Reply-To") {
		t.Error("In-Reply-To without an original")
	}
}

func TestBuildRejects(t *testing.T) {
	ok := Notification{
		ReportingMTA: "mx.example.com",
		To:           "alice@example.com",
		Recipients:   []Recipient{{Address: "bob@example.org", Action: ActionFailed}},
	}
	tests := []struct {
		name   string
		change func(n *Notification)
	}{
		{"null reverse-path", func(n *Notification) { n.To = "" }},
		{"no reporting MTA", func(n *Notification) { n.ReportingMTA = "" }},
		{"reporting MTA with CRLF", func(n *Notification) { n.ReportingMTA = "mx\r\nBcc: x@example.com" }},
		{"message-id with brackets", func(n *Notification) { n.MessageID = "<a@b>" }},
		{"no recipients", func(n *Notification) { n.Recipients = nil }},
		{"no action", func(n *Notification) { n.Recipients[0].Action = 0 }},
		{"bad action", func(n *Notification) { n.Recipients[0].Action = ActionRelayed + 1 }},
		{"no address", func(n *Notification) { n.Recipients[0].Address = "" }},
		{"To with CRLF", func(n *Notification) { n.To = "a@b\r\nBcc: x@example.com" }},
	}
	for _, tt := range tests {
		n := ok
		n.Recipients = append([]Recipient(nil), ok.Recipients...)
		tt.change(&n)
		var out bytes.Buffer
		if err := Build(&out, n); err == nil {
			t.Errorf("%s: Build succeeded", tt.name)
		}
	}
	if err := Build(io.Discard, ok); err != nil {
		t.Errorf("valid notification: %v", err)
	}
}

// TestBuildHostileReply checks that a remote reply cannot add header fields
// or status fields.
func TestBuildHostileReply(t *testing.T) {
	n := fixed(Notification{Recipients: []Recipient{{
		Address: "bob@example.org",
		Action:  ActionFailed,
		Code:    550,
		Reply:   "5.1.1 no\r\nStatus: 2.0.0\r\n\r\nFinal-Recipient: rfc822; mallory@example.net\n" + strings.Repeat("x", 3000),
	}}})
	var out bytes.Buffer
	if err := Build(&out, n); err != nil {
		t.Fatal(err)
	}
	checkLines(t, out.Bytes())
	e, err := message.Read(&out)
	if err != nil {
		t.Fatal(err)
	}
	mr := e.MultipartReader()
	mr.NextPart()
	p, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(p.Body)
	blocks := statusBlocks(t, b)
	if len(blocks) != 2 || blocks[1]["Status"] != "5.1.1" || blocks[1]["Final-Recipient"] != "rfc822; bob@example.org" {
		t.Errorf("blocks %q", blocks)
	}
}
