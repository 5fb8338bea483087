package inbound

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/koukan/koukan/engine/rest/resttest"
	"github.com/koukan/koukan/engine/tx"
)

func TestPlainTransaction(t *testing.T) {
	t.Parallel()
	e := start(t, Options{ChunkSize: 1000}, resttest.Options{})
	c := e.client()

	ok, ext := c.Extension("SIZE")
	if !ok || ext != "67108864" {
		t.Errorf("SIZE %v %q, want the default 64 MiB", ok, ext)
	}
	for _, x := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "CHUNKING", "ENHANCEDSTATUSCODES", "DSN"} {
		if ok, _ := c.Extension(x); !ok {
			t.Errorf("EHLO lacks %s", x)
		}
	}
	for _, x := range []string{"STARTTLS", "REQUIRETLS", "AUTH"} {
		if ok, _ := c.Extension(x); ok {
			t.Errorf("EHLO offers %s without TLS or secrets", x)
		}
	}

	body := message("Subject: hi", "", "line one", ".leading dot", strings.Repeat("x", 900), strings.Repeat("y", 2500))
	if err := c.Mail("alice@example.com", &smtp.MailOptions{Size: int64(len(body)), Body: smtp.Body8BitMIME, Return: smtp.DSNReturnHeaders, EnvelopeID: "id+1=2"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("bob@example.com", &smtp.RcptOptions{Notify: []smtp.DSNNotify{smtp.DSNNotifyFailure, smtp.DSNNotifyDelayed},
		OriginalRecipientType: smtp.DSNAddressTypeRFC822, OriginalRecipient: "Bob+x@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("carol@example.com", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(body))
	resp, err := w.CloseWithResponse()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusText != "2.0.0 ok" {
		t.Errorf("DATA reply %+v, want the router's 250 ok", resp)
	}

	rc := e.finished(1)[0]
	st := rc.Tx
	if st.Sender == nil || st.Sender.Name != "ingress" || st.Sender.Tag != "smtp-mx" {
		t.Errorf("sender %+v", st.Sender)
	}
	if st.MailFrom.Address != "alice@example.com" || params(*st.MailFrom) != "SIZE="+itoa(len(body))+" BODY=8BITMIME RET=HDRS ENVID=id+2B1+3D2" {
		t.Errorf("mail_from %+v (%s)", st.MailFrom, params(*st.MailFrom))
	}
	if len(st.RcptTo) != 2 || st.RcptTo[0].Address != "bob@example.com" || params(st.RcptTo[0]) != "NOTIFY=FAILURE,DELAY ORCPT=RFC822;Bob+2Bx@example.com" ||
		st.RcptTo[1].Address != "carol@example.com" || len(st.RcptTo[1].Esmtp) != 0 {
		t.Errorf("rcpt_to %+v", st.RcptTo)
	}
	if st.RemoteHost == nil || st.RemoteHost.Host != "127.0.0.1" || st.RemoteHost.Port == 0 {
		t.Errorf("remote_host %+v", st.RemoteHost)
	}
	if st.LocalHost == nil || st.LocalHost.Host != "127.0.0.1" || "127.0.0.1:"+itoa(st.LocalHost.Port) != e.addr {
		t.Errorf("local_host %+v, want %s", st.LocalHost, e.addr)
	}
	wantMeta := map[string]string{"ehlo_host": `"client.test"`, "esmtp": "true", "tls": "false", "auth": "false"}
	if len(st.SMTPMeta) != len(wantMeta) {
		t.Errorf("smtp_meta %s", st.SMTPMeta)
	}
	for k, v := range wantMeta {
		if got := meta(t, rc, k); got != v {
			t.Errorf("smtp_meta.%s = %s, want %s", k, got, v)
		}
	}
	// Dot-stuffing undone, CRLF kept, every byte there, in several PUTs.
	if string(rc.Body) != body || !rc.BodyFinalized {
		t.Errorf("body (%d bytes, finalized %v):\n%q\nwant\n%q", len(rc.Body), rc.BodyFinalized, rc.Body, body)
	}
	if st.Cancelled {
		t.Error("a delivered transaction was cancelled")
	}

	// A second transaction on the same connection is a second upstream one.
	if _, err := send(c, "", []string{"dave@example.com"}, message("Subject: 2", "", "b")); err != nil {
		t.Fatal(err)
	}
	txs := e.finished(2)
	if txs[1].Tx.MailFrom.Address != "" || string(txs[1].Body) != message("Subject: 2", "", "b") {
		t.Errorf("second transaction: %s", describe(txs[1:]))
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// The router's answers are the replies, checked and cleaned.
func TestRouterReplies(t *testing.T) {
	t.Parallel()
	respond := func(r resttest.Request) resttest.Reply {
		switch {
		case r.Phase == resttest.PhaseMail && r.Tx.MailFrom.Address == "spammer@example.com":
			return resttest.Reply{Response: tx.Response{Code: 550, Message: "5.7.1 go away"}}
		case r.Phase == resttest.PhaseRcpt && strings.HasPrefix(r.Tx.RcptTo[r.Rcpt].Address, "nobody"):
			return resttest.Reply{Response: tx.Response{Code: 550, Message: "5.1.1 no such user"}}
		case r.Phase == resttest.PhaseRcpt && strings.HasPrefix(r.Tx.RcptTo[r.Rcpt].Address, "full"):
			// A class that contradicts the code, and a line break that
			// would start a second reply.
			return resttest.Reply{Response: tx.Response{Code: 452, Message: "5.2.2 mailbox full\r\n250 2.0.0 fake"}}
		case r.Phase == resttest.PhaseData && strings.Contains(string(r.Body), "bad"):
			return resttest.Reply{Response: tx.Response{Code: 554, Message: "5.6.0 message rejected \u00e9"}}
		case r.Phase == resttest.PhaseData && strings.Contains(string(r.Body), "internal"):
			return resttest.Reply{Response: tx.Response{Code: tx.CodeInternal, Message: "internal"}}
		}
		return resttest.Reply{}
	}
	e := start(t, Options{}, resttest.Options{Respond: respond})
	c := e.client()

	wantCode(t, c.Mail("spammer@example.com", nil), 550, "5.7.1")
	if err := c.Rcpt("bob@example.com", nil); err == nil || smtpErr(t, err).Code != 502 {
		t.Errorf("RCPT after a failed MAIL: %v", err)
	}

	if err := c.Mail("alice@example.com", nil); err != nil {
		t.Fatal(err)
	}
	se := wantCode(t, c.Rcpt("nobody@example.com", nil), 550, "5.1.1")
	if se.Message != "no such user" {
		t.Errorf("text %q", se.Message)
	}
	se = wantCode(t, c.Rcpt("full@example.com", nil), 452, "4.2.2")
	if se.Message != "mailbox full  250 2.0.0 fake" {
		t.Errorf("text %q", se.Message)
	}
	if err := c.Rcpt("bob@example.com", nil); err != nil {
		t.Fatal(err)
	}
	w, _ := c.Data()
	w.Write([]byte(message("Subject: bad", "", "bad")))
	se = wantCode(t, w.Close(), 554, "5.6.0")
	if se.Message != "message rejected ?" {
		t.Errorf("text %q", se.Message)
	}

	// An internal code never reaches the client.
	_, err := send(c, "alice@example.com", []string{"bob@example.com"}, message("", "internal"))
	se = wantCode(t, err, 451, "4.3.0")
	if !strings.Contains(se.Message, "transaction ") {
		t.Errorf("no transaction id in %q", se.Message)
	}

	txs := e.finished(3)
	if txs[0].Tx.Cancelled {
		t.Error("a transaction whose MAIL failed was cancelled; it was over")
	}
	if txs[1].Tx.Cancelled || txs[1].Tx.DataResponse.Code != 554 || len(txs[1].Tx.RcptTo) != 3 {
		t.Errorf("rejected message: %s", describe(txs[1:2]))
	}
	// The transaction with the invalid answer is over upstream anyway:
	// not cancelled.
	time.Sleep(100 * time.Millisecond)
	if txs = e.rcv.Transactions(); txs[2].Tx.DataResponse == nil || txs[2].Tx.Cancelled {
		t.Errorf("third: %s", describe(txs[2:]))
	}
}

func TestUpstreamReplyUnits(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   tx.Response
		p    phase
		want string // "" for an error
	}{
		{tx.Response{Code: 250, Message: "ok"}, phaseData, "250 2.0.0 ok"},
		{tx.Response{Code: 250, Message: "ok"}, phaseRcpt, "250 2.1.5 ok"},
		{tx.Response{Code: 250, Message: ""}, phaseMail, "250 2.1.0 ok"},
		{tx.Response{Code: 451, Message: "4.5.3 too many recipients"}, phaseRcpt, "451 4.5.3 too many recipients"},
		{tx.Response{Code: 550, Message: "2.1.1   odd class"}, phaseRcpt, "550 5.1.1 odd class"},
		{tx.Response{Code: 550, Message: "5.1.1234 not a code"}, phaseRcpt, "550 5.0.0 5.1.1234 not a code"},
		{tx.Response{Code: 550, Message: "5.1.1"}, phaseRcpt, "550 5.1.1 permanent error"},
		{tx.Response{Code: 421, Message: "a\x00b\tc\r\nd\u2028"}, phaseData, "421 4.0.0 a b c  d?"},
		{tx.Response{Code: 354, Message: "go on"}, phaseData, ""},
		{tx.Response{Code: 600, Message: "internal"}, phaseData, ""},
		{tx.Response{Code: 199}, phaseData, ""},
	} {
		r, err := upstreamReply(c.in, c.p)
		switch {
		case c.want == "" && err == nil:
			t.Errorf("%+v: %v, want an error", c.in, r)
		case c.want != "" && err != nil:
			t.Errorf("%+v: %v", c.in, err)
		case c.want != "":
			if got := itoa(r.code) + " " + itoa(r.enh[0]) + "." + itoa(r.enh[1]) + "." + itoa(r.enh[2]) + " " + r.text; got != c.want {
				t.Errorf("%+v: %q, want %q", c.in, got, c.want)
			}
		}
	}
	long, _ := upstreamReply(tx.Response{Code: 550, Message: strings.Repeat("z", 5000)}, phaseData)
	if len(long.text) > maxReplyText+3 {
		t.Errorf("a %d-byte reply text", len(long.text))
	}
}

func TestNestedMAIL(t *testing.T) {
	t.Parallel()
	e := start(t, Options{}, resttest.Options{})
	r := e.dialRaw()
	r.expect("220 ")
	r.cmd("EHLO \u00e9x\x01ample.test", "250")
	r.cmd("MAIL FROM:<a@example.com>", "250")
	r.cmd("RCPT TO:<b@example.com>", "250")
	r.cmd("MAIL FROM:<c@example.com>", "503 5.5.1")
	r.cmd("DATA", "354")
	r.cmd("x\r\n.", "250")
	rc := e.finished(1)[0]
	if rc.Tx.MailFrom.Address != "a@example.com" || meta(t, rc, "ehlo_host") != "\"\u00e9x?ample.test\"" {
		t.Errorf("%s %s", describe([]resttest.Received{rc}), rc.Tx.SMTPMeta)
	}
}

func TestRSETAndQUITCancelUpstream(t *testing.T) {
	t.Parallel()
	e := start(t, Options{}, resttest.Options{})
	c := e.client()
	if err := c.Mail("alice@example.com", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("bob@example.com", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the first transaction cancelled", func(txs []resttest.Received) bool { return len(txs) == 1 && txs[0].Tx.Cancelled })

	if err := c.Mail("alice@example.com", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	txs := e.waitFor("the second transaction cancelled", func(txs []resttest.Received) bool { return len(txs) == 2 && txs[1].Tx.Cancelled })
	if txs[0].BodyFinalized || txs[1].BodyFinalized {
		t.Error("a body")
	}
}

func TestNullReversePathAndReferenceScenarios(t *testing.T) {
	t.Parallel()
	// §11.1's ingress scenarios, with the receiver answering as the
	// router's policies would.
	respond := func(r resttest.Request) resttest.Reply {
		switch r.Phase {
		case resttest.PhaseRcpt:
			switch a := r.Tx.RcptTo[r.Rcpt].Address; {
			case a == "bob@nowhere.com":
				return resttest.Reply{Response: tx.Response{Code: 550, Message: "5.1.2 no route"}}
			case r.Rcpt >= 1 && strings.HasPrefix(a, "bob+2"):
				return resttest.Reply{Response: tx.Response{Code: 451, Message: "4.5.3 too many recipients"}}
			}
		case resttest.PhaseData:
			if strings.Contains(string(r.Body), "From: invalid") {
				return resttest.Reply{Response: tx.Response{Code: 550, Message: "5.6.0 message rejected message_validation"}}
			}
		}
		return resttest.Reply{}
	}
	e := start(t, Options{}, resttest.Options{Respond: respond})
	c := e.client()

	// smoke: one bad and one good recipient; MAIL's parameters go through.
	if err := c.Mail("alice@example.com", &smtp.MailOptions{Size: 42}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Rcpt("bob@nowhere.com", nil), 550, "5.1.2")
	if err := c.Rcpt("bob@example.com", nil); err != nil {
		t.Fatal(err)
	}
	w, _ := c.Data()
	w.Write([]byte(message("From: alice@example.com", "", "hello")))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// null_reverse_path
	if _, err := send(c, "", []string{"bob@example.com"}, message("From: alice@example.com", "", "bounce")); err != nil {
		t.Fatal(err)
	}

	// policy_reject_rcpt: the second recipient gets the router's 451.
	if err := c.Mail("alice@example.com", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("bob@example.com", nil); err != nil {
		t.Fatal(err)
	}
	se := wantCode(t, c.Rcpt("bob+2@example.com", nil), 451, "4.5.3")
	if se.Message != "too many recipients" {
		t.Errorf("text %q", se.Message)
	}
	w, _ = c.Data()
	w.Write([]byte(message("From: alice@example.com", "", "one")))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// message_rejection_ingress: the text comes through exactly.
	_, err := send(c, "alice@example.com", []string{"bob@example.com"}, message("From: invalid", "", "x"))
	se = wantCode(t, err, 550, "5.6.0")
	if se.Message != "message rejected message_validation" {
		t.Errorf("text %q", se.Message)
	}

	txs := e.finished(4)
	// (go-smtp's client adds BODY=8BITMIME on its own; what the client
	// sends is what the router gets.)
	if params(*txs[0].Tx.MailFrom) != "SIZE=42 BODY=8BITMIME" || len(txs[0].Tx.RcptTo) != 2 {
		t.Errorf("smoke: %s", describe(txs[:1]))
	}
	if txs[1].Tx.MailFrom == nil || txs[1].Tx.MailFrom.Address != "" || txs[1].Tx.DataResponse.Code != 250 {
		t.Errorf("null reverse path: %s", describe(txs[1:2]))
	}
	if txs[3].Tx.DataResponse.Code != 550 || txs[3].Tx.Cancelled {
		t.Errorf("rejected body: %s", describe(txs[3:4]))
	}
}

func TestMaxRecipients(t *testing.T) {
	t.Parallel()
	e := start(t, Options{MaxRecipients: 2}, resttest.Options{})
	c := e.client()
	if ok, ext := c.Extension("LIMITS"); !ok || ext != "RCPTMAX=2" {
		t.Errorf("LIMITS %v %q", ok, ext)
	}
	if err := c.Mail("alice@example.com", nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"a@example.com", "b@example.com"} {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, c.Rcpt("c@example.com", nil), 452, "4.5.3")
	w, _ := c.Data()
	w.Write([]byte("x\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if txs := e.finished(1); len(txs[0].Tx.RcptTo) != 2 {
		t.Errorf("%s", describe(txs))
	}
}

func TestSMTPUTF8AndQuotedAddresses(t *testing.T) {
	t.Parallel()
	e := start(t, Options{}, resttest.Options{})
	r := e.dialRaw()
	r.expect("220 ")
	r.cmd("EHLO client.test", "250")
	r.cmd("MAIL FROM:<\u00e5lice@ex\u00e4mple.com> SMTPUTF8", "250")
	r.cmd("RCPT TO:<b\u00f8b@example.com>", "250")
	r.cmd(`RCPT TO:<"john \"jj\" doe"@example.com>`, "250")
	r.cmd("RCPT TO:<plain.dot-string+tag@example.com>", "250")
	r.cmd("DATA", "354")
	r.cmd("Subject: \u00fcber\r\n\r\nhi\r\n.", "250")
	// Without SMTPUTF8, non-ASCII addresses are refused.
	r.cmd("MAIL FROM:<\u00e5lice@example.com>", "553 5.6.7")
	r.cmd("MAIL FROM:<alice@example.com>", "250")
	r.cmd("RCPT TO:<b\u00f8b@example.com>", "553 5.6.7")
	r.cmd("RCPT TO:<bo\x01b@example.com>", "501 5.1.3")
	r.cmd("QUIT", "221")

	rc := e.finished(1)[0]
	st := rc.Tx
	if st.MailFrom.Address != "\u00e5lice@ex\u00e4mple.com" || params(*st.MailFrom) != "SMTPUTF8" {
		t.Errorf("mail_from %+v", st.MailFrom)
	}
	want := []string{"b\u00f8b@example.com", `"john \"jj\" doe"@example.com`, "plain.dot-string+tag@example.com"}
	for i, w := range want {
		if i >= len(st.RcptTo) || st.RcptTo[i].Address != w {
			t.Errorf("rcpt_to %+v, want %q", st.RcptTo, want)
			break
		}
	}
	if string(rc.Body) != "Subject: \u00fcber\r\n\r\nhi\r\n" {
		t.Errorf("body %q", rc.Body)
	}
}

func TestEnvelopeAddressUnits(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"a@b":              "a@b",
		"a.b@c":            "a.b@c",
		"a..b@c":           `"a..b"@c`,
		".a@c":             `".a"@c`,
		"john doe@x":       `"john doe"@x`,
		`q"uo\te@x`:        `"q\"uo\\te"@x`,
		"@x":               "",
		"x@":               "",
		"x":                "",
		"\u00e9t\u00e9@x":  "\u00e9t\u00e9@x",
		"a@[192.0.2.1]":    "a@[192.0.2.1]",
		"at@sign@host.com": `"at@sign"@host.com`,
	} {
		got, err := envelopeAddress(in, true, phaseRcpt)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	if got, err := envelopeAddress("", false, phaseMail); got != "" || err != nil {
		t.Errorf("null path: %q %v", got, err)
	}
	if _, err := envelopeAddress("a\xff@x", true, phaseRcpt); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
	if xtext("a+b=c d\u00e9") != "a+2Bb+3Dc+20d+C3+A9" {
		t.Errorf("xtext %q", xtext("a+b=c d\u00e9"))
	}
	if utf8AddrXtext("b\u00f8b+x=y\\z@ex") != `b\x{F8}b\x{2B}x\x{3D}y\x{5C}z@ex` {
		t.Errorf("utf8AddrXtext %q", utf8AddrXtext("b\u00f8b+x=y\\z@ex"))
	}
}

// The UTF-8 ORCPT type goes through re-encoded.
func TestORCPTUTF8(t *testing.T) {
	t.Parallel()
	e := start(t, Options{}, resttest.Options{})
	r := e.dialRaw()
	r.expect("220 ")
	r.cmd("EHLO client.test", "250")
	r.cmd("MAIL FROM:<a@example.com> SMTPUTF8", "250")
	r.cmd(`RCPT TO:<b@example.com> NOTIFY=NEVER ORCPT=utf-8;b\x{F8}b@example.com`, "250")
	r.cmd("DATA", "354")
	r.cmd("x\r\n.", "250")
	st := e.finished(1)[0].Tx
	if got := params(st.RcptTo[0]); got != `NOTIFY=NEVER ORCPT=UTF-8;b\x{F8}b@example.com` {
		t.Errorf("rcpt params %s", got)
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	e := start(t, Options{IdleTimeout: 300 * time.Millisecond, CommandTimeout: 5 * time.Second}, resttest.Options{})
	r := e.dialRaw()
	r.expect("220 ")
	r.cmd("EHLO client.test", "250")
	start := time.Now()
	r.expect("421 4.4.2")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("idle for %v before the 421", d)
	}
	r.closed()

	// In a transaction, CommandTimeout applies.
	r = e.dialRaw()
	r.expect("220 ")
	r.cmd("EHLO client.test", "250")
	r.cmd("MAIL FROM:<a@example.com>", "250")
	time.Sleep(600 * time.Millisecond)
	r.cmd("RCPT TO:<b@example.com>", "250")
	r.cmd("DATA", "354")
	r.write("partial ")
	time.Sleep(600 * time.Millisecond)
	r.cmd("line\r\n.", "250")
}

func TestHELOClient(t *testing.T) {
	t.Parallel()
	e := start(t, Options{}, resttest.Options{})
	r := e.dialRaw()
	r.expect("220 gw.test ")
	r.cmd("HELO old.client.test", "250")
	r.cmd("MAIL FROM:<a@example.com>", "250")
	r.cmd("RCPT TO:<b@example.com>", "250")
	r.cmd("DATA", "354")
	r.cmd("hi\r\n.", "250")
	rc := e.finished(1)[0]
	if meta(t, rc, "esmtp") != "false" || meta(t, rc, "ehlo_host") != `"old.client.test"` {
		t.Errorf("smtp_meta %s", rc.Tx.SMTPMeta)
	}
}

func TestEndpointAndOptions(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ endpoint, sender, want string }{
		{"http://r:8000", "ingress", "http://r:8000/senders/ingress/transactions"},
		{"http://r:8000/", "in gress", "http://r:8000/senders/in%20gress/transactions"},
		{"https://r/senders/x/transactions", "", "https://r/senders/x/transactions"},
	} {
		got, err := endpointURL(c.endpoint, c.sender)
		if err != nil || got != c.want {
			t.Errorf("%q %q: %q %v, want %q", c.endpoint, c.sender, got, err, c.want)
		}
	}
	for _, bad := range []Options{
		{},
		{Endpoint: "http://r:8000"},
		{Endpoint: "ftp://r/x"},
		{Endpoint: "http://r/x", ImplicitTLS: true},
		{Endpoint: "http://r/x", AuthSecrets: "/nonexistent"},
		{Endpoint: "http://r/x", MaxLineLength: 100},
		{Endpoint: "http://r/x", DataTimeout: -1},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// A session ends with one summary line: what an operator greps for "what happened to this
// client".
func TestSessionSummaryLine(t *testing.T) {
	e := start(t, Options{}, resttest.Options{})
	c := e.client()
	if _, err := send(c, "alice@example.com", []string{"bob@example.com"}, "Subject: x\r\n\r\nhi\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.logs.String(), `msg="inbound: session"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no session line in:\n%s", e.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, `msg="inbound: session"`) && (!strings.Contains(line, "accepted=1") || !strings.Contains(line, "refused=0") || !strings.Contains(line, "conn=")) {
			t.Errorf("summary %s", line)
		}
	}
}
