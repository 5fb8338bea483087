package outbound

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	smtp "github.com/emersion/go-smtp"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/rest"
	"github.com/koukan/koukan/engine/restoutput"
	"github.com/koukan/koukan/engine/tx"
)

// gateway is a Server behind a real HTTP server on loopback, and the router's REST client.
type gateway struct {
	s      *Server
	url    string
	client *rest.Client
}

func newGateway(t *testing.T, hosts map[string]Host, mod ...func(*Options)) *gateway {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	o := Options{Hosts: hosts, Log: log}
	for _, m := range mod {
		m(&o)
	}
	s := New(o)
	hs := httptest.NewServer(s.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { _ = s.Run(ctx); close(ran) }()
	t.Cleanup(func() {
		hs.Close()
		cancel()
		<-ran
		s.Close()
		if n := s.Panics(); n != 0 {
			t.Errorf("%d panics recovered", n)
		}
	})
	return &gateway{s: s, url: hs.URL, client: must(rest.NewClient(rest.Options{}))}
}

func host(mod ...func(*Host)) map[string]Host {
	h := Host{EHLOHost: "gw.test", Timeout: 5 * time.Second}
	for _, m := range mod {
		m(&h)
	}
	return map[string]Host{"outbound": h}
}

func envelope(port int, from string, params ...tx.EsmtpParam) *tx.Tx {
	return &tx.Tx{
		Sender:     &tx.Sender{Name: "router", Tag: "outbound"},
		MailFrom:   &tx.Mailbox{Address: from, Esmtp: params},
		RemoteHost: &tx.HostPort{Host: "127.0.0.1", Port: port},
	}
}

func rcpts(addrs ...string) []tx.Mailbox {
	var out []tx.Mailbox
	for _, a := range addrs {
		out = append(out, tx.Mailbox{Address: a})
	}
	return out
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// start creates the transaction and waits for the answer to MAIL, as rest_output does.
func (g *gateway) start(t *testing.T, env *tx.Tx) (*rest.Tx, *tx.Tx) {
	t.Helper()
	ctx := testCtx(t)
	up, err := g.client.Create(ctx, g.url+"/senders/router/transactions", env)
	if err != nil {
		t.Fatal(err)
	}
	return up, wait(t, up, func(s *tx.Tx) bool { return s.MailResponse != nil })
}

func wait(t *testing.T, up *rest.Tx, done func(*tx.Tx) bool) *tx.Tx {
	t.Helper()
	st, err := up.Wait(testCtx(t), done)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// addRcpts sends recipients from offset off and waits for their answers.
func addRcpts(t *testing.T, up *rest.Tx, off int, rs []tx.Mailbox) *tx.Tx {
	t.Helper()
	ctx := testCtx(t)
	err := up.Update(ctx, &tx.Tx{RcptTo: rs, RcptToOffset: off})
	if re, ok := errors.AsType[*rest.Error](err); ok && re.Kind == rest.KindConflict {
		// The gateway moved on meanwhile; the client has read it again. rest_output does so too.
		err = up.Update(ctx, &tx.Tx{RcptTo: rs, RcptToOffset: off})
	}
	if err != nil {
		t.Fatal(err)
	}
	return wait(t, up, func(s *tx.Tx) bool { return len(s.RcptResponse) >= off+len(rs) })
}

// putBody uploads the message and waits for the answer to it.
func putBody(t *testing.T, up *rest.Tx, body io.Reader, size int64) *tx.Tx {
	t.Helper()
	ctx := testCtx(t)
	uri := up.State().Body.(*tx.Blob).URI
	if err := up.PutBlob(ctx, uri, body, size); err != nil {
		t.Fatal(err)
	}
	return wait(t, up, func(s *tx.Tx) bool { return s.DataResponse != nil })
}

// deliver runs a whole transaction the way rest_output does.
func (g *gateway) deliver(t *testing.T, env *tx.Tx, rs []tx.Mailbox, body string) *tx.Tx {
	t.Helper()
	up, st := g.start(t, env)
	if !st.MailResponse.Ok() {
		return st
	}
	addRcpts(t, up, 0, rs)
	return putBody(t, up, strings.NewReader(body), int64(len(body)))
}

// codes is a transaction's responses in short: "250/[250 550]/250".
func codes(st *tx.Tx) string {
	var b strings.Builder
	if st.MailResponse != nil {
		fmt.Fprint(&b, st.MailResponse.Code)
	}
	b.WriteString("/[")
	for i, r := range st.RcptResponse {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprint(&b, r.Code)
	}
	b.WriteString("]/")
	if st.DataResponse != nil {
		fmt.Fprint(&b, st.DataResponse.Code)
	}
	return b.String()
}

const message = "From: alice@example.com\r\nTo: bob@example.com\r\nSubject: hi\r\n\r\nhello\r\n.dot line\r\n"

func TestPlainDelivery(t *testing.T) {
	peer := newGoPeer(t, peerOpts{})
	g := newGateway(t, host())
	st := g.deliver(t, envelope(peer.port(), "alice@example.com"), rcpts("bob@example.com"), message)
	if codes(st) != "250/[250]/250" {
		t.Fatalf("responses %s: %+v %+v %+v", codes(st), st.MailResponse, st.RcptResponse, st.DataResponse)
	}
	if !strings.HasPrefix(st.DataResponse.Message, "2.0.0 ") {
		t.Errorf("data response %q lacks the peer's enhanced code", st.DataResponse.Message)
	}
	msgs := peer.messages()
	if len(msgs) != 1 {
		t.Fatalf("peer got %d messages", len(msgs))
	}
	m := msgs[0]
	if m.helo != "gw.test" || m.tls || m.from != "alice@example.com" || strings.Join(m.rcpts, ",") != "bob@example.com" ||
		string(m.body) != message || !m.delivered {
		t.Errorf("peer got %+v %q", m, m.body)
	}
	// The session is reset for reuse once the transaction is over.
	eventually(t, "RSET", func() bool { return g.s.pool.size() == 1 })
	cmds := peer.ln.commands()
	if len(cmds) != 1 || verbs(cmds[0]) != "EHLO MAIL RCPT DATA RSET" || cmds[0][0] != "EHLO gw.test" {
		t.Errorf("transcript %q", cmds)
	}
}

// BDAT when the peer offers CHUNKING and the host enables it; the last chunk, whatever its
// size, carries LAST.
func TestBDAT(t *testing.T) {
	peer := newGoPeer(t, peerOpts{})
	g := newGateway(t, host(func(h *Host) { h.EnableBDAT, h.ChunkSize = true, 1000 }))
	body := strings.Repeat("x", 2500)
	st := g.deliver(t, envelope(peer.port(), "alice@example.com"), rcpts("bob@example.com"), body)
	if codes(st) != "250/[250]/250" {
		t.Fatalf("responses %s", codes(st))
	}
	if m := peer.messages(); len(m) != 1 || string(m[0].body) != body {
		t.Fatalf("peer got %d messages", len(m))
	}
	cmds := peer.ln.commands()[0]
	var bdat []string
	for _, c := range cmds {
		if strings.HasPrefix(c, "BDAT") {
			bdat = append(bdat, c)
		}
		if c == "DATA" {
			t.Errorf("DATA sent: %q", cmds)
		}
	}
	if strings.Join(bdat, "|") != "BDAT 1000|BDAT 1000|BDAT 500 LAST" {
		t.Errorf("chunks %q", bdat)
	}
}

func TestSTARTTLS(t *testing.T) {
	cert, roots := selfSigned(t)
	peer := newGoPeer(t, peerOpts{tls: &tls.Config{Certificates: []tls.Certificate{cert}}})
	cases := []struct {
		name string
		h    func(*Host)
		want string // mail response code and enhanced code
		tls  bool
	}{
		{"opportunistic, unverified", func(*Host) {}, "250", true},
		{"required, unverified", func(h *Host) { h.RequireTLS = true }, "250", true},
		{"verified by IP", func(h *Host) { h.VerifyTLS, h.RootCAs = true, roots }, "250", true},
		{"verified by name", func(h *Host) { h.VerifyTLS, h.RootCAs, h.TLSServerName = true, roots, "mx.test" }, "250", true},
		{"unknown authority", func(h *Host) { h.VerifyTLS = true }, "451 4.7.5", false},
		{"wrong name", func(h *Host) { h.VerifyTLS, h.RootCAs, h.TLSServerName = true, roots, "other.test" }, "451 4.7.5", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(peer.messages())
			g := newGateway(t, host(tc.h))
			st := g.deliver(t, envelope(peer.port(), "alice@example.com"), rcpts("bob@example.com"), message)
			if got := st.MailResponse.String(); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("mail response %q, want %s", got, tc.want)
			}
			msgs := peer.messages()[before:]
			if !tc.tls {
				if len(msgs) != 0 {
					t.Errorf("delivered without verified TLS")
				}
				return
			}
			if codes(st) != "250/[250]/250" || len(msgs) != 1 || !msgs[0].tls || msgs[0].helo != "gw.test" {
				t.Errorf("responses %s, peer got %+v", codes(st), msgs)
			}
		})
	}
}

// RequireTLS against peers that do not offer STARTTLS: go-smtp without a certificate, and
// smtp-sink. The session ends with QUIT and no MAIL.
func TestRequireTLSNotOffered(t *testing.T) {
	peer := newGoPeer(t, peerOpts{})
	g := newGateway(t, host(func(h *Host) { h.RequireTLS = true }))
	st := g.deliver(t, envelope(peer.port(), "alice@example.com"), rcpts("bob@example.com"), message)
	if st.MailResponse.Code != 451 || !strings.HasPrefix(st.MailResponse.Message, "4.7.4 ") {
		t.Errorf("mail response %v", st.MailResponse)
	}
	eventually(t, "EHLO then QUIT", func() bool { return verbs(peer.ln.commands()[0]) == "EHLO QUIT" })

	sk := startSink(t)
	st = g.deliver(t, envelope(sk.port(), "alice@example.com"), rcpts("bob@example.com"), message)
	if st.MailResponse.Code != 451 || !strings.HasPrefix(st.MailResponse.Message, "4.7.4 ") {
		t.Errorf("mail response from smtp-sink %v", st.MailResponse)
	}
}

// ESMTP parameters against what the peer offers: passed on, dropped, or refused.
func TestParams(t *testing.T) {
	p := func(k, v string) tx.EsmtpParam { return tx.EsmtpParam{Keyword: k, Value: v} }
	cases := []struct {
		name      string
		ext       []string
		mail      []tx.EsmtpParam
		from, to  string
		rcpt      []tx.EsmtpParam
		bdat      bool
		want      string // codes
		wantMail  string // the MAIL line the peer saw, or the mail response
		wantRcpt  string
		wantFirst string // the mail response's text starts so
	}{
		{name: "bare peer: SIZE, DSN and AUTH dropped", ext: nil,
			mail: []tx.EsmtpParam{p("SIZE", "1000"), p("RET", "FULL"), p("ENVID", "abc"), p("AUTH", "<>")},
			rcpt: []tx.EsmtpParam{p("NOTIFY", "SUCCESS,FAILURE"), p("ORCPT", "rfc822;bob@example.com")},
			want: "250/[250]/250", wantMail: "MAIL FROM:<alice@example.com>", wantRcpt: "RCPT TO:<bob@example.com>"},
		{name: "bare peer: BODY=7BIT dropped", mail: []tx.EsmtpParam{p("BODY", "7BIT")},
			want: "250/[250]/250", wantMail: "MAIL FROM:<alice@example.com>"},
		{name: "bare peer: 8BITMIME refused", mail: []tx.EsmtpParam{p("BODY", "8BITMIME")},
			want: "550/[503]/", wantFirst: "5.6.3 "},
		{name: "bare peer: SMTPUTF8 refused", mail: []tx.EsmtpParam{p("SMTPUTF8", "")},
			want: "550/[503]/", wantFirst: "5.6.9 "},
		{name: "bare peer: internationalized address refused", from: "älice@example.com",
			want: "553/[503]/", wantFirst: "5.6.7 "},
		{name: "bare peer: unknown parameter refused", mail: []tx.EsmtpParam{p("XFOO", "1")},
			want: "555/[503]/", wantFirst: "5.5.4 "},
		{name: "bare peer: unknown RCPT parameter refused", rcpt: []tx.EsmtpParam{p("XBAR", "")},
			want: "250/[555]/554"},
		{name: "bare peer: REQUIRETLS refused", mail: []tx.EsmtpParam{p("REQUIRETLS", "")},
			want: "550/[503]/", wantFirst: "5.7.30 "},
		{name: "bare peer: malformed SIZE", mail: []tx.EsmtpParam{p("SIZE", "big")},
			want: "501/[503]/", wantFirst: "5.5.4 "},
		{name: "full peer: everything passed on", ext: []string{"SIZE 1000000", "8BITMIME", "DSN", "SMTPUTF8", "XFOO"},
			mail: []tx.EsmtpParam{p("SIZE", "1000"), p("BODY", "8BITMIME"), p("SMTPUTF8", ""), p("RET", "HDRS"), p("ENVID", "abc"), p("XFOO", "1")},
			rcpt: []tx.EsmtpParam{p("NOTIFY", "FAILURE"), p("ORCPT", "rfc822;bob@example.com")},
			want: "250/[250]/250", wantMail: "MAIL FROM:<alice@example.com> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=abc XFOO=1 SMTPUTF8",
			wantRcpt: "RCPT TO:<bob@example.com> NOTIFY=FAILURE ORCPT=rfc822;bob@example.com"},
		{name: "full peer: SIZE over its limit", ext: []string{"SIZE 1000", "8BITMIME"},
			mail: []tx.EsmtpParam{p("SIZE", "2000")}, want: "552/[503]/", wantFirst: "5.3.4 "},
		{name: "SMTPUTF8 peer: internationalized recipient", ext: []string{"SMTPUTF8", "8BITMIME"}, to: "bøb@example.com",
			mail: []tx.EsmtpParam{p("SMTPUTF8", "")},
			want: "250/[250]/250", wantMail: "MAIL FROM:<alice@example.com> SMTPUTF8", wantRcpt: "RCPT TO:<bøb@example.com>"},
		{name: "SMTPUTF8 peer, internationalized sender: SMTPUTF8 added", ext: []string{"SMTPUTF8", "8BITMIME"}, from: "älice@example.com",
			want: "250/[250]/250", wantMail: "MAIL FROM:<älice@example.com> SMTPUTF8"},
		{name: "SMTPUTF8 peer, ASCII transaction: internationalized recipient refused", ext: []string{"SMTPUTF8", "8BITMIME"}, to: "bøb@example.com",
			want: "250/[553]/554"},
		{name: "BINARYMIME goes by BDAT", ext: []string{"8BITMIME", "BINARYMIME", "CHUNKING"}, mail: []tx.EsmtpParam{p("BODY", "BINARYMIME")},
			want: "250/[250]/250", wantMail: "MAIL FROM:<alice@example.com> BODY=BINARYMIME", bdat: true},
		{name: "BINARYMIME without CHUNKING refused", ext: []string{"8BITMIME", "BINARYMIME"}, mail: []tx.EsmtpParam{p("BODY", "BINARYMIME")},
			want: "550/[503]/", wantFirst: "5.6.3 "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			peer := newScriptPeer(t, "220 peer.test ESMTP", tc.ext...)
			g := newGateway(t, host())
			from, to := "alice@example.com", "bob@example.com"
			if tc.from != "" {
				from = tc.from
			}
			if tc.to != "" {
				to = tc.to
			}
			up, st := g.start(t, envelope(peer.port(), from, tc.mail...))
			if st.MailResponse.Ok() {
				st = addRcpts(t, up, 0, []tx.Mailbox{{Address: to, Esmtp: tc.rcpt}})
				st = putBody(t, up, strings.NewReader(message), int64(len(message)))
			} else {
				st = addRcpts(t, up, 0, []tx.Mailbox{{Address: to, Esmtp: tc.rcpt}})
			}
			if codes(st) != tc.want {
				t.Fatalf("responses %s, want %s (%v %v %v)", codes(st), tc.want, st.MailResponse, st.RcptResponse, st.DataResponse)
			}
			if tc.wantFirst != "" && !strings.HasPrefix(st.MailResponse.Message, tc.wantFirst) {
				t.Errorf("mail response %q, want %q...", st.MailResponse.Message, tc.wantFirst)
			}
			cmds := peer.commands()
			find := func(prefix string) string {
				for _, c := range cmds {
					if strings.HasPrefix(c, prefix) {
						return c
					}
				}
				return ""
			}
			if !st.MailResponse.Ok() && find("MAIL") != "" {
				t.Errorf("MAIL sent although refused: %q", cmds)
			}
			if tc.wantMail != "" && find("MAIL") != tc.wantMail {
				t.Errorf("MAIL line %q, want %q", find("MAIL"), tc.wantMail)
			}
			if tc.wantRcpt != "" && find("RCPT") != tc.wantRcpt {
				t.Errorf("RCPT line %q, want %q", find("RCPT"), tc.wantRcpt)
			}
			if st.DataResponse != nil && st.DataResponse.Ok() {
				if got := peer.messages(); len(got) != 1 || string(got[0]) != message {
					t.Errorf("peer got %q", got)
				}
				if (find("BDAT") != "") != tc.bdat {
					t.Errorf("BDAT %v, want %v: %q", find("BDAT") != "", tc.bdat, cmds)
				}
			}
		})
	}
}

