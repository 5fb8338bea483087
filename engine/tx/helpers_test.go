package tx

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

var (
	ok250    = Response{250, "ok"}
	temp450  = Response{450, "busy"}
	perm550  = Response{550, "no"}
	mailbox  = Mailbox{Address: "a@b"}
	finished = &Blob{ID: TxBodyBlobID, Length: 3, Finalized: true}
	partial  = &Blob{ID: TxBodyBlobID, Length: 3}
)

// TestReqInflight follows the rules of spec section 1.3 in their order; each
// case is decided by the rule named.
func TestReqInflight(t *testing.T) {
	tests := []struct {
		rule string
		tx   *Tx
		want bool
	}{
		{"mail_from without response", &Tx{MailFrom: &mailbox, RcptTo: []Mailbox{mailbox}, Body: finished}, true},
		{"mail_response error", &Tx{MailFrom: &mailbox, MailResponse: &perm550, RcptTo: []Mailbox{mailbox}, Body: finished}, false},
		{"mail_response temp error", &Tx{MailFrom: &mailbox, MailResponse: &temp450, RcptTo: []Mailbox{mailbox}}, false},
		{"rcpt without response", &Tx{MailFrom: &mailbox, MailResponse: &ok250, RcptTo: []Mailbox{mailbox, mailbox}, RcptResponse: []Response{ok250}, Body: finished}, true},
		{"rcpt without response, no mail", &Tx{RcptTo: []Mailbox{mailbox}}, true},
		{"no body", &Tx{MailFrom: &mailbox, MailResponse: &ok250, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{ok250}}, false},
		{"body not finalized", &Tx{MailFrom: &mailbox, MailResponse: &ok250, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{ok250}, Body: partial}, false},
		{"no rcpt ok", &Tx{MailFrom: &mailbox, MailResponse: &ok250, RcptTo: []Mailbox{mailbox, mailbox}, RcptResponse: []Response{perm550, temp450}, Body: finished}, false},
		{"no rcpts at all", &Tx{MailFrom: &mailbox, MailResponse: &ok250, Body: finished}, false},
		{"data_response missing", &Tx{MailFrom: &mailbox, MailResponse: &ok250, RcptTo: []Mailbox{mailbox, mailbox}, RcptResponse: []Response{perm550, ok250}, Body: finished}, true},
		{"data_response missing, inline body", &Tx{RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{ok250}, Body: &InlineBody{"x"}}, true},
		{"all answered", &Tx{MailFrom: &mailbox, MailResponse: &ok250, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{ok250}, Body: finished, DataResponse: &temp450}, false},
		{"empty", &Tx{}, false},
	}
	for _, tt := range tests {
		if got := tt.tx.ReqInflight(); got != tt.want {
			t.Errorf("%s: ReqInflight() = %v", tt.rule, got)
		}
	}
}

func TestFillInflightResponses(t *testing.T) {
	mailFailed := Response{503, "5.5.1 failed precondition: MAIL"}
	allFailed := Response{503, "5.5.1 failed precondition: all rcpts failed"}
	tests := []struct {
		name string
		tx   *Tx
		resp Response
		want *Tx
	}{
		{"everything missing, ok fill",
			&Tx{MailFrom: &mailbox, RcptTo: []Mailbox{mailbox, mailbox}, Body: finished}, ok250,
			&Tx{MailFrom: &mailbox, MailResponse: &ok250, RcptTo: []Mailbox{mailbox, mailbox}, RcptResponse: []Response{ok250, ok250}, Body: finished, DataResponse: &ok250}},
		{"everything missing, error fill fails rcpts as after MAIL",
			&Tx{MailFrom: &mailbox, RcptTo: []Mailbox{mailbox}, Body: finished}, temp450,
			&Tx{MailFrom: &mailbox, MailResponse: &temp450, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{mailFailed}, Body: finished, DataResponse: &allFailed}},
		{"mail failed earlier",
			&Tx{MailFrom: &mailbox, MailResponse: &perm550, RcptTo: []Mailbox{mailbox, mailbox}, RcptResponse: []Response{perm550}}, temp450,
			&Tx{MailFrom: &mailbox, MailResponse: &perm550, RcptTo: []Mailbox{mailbox, mailbox}, RcptResponse: []Response{perm550, mailFailed}}},
		{"some rcpts answered, body finalized",
			&Tx{MailFrom: &mailbox, MailResponse: &ok250, RcptTo: []Mailbox{mailbox, mailbox}, RcptResponse: []Response{perm550}, Body: finished}, temp450,
			&Tx{MailFrom: &mailbox, MailResponse: &ok250, RcptTo: []Mailbox{mailbox, mailbox}, RcptResponse: []Response{perm550, temp450}, Body: finished, DataResponse: &allFailed}},
		{"rcpt ok, body not finalized: data stays open",
			&Tx{MailFrom: &mailbox, MailResponse: &ok250, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{ok250}, Body: partial}, temp450,
			&Tx{MailFrom: &mailbox, MailResponse: &ok250, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{ok250}, Body: partial}},
		{"rcpt ok, body finalized",
			&Tx{MailFrom: &mailbox, MailResponse: &ok250, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{ok250}, Body: finished}, temp450,
			&Tx{MailFrom: &mailbox, MailResponse: &ok250, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{ok250}, Body: finished, DataResponse: &temp450}},
		{"no body: no data response",
			&Tx{MailFrom: &mailbox, RcptTo: []Mailbox{mailbox}}, temp450,
			&Tx{MailFrom: &mailbox, MailResponse: &temp450, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{mailFailed}}},
		{"all rcpts failed, body not finalized",
			&Tx{MailFrom: &mailbox, MailResponse: &ok250, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{perm550}, Body: partial}, ok250,
			&Tx{MailFrom: &mailbox, MailResponse: &ok250, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{perm550}, Body: partial, DataResponse: &allFailed}},
		{"complete: unchanged",
			&Tx{MailFrom: &mailbox, MailResponse: &ok250, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{perm550}, Body: finished, DataResponse: &perm550}, temp450,
			&Tx{MailFrom: &mailbox, MailResponse: &ok250, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{perm550}, Body: finished, DataResponse: &perm550}},
	}
	for _, tt := range tests {
		tt.tx.FillInflightResponses(tt.resp)
		if !reflect.DeepEqual(tt.tx, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, tt.tx, tt.want)
		}
		if tt.tx.ReqInflight() {
			t.Errorf("%s: still in flight after filling", tt.name)
		}
	}
}

