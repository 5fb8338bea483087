package outbound

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/koukan/koukan/engine/tx"
)

func parse(s string) (*reply, error) {
	sess := &session{br: bufio.NewReaderSize(strings.NewReader(s), maxReplyLine)}
	return sess.parseReply()
}

func TestParseReply(t *testing.T) {
	cases := []struct {
		in        string
		code      int
		enh, text string
		err       bool
	}{
		{in: "250 ok\r\n", code: 250, text: "ok"},
		{in: "250\r\n", code: 250, text: ""},
		{in: "550-5.1.1 no such\r\n550-5.1.1 user\r\n550 5.1.1 here\r\n", code: 550, enh: "5.1.1", text: "no such user here"},
		{in: "250-peer.test\r\n250-SIZE 100\r\n250 DSN\r\n", code: 250, text: "peer.test SIZE 100 DSN"},
		{in: "451 5.1.1 wrong class\r\n", code: 451, text: "5.1.1 wrong class"},
		{in: "250 2.0.0\r\n", code: 250, enh: "2.0.0", text: ""},
		{in: "250 ok\n", code: 250, text: "ok"},
		{in: "25 short\r\n", err: true},
		{in: "abc def\r\n", err: true},
		{in: "650 no such class\r\n", err: true},
		{in: "250-a\r\n251 b\r\n", err: true},
		{in: "250xok\r\n", err: true},
		{in: "250-unfinished\r\n", err: true},
		{in: "250 " + strings.Repeat("x", maxReplyLine) + "\r\n", err: true},
		{in: strings.Repeat("250-x\r\n", maxReplyLines+1) + "250 x\r\n", err: true},
	}
	for _, tc := range cases {
		r, err := parse(tc.in)
		if tc.err {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil || r.code != tc.code || r.enh != tc.enh || r.text() != tc.text {
			t.Errorf("%q: %+v %v", tc.in, r, err)
		}
	}
}

func FuzzParseReply(f *testing.F) {
	f.Add("250-peer\r\n250 SIZE\r\n")
	f.Add("550 5.1.1 no\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parse(s)
		if err == nil && (r.code < 100 || r.code > 599 || len(r.lines) == 0) {
			t.Errorf("%q: %+v", s, r)
		}
		if err == nil {
			resp := outcome("RCPT", 250, r, nil, "x")
			if resp.Code < 200 || resp.Code > 599 || strings.ContainsAny(resp.Message, "\r\n") {
				t.Errorf("%q gave %v", s, resp)
			}
		}
	})
}

// Every failure becomes a response with a code, an enhanced code of its class, and fixed
// text: no Go error strings.
func TestOutcome(t *testing.T) {
	refused := &net.OpError{Op: "dial", Err: &osSyscallError{syscall.ECONNREFUSED}}
	cases := []struct {
		name string
		r    *reply
		err  error
		want string
	}{
		{"peer reply", &reply{code: 550, enh: "5.1.1", lines: []string{"no such user"}}, nil, "550 5.1.1 no such user"},
		{"peer reply without enhanced code", &reply{code: 452, lines: []string{"full\x00 up"}}, nil, "452 4.0.0 full up"},
		{"empty peer reply", &reply{code: 250, lines: []string{""}}, nil, "250 2.0.0 ok"},
		{"unexpected code", &reply{code: 354, lines: []string{"go"}}, nil, "451 4.5.0 unexpected reply 354 from the next hop to RCPT"},
		{"refused", nil, &connectError{"192.0.2.1:25", refused}, "451 4.4.1 connection to 192.0.2.1:25 refused"},
		{"connect timeout", nil, &connectError{"192.0.2.1:25", timeoutErr{}}, "451 4.4.1 connection to 192.0.2.1:25 timed out"},
		{"unreachable", nil, &connectError{"192.0.2.1:25", errors.New("no route")}, "451 4.4.1 cannot connect to 192.0.2.1:25"},
		{"read timeout", nil, &ioError{"greeting", timeoutErr{}}, "451 4.4.2 timeout waiting for the next hop during greeting"},
		{"lost", nil, &ioError{"DATA", io.ErrUnexpectedEOF}, "451 4.4.2 connection to the next hop lost during DATA"},
		{"protocol", nil, &ioError{"EHLO", &protocolError{"x"}}, "451 4.5.0 protocol error from the next hop during EHLO"},
		{"greeting refusal", nil, &replyError{"greeting", &reply{code: 554, lines: []string{"go away"}}}, "554 5.0.0 go away"},
		{"no STARTTLS", nil, &tlsError{kind: tlsNotOffered}, "451 4.7.4 TLS is required but the next hop does not offer STARTTLS"},
		{"unverified", nil, &tlsError{kind: tlsUnverified, err: errors.New("x509: nope")}, "451 4.7.5 the next hop's TLS certificate did not verify"},
		{"shutdown", nil, errShutdown, "451 4.3.2 the gateway is shutting down; try again"},
		{"unknown", nil, errors.New("some Go error"), "451 4.3.0 internal error (transaction T1)"},
	}
	for _, tc := range cases {
		if got := outcome("RCPT", 250, tc.r, tc.err, "T1").String(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	long := outcome("RCPT", 250, &reply{code: 550, lines: []string{strings.Repeat("é", 1000)}}, nil, "T1")
	if len(long.Message) > maxText+20 {
		t.Errorf("long text kept: %d bytes", len(long.Message))
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

type osSyscallError struct{ errno syscall.Errno }

func (e *osSyscallError) Error() string { return e.errno.Error() }
func (e *osSyscallError) Unwrap() error { return e.errno }

func TestDestination(t *testing.T) {
	cases := []struct {
		h    *tx.HostPort
		lmtp bool
		want string
	}{
		{&tx.HostPort{Host: "192.0.2.1", Port: 2525}, false, "192.0.2.1:2525"},
		{&tx.HostPort{Host: "192.0.2.1"}, false, "192.0.2.1:25"},
		{&tx.HostPort{Host: "192.0.2.1"}, true, "192.0.2.1:24"},
		{&tx.HostPort{Host: "[2001:db8::1]", Port: 25}, false, "[2001:db8::1]:25"},
		{&tx.HostPort{Host: "::ffff:192.0.2.1", Port: 25}, false, "192.0.2.1:25"},
	}
	for _, tc := range cases {
		got, r := destination(tc.h, tc.lmtp)
		if r != nil || got != tc.want {
			t.Errorf("%v: %q %v", tc.h, got, r)
		}
	}
	for _, h := range []*tx.HostPort{nil, {Host: "mx.example.com"}, {Host: "::"}, {Host: "224.0.0.1"}} {
		if _, r := destination(h, false); r == nil || r.Ok() {
			t.Errorf("%v accepted", h)
		}
	}
}

// An address cannot close the path and smuggle parameters onto the command line.
func TestAddressInjection(t *testing.T) {
	s := &session{ext: map[string]string{}}
	if _, r := planMail(tx.Mailbox{Address: "a@b.example> SIZE=1"}, s); r == nil || r.Code != 501 {
		t.Errorf("MAIL: %v", r)
	}
	if _, r := planRcpt(tx.Mailbox{Address: "b@c.example>"}, s, mailPlan{}); r == nil || r.Code != 501 {
		t.Errorf("RCPT: %v", r)
	}
}