// One recipient refused, two accepted: the message goes to those two.
func TestMultiRecipient(t *testing.T) {
	peer := newGoPeer(t, peerOpts{})
	peer.rcpt = func(to string) error {
		if strings.HasPrefix(to, "nobody@") {
			return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "no such user")
		}
		return nil
	}
	g := newGateway(t, host())
	up, _ := g.start(t, envelope(peer.port(), "alice@example.com"))
	addRcpts(t, up, 0, rcpts("bob@example.com"))
	st := addRcpts(t, up, 1, rcpts("nobody@example.com", "carol@example.com"))
	if got := st.RcptResponse[1]; got.Code != 550 || got.Message != "5.1.1 no such user" {
		t.Errorf("refused recipient: %v", got)
	}
	st = putBody(t, up, strings.NewReader(message), int64(len(message)))
	if codes(st) != "250/[250 550 250]/250" {
		t.Fatalf("responses %s", codes(st))
	}
	if m := peer.messages(); len(m) != 1 || strings.Join(m[0].rcpts, ",") != "bob@example.com,carol@example.com" {
		t.Errorf("peer got %+v", m)
	}
}

// Every recipient refused: the message is answered 554 without DATA.
func TestNoValidRecipients(t *testing.T) {
	peer := newGoPeer(t, peerOpts{})
	peer.rcpt = func(string) error { return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "no such user") }
	g := newGateway(t, host())
	st := g.deliver(t, envelope(peer.port(), "alice@example.com"), rcpts("nobody@example.com"), message)
	if codes(st) != "250/[550]/554" || st.DataResponse.Message != "5.5.1 no valid recipients" {
		t.Errorf("responses %s %v", codes(st), st.DataResponse)
	}
	if len(peer.messages()) != 0 {
		t.Errorf("peer got a message")
	}
	if v := verbs(peer.ln.commands()[0]); strings.Contains(v, "DATA") {
		t.Errorf("transcript %s", v)
	}
}