func TestFillInflightResponsesDoesNotAlias(t *testing.T) {
	x := &Tx{MailFrom: &mailbox, RcptTo: []Mailbox{mailbox}, Body: finished}
	r := ok250
	x.FillInflightResponses(r)
	x.MailResponse.Code = 999
	if x.DataResponse.Code != 250 {
		t.Error("mail and data responses share one value")
	}
}

func TestCheckPreconditions(t *testing.T) {
	mailFailed := Response{503, "5.5.1 failed precondition: MAIL"}
	allFailed := Response{503, "5.5.1 failed precondition: all rcpts failed"}
	tests := []struct {
		name string
		tx   *Tx
		live bool
		want *Tx
	}{
		{"fresh", &Tx{MailFrom: &mailbox}, true, &Tx{MailFrom: &mailbox}},
		{"mail failed",
			&Tx{MailResponse: &perm550, RcptTo: []Mailbox{mailbox, mailbox}}, false,
			&Tx{MailResponse: &perm550, RcptTo: []Mailbox{mailbox, mailbox}, RcptResponse: []Response{mailFailed, mailFailed}}},
		{"mail failed with body",
			&Tx{MailResponse: &temp450, RcptTo: []Mailbox{mailbox}, Body: partial}, false,
			&Tx{MailResponse: &temp450, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{mailFailed}, Body: partial, DataResponse: &allFailed}},
		{"all rcpts failed with body",
			&Tx{MailResponse: &ok250, RcptTo: []Mailbox{mailbox, mailbox}, RcptResponse: []Response{perm550, temp450}, Body: partial}, false,
			&Tx{MailResponse: &ok250, RcptTo: []Mailbox{mailbox, mailbox}, RcptResponse: []Response{perm550, temp450}, Body: partial, DataResponse: &allFailed}},
		{"all rcpts failed, no body yet",
			&Tx{MailResponse: &ok250, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{perm550}}, true,
			&Tx{MailResponse: &ok250, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{perm550}}},
		{"a rcpt still pending",
			&Tx{MailResponse: &ok250, RcptTo: []Mailbox{mailbox, mailbox}, RcptResponse: []Response{perm550}, Body: finished}, true,
			&Tx{MailResponse: &ok250, RcptTo: []Mailbox{mailbox, mailbox}, RcptResponse: []Response{perm550}, Body: finished}},
		{"a rcpt ok",
			&Tx{MailResponse: &ok250, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{ok250}, Body: finished}, true,
			&Tx{MailResponse: &ok250, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{ok250}, Body: finished}},
		{"data answered",
			&Tx{MailResponse: &ok250, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{ok250}, Body: finished, DataResponse: &ok250}, false,
			&Tx{MailResponse: &ok250, RcptTo: []Mailbox{mailbox}, RcptResponse: []Response{ok250}, Body: finished, DataResponse: &ok250}},
	}
	for _, tt := range tests {
		if live := tt.tx.CheckPreconditions(); live != tt.live {
			t.Errorf("%s: live = %v", tt.name, live)
		}
		if !reflect.DeepEqual(tt.tx, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, tt.tx, tt.want)
		}
	}
}

// readString's fast path answers as encoding/json does, or leaves the literal to it.
func TestReadStringMatchesEncodingJSON(t *testing.T) {
	for _, lit := range []string{`""`, `"alice@example.com"`, `"café"`, `"a\"b"`, `"a\\b"`, `"\u00e9"`,
		"\"tab\there\"", "\"bad \xff utf8\"", `"unterminated`, `x"`, `"`, `"a"b"`, `"\ud800"`, `12`} {
		got, err := readString(json.RawMessage(lit), "f")
		var want string
		werr := json.Unmarshal([]byte(lit), &want)
		if lit[0] != '"' {
			werr = errors.New("not a string")
		}
		if (err != nil) != (werr != nil) || got != want {
			t.Errorf("%q: got %q, %v; encoding/json %q, %v", lit, got, err, want, werr)
		}
	}
}
