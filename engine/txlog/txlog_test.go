package txlog

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/koukan/koukan/engine/tx"
)

func TestDomains(t *testing.T) {
	rcpts := []tx.Mailbox{{Address: "a@Example.COM"}, {Address: "b@example.com"}, {Address: "c@bücher.example"}, {Address: "no-at-all"}}
	if got, want := fmt.Sprint(Domains(rcpts)), "[example.com xn--bcher-kva.example]"; got != want {
		t.Errorf("domains %s, want %s", got, want)
	}
	rcpts = nil
	for i := range MaxDomains + 3 {
		rcpts = append(rcpts, tx.Mailbox{Address: fmt.Sprintf("x@d%d.example", i)}, tx.Mailbox{Address: fmt.Sprintf("y@d%d.example", i)})
	}
	got := Domains(rcpts)
	if len(got) != MaxDomains+1 || got[MaxDomains] != "(and 3 more)" {
		t.Errorf("domains past the bound: %q", got)
	}
}

func TestReply(t *testing.T) {
	r := func(code int, msg string) *tx.Response { return &tx.Response{Code: code, Message: msg} }
	ok := *r(250, "2.1.5 ok")
	for _, tc := range []struct {
		name string
		t    tx.Tx
		want string
	}{
		{"nothing yet", tx.Tx{}, "[]"},
		{"MAIL refused", tx.Tx{MailResponse: r(421, "4.3.2 busy"), RcptResponse: []tx.Response{*r(503, "5.5.1 no")}},
			"[code=421 enhanced=4.3.2 message=busy]"},
		{"every recipient refused", tx.Tx{MailResponse: &ok, RcptResponse: []tx.Response{*r(550, "5.1.1 <bob@example.com>: unknown"), *r(451, "4.2.2 full")},
			DataResponse: r(503, "5.5.1 no valid recipients")}, "[code=550 enhanced=5.1.1 message=<*@example.com>: unknown]"},
		{"delivered to some", tx.Tx{MailResponse: &ok, RcptResponse: []tx.Response{*r(550, "5.1.1 unknown"), ok},
			DataResponse: r(250, "queued as ABC")}, "[code=250 enhanced= message=queued as ABC]"},
		{"waiting for the data reply", tx.Tx{MailResponse: &ok, RcptResponse: []tx.Response{ok, *r(452, "4.5.3 too many")}},
			"[code=452 enhanced=4.5.3 message=too many]"},
		{"MAIL accepted", tx.Tx{MailResponse: r(250, "2.0.0 sender mallory@evil.example ok")},
			"[code=250 enhanced=2.0.0 message=sender *@evil.example ok]"},
	} {
		if got := Reply(&tc.t).String(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	long := strings.Repeat("ü", MaxText) // two bytes each
	got := Reply(&tx.Tx{MailResponse: r(554, "5.7.1 x"+long)}).Group()
	if msg := got[2].Value.String(); len(msg) > MaxText+3 || !strings.HasSuffix(msg, "ü...") || !strings.HasPrefix(msg, "xü") {
		t.Errorf("long text cut to %d bytes: %q", len(msg), msg)
	}
	if got[2].Key != "message" || got[0].Value.Kind() != slog.KindInt64 {
		t.Errorf("group %v", got)
	}
}