// LMTP: LHLO; a refused recipient, then one accepted whose per-recipient data reply is the
// data response; the next recipient waits for another transaction (452 4.5.3).
func TestLMTP(t *testing.T) {
	peer := newGoPeer(t, peerOpts{lmtp: true})
	peer.rcpt = func(to string) error {
		if strings.HasPrefix(to, "nobody@") {
			return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "no such user")
		}
		return nil
	}
	peer.lmtpData = func(rcpt string) error {
		if strings.HasPrefix(rcpt, "full@") {
			return smtpErr(452, smtp.EnhancedCode{4, 2, 2}, "mailbox full")
		}
		return nil
	}
	g := newGateway(t, host(func(h *Host) { h.LMTP = true }))
	st := g.deliver(t, envelope(peer.port(), "alice@example.com"), rcpts("nobody@example.com", "full@example.com", "carol@example.com"), message)
	if codes(st) != "250/[550 250 452]/452" {
		t.Fatalf("responses %s", codes(st))
	}
	if got := st.RcptResponse[2].Message; !strings.HasPrefix(got, "4.5.3 ") {
		t.Errorf("third recipient: %q", got)
	}
	if got := st.DataResponse.Message; !strings.HasPrefix(got, "4.2.2 ") || !strings.Contains(got, "mailbox full") {
		t.Errorf("data response %q", got)
	}
	st = g.deliver(t, envelope(peer.port(), "alice@example.com"), rcpts("carol@example.com"), message)
	if codes(st) != "250/[250]/250" {
		t.Errorf("second transaction: %s", codes(st))
	}
	if m := peer.messages(); len(m) != 2 || strings.Join(m[1].rcpts, ",") != "carol@example.com" || m[0].helo != "gw.test" {
		t.Errorf("peer got %+v", m)
	}
	if cmds := peer.ln.commands(); !strings.HasPrefix(cmds[0][0], "LHLO gw.test") {
		t.Errorf("transcript %q", cmds)
	}
}

// A refused connection is a temporary failure, 451 4.4.1, so rest_output tries the next host.
func TestConnectRefused(t *testing.T) {
	g := newGateway(t, host())
	_, st := g.start(t, envelope(portOf(freeAddr(t)), "alice@example.com"))
	if st.MailResponse.Code != 451 || !strings.HasPrefix(st.MailResponse.Message, "4.4.1 connection to 127.0.0.1:") ||
		!strings.HasSuffix(st.MailResponse.Message, " refused") {
		t.Errorf("mail response %v", st.MailResponse)
	}
}

// A 554 greeting is the permanent answer to MAIL; the gateway says QUIT.
func TestGreeting554(t *testing.T) {
	peer := newScriptPeer(t, "554 5.7.1 no mail from you")
	g := newGateway(t, host())
	_, st := g.start(t, envelope(peer.port(), "alice@example.com"))
	if st.MailResponse.Code != 554 || st.MailResponse.Message != "5.7.1 no mail from you" {
		t.Errorf("mail response %v", st.MailResponse)
	}
	eventually(t, "QUIT", func() bool { return strings.Join(peer.commands(), " ") == "QUIT" })
}

// A peer that stops answering gives 451 4.4.2 within the host's timeout.
func TestPeerTimeout(t *testing.T) {
	g := newGateway(t, host(func(h *Host) { h.Timeout = 300 * time.Millisecond }))
	silent := newScriptPeer(t, "hang")
	start := time.Now()
	_, st := g.start(t, envelope(silent.port(), "alice@example.com"))
	if st.MailResponse.Code != 451 || st.MailResponse.Message != "4.4.2 timeout waiting for the next hop during greeting" {
		t.Errorf("mail response %v", st.MailResponse)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}

	slow := newScriptPeer(t, "220 peer.test ESMTP", "8BITMIME")
	slow.reply = func(cmd string) string {
		if strings.HasPrefix(cmd, "RCPT") {
			return "hang"
		}
		return ""
	}
	st = g.deliver(t, envelope(slow.port(), "alice@example.com"), rcpts("bob@example.com"), message)
	// The session is gone: the message that follows fails as SMTP sequencing has it.
	if codes(st) != "250/[451]/503" || st.RcptResponse[0].Message != "4.4.2 timeout waiting for the next hop during RCPT" {
		t.Errorf("responses %s %v %v", codes(st), st.RcptResponse, st.DataResponse)
	}
}

func TestBadRemoteHost(t *testing.T) {
	g := newGateway(t, host())
	cases := []struct {
		rh   *tx.HostPort
		want string
	}{
		{nil, "451 4.3.5 the transaction has no remote_host"},
		{&tx.HostPort{Host: "mx.example.com", Port: 25}, `451 4.3.5 remote_host "mx.example.com" is not an IP address`},
		{&tx.HostPort{Host: "0.0.0.0", Port: 25}, "550 5.4.4 "},
	}
	for _, tc := range cases {
		env := envelope(25, "alice@example.com")
		env.RemoteHost = tc.rh
		_, st := g.start(t, env)
		if got := st.MailResponse.String(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%v: mail response %q, want %q", tc.rh, got, tc.want)
		}
	}
}

// A peer that takes the message and never answers it: after Host.DataTimeout (gateway.yaml's
// smtp_output.hosts.*.data_timeout) the transaction gets 451 4.4.2, and the router reads it
// before its own data_timeout.
func TestDataTimeout(t *testing.T) {
	peer := newScriptPeer(t, "220 peer.test ESMTP")
	peer.hangAfterData = true
	g := newGateway(t, host(func(h *Host) { h.DataTimeout = 300 * time.Millisecond }))
	up, _ := g.start(t, envelope(peer.port(), "alice@example.com"))
	addRcpts(t, up, 0, rcpts("bob@example.com"))
	start := time.Now()
	if err := up.PutBlob(testCtx(t), up.State().Body.(*tx.Blob).URI, strings.NewReader(message), int64(len(message))); err != nil {
		t.Fatal(err)
	}
	st, err := up.Wait(testCtx(t), func(st *tx.Tx) bool { return st.DataResponse != nil })
	if err != nil {
		t.Fatal(err)
	}
	if r := st.DataResponse; r.Code != 451 || !strings.HasPrefix(r.Message, "4.4.2 ") {
		t.Errorf("data response %+v, want 451 4.4.2", r)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("answered after %v: the data timeout did not fire", took)
	}
}

// Cancel before the message: RSET, nothing delivered. While the reply to the message is
// awaited, and in the middle of DATA: the connection is dropped, since only the final dot
// ends DATA. In the middle of BDAT: RSET.
func TestCancel(t *testing.T) {
	put := func(t *testing.T, uri, crange string, body string) int {
		req := must(http.NewRequest(http.MethodPut, uri, strings.NewReader(body)))
		req.Header.Set("Content-Range", crange)
		res := must(http.DefaultClient.Do(req))
		res.Body.Close()
		return res.StatusCode
	}
	t.Run("before the message", func(t *testing.T) {
		peer := newGoPeer(t, peerOpts{})
		g := newGateway(t, host())
		up, _ := g.start(t, envelope(peer.port(), "alice@example.com"))
		addRcpts(t, up, 0, rcpts("bob@example.com"))
		if err := up.Cancel(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "RSET", func() bool { return strings.HasSuffix(verbs(peer.ln.commands()[0]), "RCPT RSET") })
		if len(peer.messages()) != 0 {
			t.Errorf("delivered")
		}
	})
	// The router gave up waiting for the reply to the message (its data_timeout): the
	// connection goes at once, not after the rest of DataTimeout.
	t.Run("waiting for the reply to the message", func(t *testing.T) {
		peer := newScriptPeer(t, "220 peer.test ESMTP")
		peer.hangAfterData = true
		g := newGateway(t, host())
		up, _ := g.start(t, envelope(peer.port(), "alice@example.com"))
		addRcpts(t, up, 0, rcpts("bob@example.com"))
		if err := up.PutBlob(testCtx(t), up.State().Body.(*tx.Blob).URI, strings.NewReader(message), int64(len(message))); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the message", func() bool { return len(peer.messages()) == 1 })
		if err := up.Cancel(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the connection to close", func() bool {
			peer.mu.Lock()
			defer peer.mu.Unlock()
			return peer.hungUp == 1
		})
	})
	for _, bdat := range []bool{false, true} {
		t.Run(fmt.Sprintf("mid-message bdat=%v", bdat), func(t *testing.T) {
			peer := newGoPeer(t, peerOpts{})
			g := newGateway(t, host(func(h *Host) { h.EnableBDAT = bdat }))
			up, _ := g.start(t, envelope(peer.port(), "alice@example.com"))
			addRcpts(t, up, 0, rcpts("bob@example.com"))
			uri := up.State().Body.(*tx.Blob).URI
			if code := put(t, uri, "bytes 0-9/*", "Subject: x"); code != http.StatusOK {
				t.Fatalf("PUT: %d", code)
			}
			if err := up.Cancel(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			if bdat {
				eventually(t, "RSET", func() bool { return strings.HasSuffix(verbs(peer.ln.commands()[0]), "RCPT RSET") })
			} else {
				eventually(t, "the peer to see the message abandoned", func() bool {
					m := peer.messages()
					return len(m) == 1 && m[0].size == 10 && !m[0].delivered
				})
			}
			for _, m := range peer.messages() {
				if m.delivered {
					t.Errorf("delivered")
				}
			}
		})
	}
}

// A 20 MB message goes through with bounded memory: the router's client reads it lazily,
// the peer counts it, and the gateway holds a chunk at a time.
func TestLargeBody(t *testing.T) {
	size := int64(newLazyBody(0).lineLen()) * (20 << 20 / int64(newLazyBody(0).lineLen())) // whole lines: DATA would add a CRLF
	sum := lazySum(size)
	for _, tc := range []struct {
		name  string
		bdat  bool
		chunk int // the router's PUT pieces; 0: one streamed PUT
	}{{"DATA, pieces", false, 1 << 20}, {"BDAT, one PUT", true, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			peer := newGoPeer(t, peerOpts{})
			g := newGateway(t, host(func(h *Host) { h.EnableBDAT = tc.bdat }))
			g.client = must(rest.NewClient(rest.Options{ChunkSize: tc.chunk}))
			up, _ := g.start(t, envelope(peer.port(), "alice@example.com"))
			addRcpts(t, up, 0, rcpts("bob@example.com"))

			runtime.GC()
			var base runtime.MemStats
			runtime.ReadMemStats(&base)
			var peak atomic.Uint64
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				var m runtime.MemStats
				for {
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
					runtime.ReadMemStats(&m)
					if m.HeapInuse > peak.Load() {
						peak.Store(m.HeapInuse)
					}
				}
			}()
			st := putBody(t, up, newLazyBody(size), size)
			close(stop)
			<-sampled
			if codes(st) != "250/[250]/250" {
				t.Fatalf("responses %s", codes(st))
			}
			m := peer.messages()
			if len(m) != 1 || m[0].size != size || m[0].sum != sum {
				t.Fatalf("peer got %d messages", len(m))
			}
			grew := int64(peak.Load()) - int64(base.HeapInuse)
			t.Logf("heap in use grew by %d KiB for a %d KiB message", grew>>10, size>>10)
			if grew > size/2 {
				t.Errorf("heap grew by %d bytes for a %d byte message", grew, size)
			}
		})
	}
}

// Two messages to one host in a row share a connection, with RSET between; the idle
// connection ends with QUIT. With MaxReuse 1 each message has its own.
func TestConnectionReuse(t *testing.T) {
	peer := newGoPeer(t, peerOpts{})
	g := newGateway(t, host(func(h *Host) { h.ReuseIdle = 300 * time.Millisecond }))
	for i := range 2 {
		if st := g.deliver(t, envelope(peer.port(), "alice@example.com"), rcpts("bob@example.com"), message); codes(st) != "250/[250]/250" {
			t.Fatalf("responses %s", codes(st))
		}
		if i == 0 {
			eventually(t, "the session pooled", func() bool { return g.s.pool.size() == 1 })
		}
	}
	if n := peer.ln.accepts(); n != 1 {
		t.Errorf("%d connections for two messages", n)
	}
	eventually(t, "QUIT after the idle time", func() bool {
		return verbs(peer.ln.commands()[0]) == "EHLO MAIL RCPT DATA RSET MAIL RCPT DATA RSET QUIT"
	})
	if g.s.pool.size() != 0 {
		t.Errorf("pool still holds %d", g.s.pool.size())
	}

	once := newGoPeer(t, peerOpts{})
	g = newGateway(t, host(func(h *Host) { h.MaxReuse = 1 }))
	for range 2 {
		g.deliver(t, envelope(once.port(), "alice@example.com"), rcpts("bob@example.com"), message)
	}
	if n := once.ln.accepts(); n != 2 {
		t.Errorf("MaxReuse 1: %d connections for two messages", n)
	}
	// QUIT follows the data reply, which is what deliver waited for.
	eventually(t, "MaxReuse 1: QUIT after the message", func() bool {
		return verbs(once.ln.commands()[0]) == "EHLO MAIL RCPT DATA QUIT"
	})
}

// A pooled connection the peer closed meanwhile is replaced at MAIL.
func TestReuseStaleConnection(t *testing.T) {
	peer := newScriptPeer(t, "220 peer.test ESMTP", "8BITMIME")
	var n atomic.Int32
	peer.reply = func(cmd string) string {
		if cmd == "RSET" && n.Add(1) == 1 {
			return "250 2.0.0 ok"
		}
		if strings.HasPrefix(cmd, "MAIL") && n.Load() == 1 {
			n.Add(1)
			return "421 4.4.2 idle too long"
		}
		return ""
	}
	g := newGateway(t, host())
	for i := range 2 {
		if st := g.deliver(t, envelope(peer.port(), "alice@example.com"), rcpts("bob@example.com"), message); codes(st) != "250/[250]/250" {
			t.Fatalf("responses %s", codes(st))
		}
		if i == 0 {
			eventually(t, "the session pooled", func() bool { return g.s.pool.size() == 1 })
		}
	}
	if got := len(peer.messages()); got != 2 {
		t.Errorf("%d messages", got)
	}
}

// Idle transactions are cancelled (their session ends) and dropped; finished ones are
// dropped after DoneTTL.
func TestGC(t *testing.T) {
	peer := newGoPeer(t, peerOpts{})
	g := newGateway(t, host(), func(o *Options) {
		o.GCInterval, o.IdleTTL, o.DoneTTL = 20*time.Millisecond, 400*time.Millisecond, 100*time.Millisecond
	})
	idle, _ := g.start(t, envelope(peer.port(), "alice@example.com"))
	done := g.deliver(t, envelope(peer.port(), "alice@example.com"), rcpts("bob@example.com"), message)
	if codes(done) != "250/[250]/250" {
		t.Fatalf("responses %s", codes(done))
	}
	gone := func(loc string) bool {
		res, err := http.Get(loc)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusNotFound
	}
	eventually(t, "both transactions dropped", func() bool { return g.s.size() == 0 })
	if !gone(idle.Location()) {
		t.Errorf("idle transaction still readable")
	}
	eventually(t, "the idle transaction's session reset", func() bool {
		for _, c := range peer.ln.commands() {
			if strings.HasPrefix(verbs(c), "EHLO MAIL RSET") {
				return true
			}
		}
		return false
	})
}

// The router's rest_output step, over real HTTP, through the gateway to a peer: the first
// resolved host refuses the connection and rest_output moves on to the second.
func TestRestOutput(t *testing.T) {
	peer := newGoPeer(t, peerOpts{})
	peer.rcpt = func(to string) error {
		if strings.HasPrefix(to, "nobody@") {
			return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "no such user")
		}
		return nil
	}
	g := newGateway(t, host())
	client := must(rest.NewClient(rest.Options{ChunkSize: 16}))
	step := restoutput.New(client, config.RestOutputStep{StaticEndpoint: g.url, RcptTimeout: 10 * time.Second, DataTimeout: 20 * time.Second})
	c := chain.New(step)
	defer c.Close(context.Background())
	t0 := &tx.Tx{
		Sender:     &tx.Sender{Name: "router", Tag: "outbound"},
		MailFrom:   &tx.Mailbox{Address: "alice@example.com"},
		RcptTo:     rcpts("bob@example.com", "nobody@example.com"),
		Resolution: []tx.HostPort{{Host: "127.0.0.1", Port: portOf(freeAddr(t))}, {Host: "127.0.0.1", Port: peer.port()}},
	}
	ctx := testCtx(t)
	if err := c.Update(ctx, t0, nil); err != nil {
		t.Fatal(err)
	}
	if codes(t0) != "250/[250 550]/" {
		t.Fatalf("envelope: %s %v %v", codes(t0), t0.MailResponse, t0.RcptResponse)
	}
	msg := chain.NewMessage(int64(len(message)), func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(message)), nil
	})
	if err := c.Update(ctx, t0, msg); err != nil {
		t.Fatal(err)
	}
	if codes(t0) != "250/[250 550]/250" {
		t.Fatalf("message: %s %v", codes(t0), t0.DataResponse)
	}
	if m := peer.messages(); len(m) != 1 || string(m[0].body) != message || strings.Join(m[0].rcpts, ",") != "bob@example.com" {
		t.Errorf("peer got %+v", m)
	}

	// A cancelled attempt is cancelled at the gateway: the session is reset.
	t1 := &tx.Tx{Sender: t0.Sender, MailFrom: t0.MailFrom, RcptTo: rcpts("carol@example.com"),
		Resolution: []tx.HostPort{{Host: "127.0.0.1", Port: peer.port()}}}
	c1 := chain.New(restoutput.New(client, config.RestOutputStep{StaticEndpoint: g.url, RcptTimeout: 10 * time.Second, DataTimeout: 20 * time.Second}))
	if err := c1.Update(ctx, t1, nil); err != nil || codes(t1) != "250/[250]/" {
		t.Fatalf("envelope: %v %s", err, codes(t1))
	}
	t1.Cancelled = true
	if err := c1.Update(ctx, t1, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "RSET after the cancel", func() bool {
		for _, cmds := range peer.ln.commands() {
			if strings.HasSuffix(verbs(cmds), "MAIL RCPT RSET") {
				return true
			}
		}
		return false
	})
	if len(peer.messages()) != 1 {
		t.Errorf("the cancelled transaction was delivered")
	}
}

// Interop with Postfix's smtp-sink: no SIZE, no CHUNKING, DSN offered.
func TestSmtpSink(t *testing.T) {
	sk := startSink(t)
	g := newGateway(t, host(func(h *Host) { h.EnableBDAT = true }))
	env := envelope(sk.port(), "alice@example.com", tx.EsmtpParam{Keyword: "SIZE", Value: "100"}, tx.EsmtpParam{Keyword: "RET", Value: "HDRS"})
	up, st := g.start(t, env)
	if !st.MailResponse.Ok() {
		t.Fatalf("mail response %v", st.MailResponse)
	}
	addRcpts(t, up, 0, []tx.Mailbox{{Address: "bob@example.com", Esmtp: []tx.EsmtpParam{{Keyword: "NOTIFY", Value: "FAILURE"}}}})
	st = putBody(t, up, strings.NewReader(message), int64(len(message)))
	if codes(st) != "250/[250]/250" {
		t.Fatalf("responses %s %v", codes(st), st.DataResponse)
	}
	var files []string
	eventually(t, "the message file", func() bool { files = sk.files(t); return len(files) == 1 })
	// smtp-sink writes the envelope as X- fields above its Received and the message: SIZE
	// is dropped (no SIZE extension), the DSN parameters pass (DSN offered), and the dot
	// line arrives unstuffed.
	f := strings.ReplaceAll(files[0], "\r\n", "\n")
	for _, want := range []string{"X-Helo-Args: gw.test\n", "X-Mail-Args: <alice@example.com> RET=HDRS\n",
		"X-Rcpt-Args: <bob@example.com> NOTIFY=FAILURE\n", strings.ReplaceAll(message, "\r\n", "\n")} {
		if !strings.Contains(f, want) {
			t.Errorf("smtp-sink wrote %q, without %q", f, want)
		}
	}
}

// The API's errors, as JSON problems with 4xx statuses.
func TestAPIErrors(t *testing.T) {
	peer := newGoPeer(t, peerOpts{})
	g := newGateway(t, host())
	do := func(method, path, body string, hdr ...string) (*http.Response, map[string]any) {
		t.Helper()
		req := must(http.NewRequest(method, g.url+path, strings.NewReader(body)))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res := must(http.DefaultClient.Do(req))
		defer res.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(res.Body).Decode(&v)
		return res, v
	}
	code := func(v map[string]any) string {
		e, _ := v["error"].(map[string]any)
		s, _ := e["code"].(string)
		return s
	}
	res, v := do("POST", "/senders/router/transactions", `{"sender":{"tag":"nope"},"mail_from":{"m":"a@example.com"}}`)
	if res.StatusCode != 404 || code(v) != "unknown_tag" || res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("unknown tag: %d %v", res.StatusCode, v)
	}
	res, v = do("POST", "/senders/router/transactions", `{"mail_from":{"m":"a@example.com"}}`)
	if res.StatusCode != 400 || code(v) != "invalid_field" {
		t.Errorf("no tag: %d %v", res.StatusCode, v)
	}
	res, v = do("POST", "/senders/router/transactions", `{"sender":{"tag":"outbound"},"body":{"inline":"hi"}}`)
	if res.StatusCode != 400 || code(v) != "invalid_field" {
		t.Errorf("inline body: %d %v", res.StatusCode, v)
	}
	res, v = do("POST", "/senders/router/transactions", `{"sender":{"tag":"outbound"},"bogus":1}`)
	if res.StatusCode != 400 {
		t.Errorf("bad JSON: %d %v", res.StatusCode, v)
	}
	res, v = do("GET", "/transactions/nope", "")
	if res.StatusCode != 404 || code(v) != "unknown_transaction" {
		t.Errorf("unknown tx: %d %v", res.StatusCode, v)
	}

	body := fmt.Sprintf(`{"sender":{"name":"x","tag":"outbound"},"mail_from":{"m":"a@example.com"},"remote_host":["127.0.0.1",%d]}`, peer.port())
	res, v = do("POST", "/senders/router/transactions", body)
	loc := res.Header.Get("Location")
	if res.StatusCode != 201 || !strings.HasPrefix(loc, g.url+"/transactions/") || res.Header.Get("ETag") == "" {
		t.Fatalf("create: %d %q %v", res.StatusCode, loc, v)
	}
	if b, _ := v["body"].(map[string]any)["blob_status"].(map[string]any); b["uri"] != loc+"/body" {
		t.Errorf("body uri %v", v["body"])
	}
	path := strings.TrimPrefix(loc, g.url)
	res, v = do("PATCH", path, `{"rcpt_to":[{"m":"b@example.com"}],"rcpt_to_list_offset":0}`)
	if res.StatusCode != 400 || code(v) != "if_match_required" {
		t.Errorf("PATCH without If-Match: %d %v", res.StatusCode, v)
	}
	res, v = do("PATCH", path, `{"rcpt_to":[{"m":"b@example.com"}],"rcpt_to_list_offset":0}`, "If-Match", "999")
	if res.StatusCode != 412 || code(v) != "version_conflict" {
		t.Errorf("PATCH with a stale ETag: %d %v", res.StatusCode, v)
	}
	var etag string
	eventually(t, "the answer to MAIL", func() bool {
		res, v := do("GET", path, "")
		etag = res.Header.Get("ETag")
		return v["mail_response"] != nil
	})
	res, v = do("PATCH", path, `{"rcpt_to":[{"m":"b@example.com"}],"rcpt_to_list_offset":3}`, "If-Match", etag)
	if res.StatusCode != 409 || code(v) != "conflict" {
		t.Errorf("PATCH at a wrong offset: %d %v", res.StatusCode, v)
	}
	res, v = do("GET", path, "", "If-None-Match", etag, "Request-Timeout", "soon")
	if res.StatusCode != 400 || code(v) != "invalid_header" {
		t.Errorf("bad request-timeout: %d %v", res.StatusCode, v)
	}
	start := time.Now()
	res, _ = do("GET", path, "", "If-None-Match", etag, "Request-Timeout", "1")
	if res.StatusCode != 304 || res.Header.Get("ETag") != etag || time.Since(start) < 900*time.Millisecond {
		t.Errorf("hanging GET: %d %q after %v", res.StatusCode, res.Header.Get("ETag"), time.Since(start))
	}
	res, v = do("PUT", path+"/body", "later", "Content-Range", "bytes 5-9/*")
	if res.StatusCode != 416 || res.Header.Get("Content-Range") != "bytes */*" {
		t.Errorf("PUT with a gap: %d %q %v", res.StatusCode, res.Header.Get("Content-Range"), v)
	}
	res, v = do("PUT", path+"/blob/part1", "x")
	if res.StatusCode != 404 || code(v) != "unknown_blob" {
		t.Errorf("PUT of a part: %d %v", res.StatusCode, v)
	}
	res, v = do("DELETE", path, "")
	if res.StatusCode != 405 || code(v) != "method_not_allowed" {
		t.Errorf("DELETE: %d %v", res.StatusCode, v)
	}
	// A heartbeat moves the version on.
	res, _ = do("PATCH", path, "", "If-Match", etag)
	if res.StatusCode != 200 || res.Header.Get("ETag") == etag {
		t.Errorf("heartbeat: %d %q", res.StatusCode, res.Header.Get("ETag"))
	}
}

// Pieces of the message with Content-Range: a piece sent again is skipped, a gap is 416,
// and the message goes on whole.
func TestRangedUpload(t *testing.T) {
	peer := newGoPeer(t, peerOpts{})
	g := newGateway(t, host())
	up, _ := g.start(t, envelope(peer.port(), "alice@example.com"))
	addRcpts(t, up, 0, rcpts("bob@example.com"))
	uri := up.State().Body.(*tx.Blob).URI
	put := func(crange, body string, hdr ...string) (int, string) {
		req := must(http.NewRequest(http.MethodPut, uri, bytes.NewReader([]byte(body))))
		if crange != "" {
			req.Header.Set("Content-Range", crange)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res := must(http.DefaultClient.Do(req))
		res.Body.Close()
		return res.StatusCode, res.Header.Get("Content-Range")
	}
	m := message
	steps := []struct {
		crange, body string
		hdr          []string
		status       int
		held         string
	}{
		{"bytes 0-9/*", m[:10], nil, 200, "bytes 0-9/*"},
		{"bytes 5-14/*", m[5:15], nil, 200, "bytes 0-14/*"}, // overlaps: the first 5 are skipped
		{"bytes 20-24/*", m[20:25], nil, 416, "bytes 0-14/*"},
		{"bytes 0-4/*", m[:5], nil, 200, "bytes 0-14/*"}, // all known already
		{"bytes 15-" + fmt.Sprint(len(m)-1) + "/*", m[15:], nil, 200, fmt.Sprintf("bytes 0-%d/*", len(m)-1)},
		{"", "", []string{"X-Finalize-Blob-Length", fmt.Sprint(len(m))}, 200, fmt.Sprintf("bytes 0-%d/%d", len(m)-1, len(m))},
	}
	for _, s := range steps {
		if status, held := put(s.crange, s.body, s.hdr...); status != s.status || held != s.held {
			t.Errorf("PUT %q: %d %q, want %d %q", s.crange, status, held, s.status, s.held)
		}
	}
	st := wait(t, up, func(s *tx.Tx) bool { return s.DataResponse != nil })
	if codes(st) != "250/[250]/250" || !st.Body.(*tx.Blob).Finalized {
		t.Fatalf("responses %s", codes(st))
	}
	if got := peer.messages(); len(got) != 1 || string(got[0].body) != m {
		t.Errorf("peer got %q", got[0].body)
	}
}

// Opportunistic TLS whose handshake fails is retried in plain text on a new connection.
func TestOpportunisticTLSFallback(t *testing.T) {
	peer := newScriptPeer(t, "220 peer.test ESMTP", "8BITMIME", "STARTTLS")
	peer.reply = func(cmd string) string {
		if cmd == "STARTTLS" {
			return "220 2.0.0 go ahead" // and then it does not speak TLS
		}
		return ""
	}
	g := newGateway(t, host())
	st := g.deliver(t, envelope(peer.port(), "alice@example.com"), rcpts("bob@example.com"), message)
	if codes(st) != "250/[250]/250" {
		t.Fatalf("responses %s %v", codes(st), st.MailResponse)
	}
	if n := strings.Count(strings.Join(peer.commands(), "\n"), "STARTTLS"); n != 1 {
		t.Errorf("STARTTLS sent %d times: %q", n, peer.commands())
	}
	if got := peer.messages(); len(got) != 1 || string(got[0]) != message {
		t.Errorf("peer got %q", got)
	}
}

// Closing the server ends a transaction in flight with 451 4.3.2 for what is still open.
func TestClose(t *testing.T) {
	peer := newGoPeer(t, peerOpts{})
	g := newGateway(t, host())
	up, _ := g.start(t, envelope(peer.port(), "alice@example.com"))
	g.s.Close()
	st := addRcpts(t, up, 0, rcpts("bob@example.com"))
	if got := st.RcptResponse[0].String(); got != "451 4.3.2 the gateway is shutting down; try again" {
		t.Errorf("recipient after close: %q", got)
	}
	res, err := http.Post(g.url+"/senders/router/transactions", "application/json",
		strings.NewReader(`{"sender":{"tag":"outbound"},"mail_from":{"m":"a@example.com"}}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("create after close: %d", res.StatusCode)
	}
}
