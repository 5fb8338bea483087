package tx

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// specMatrix is the table of spec section 1.2, written out independently of
// fields.go. Columns: READ CREATE UPDATE DB ATTEMPT EXPL_C EXPL_U ADD_ROUTE.
// F: the value; P: placeholder {} / [{}] both ways; E: {} accepted on input,
// never written; blank: not carried.
var specMatrix = map[string][numContexts]string{
	"remote_host":          {"F", "F", "", "F", "", "F", "", "F"},
	"local_host":           {"F", "F", "", "F", "", "F", "", "F"},
	"mail_from":            {"P", "F", "F", "F", "", "F", "F", "F"},
	"mail_response":        {"F", "", "", "", "F", "", "", ""},
	"rcpt_to":              {"P", "F", "F", "F", "", "", "", "F"},
	"rcpt_response":        {"F", "", "", "", "F", "", "", ""},
	"data_response":        {"F", "", "", "", "F", "", "", ""},
	"attempt_count":        {"F", "", "", "", "", "", "", ""},
	"body":                 {"F", "F", "F", "", "", "F", "F", "F"},
	"notification":         {"F", "", "", "F", "", "F", "F", ""},
	"retry":                {"F", "", "", "F", "", "F", "F", ""},
	"smtp_meta":            {"", "F", "", "F", "", "F", "", "F"},
	"cancelled":            {"F", "", "", "F", "", "F", "F", "F"},
	"final_attempt_reason": {"F", "", "", "", "", "", "", ""},
	"sender":               {"P", "F", "", "F", "", "", "", ""},
	"filter_output":        {"E", "F", "F", "F", "F", "", "", "F"},
}

// sampleJSON is a valid full value of each field in context c.
func sampleJSON(field string, c Context) string {
	switch field {
	case "remote_host", "local_host":
		return `["192.0.2.1", 25]`
	case "mail_from":
		return `{"m": "alice@example.com", "e": [{"k": "SIZE", "p": "1234"}, {"k": "SMTPUTF8"}]}`
	case "rcpt_to":
		return `[{"m": "bob@example.com"}, {"m": "carol@example.com"}]`
	case "mail_response", "data_response":
		return `{"code": 250, "message": "ok"}`
	case "rcpt_response":
		return `[{"code": 250, "message": "ok"}, {"code": 550, "message": "no such user"}]`
	case "attempt_count":
		return `2`
	case "body":
		if c == RestRead {
			return `{"blob_status": {"uri": "http://r/transactions/T/body", "finalized": true}}`
		}
		return `{"inline": "Subject: hi\r\n\r\nhello\r\n"}`
	case "notification", "retry":
		return `{}`
	case "smtp_meta":
		return `{"ehlo_host": "mx.example.com", "esmtp": true, "tls": false}`
	case "cancelled":
		return `true`
	case "final_attempt_reason":
		return `"upstream response success"`
	case "sender":
		return `{"name": "submission", "tag": "smtp-msa"}`
	case "filter_output":
		return `{"policy_action": {"matched": ["rule1"]}}`
	}
	panic(field)
}

func placeholderJSON(field string) string {
	if field == "rcpt_to" {
		return `[{}, {}]`
	}
	return `{}`
}

func TestMatrixCoversEveryJSONField(t *testing.T) {
	for _, f := range fields {
		_, inSpec := specMatrix[f.name]
		if carried := f.full|f.placeholder|f.echo != 0; carried != inSpec {
			t.Errorf("field %s: carried by some context = %v, in spec matrix = %v", f.name, carried, inSpec)
		}
	}
}

func TestParseAcceptsExactlyTheMatrix(t *testing.T) {
	for name, row := range specMatrix {
		for _, c := range Contexts {
			mode := row[c]
			value := sampleJSON(name, c)
			if mode == "P" || mode == "E" {
				value = placeholderJSON(name)
			}
			_, err := Parse([]byte(`{"`+name+`": `+value+`}`), c)
			if (mode != "") != (err == nil) {
				t.Errorf("%s in %s (mode %q): err = %v", name, c, mode, err)
			}
			if mode == "" && err != nil && err.Error() != name+": not allowed in "+c.String() {
				t.Errorf("%s in %s: error %q", name, c, err)
			}
		}
	}
}

func TestPlaceholders(t *testing.T) {
	tests := []struct {
		doc, err string
	}{
		{`{"mail_from": {}}`, ""},
		{`{"sender": {}}`, ""},
		{`{"rcpt_to": [{}, {}, {}]}`, ""},
		{`{"filter_output": {}}`, ""},
		{`{"mail_from": {"m": "a@b"}}`, "mail_from: must be the placeholder {} in REST_READ"},
		{`{"sender": {"name": "x"}}`, "sender: must be the placeholder {} in REST_READ"},
		{`{"rcpt_to": [{}, {"m": "b@c"}]}`, "rcpt_to[1]: must be the placeholder {} in REST_READ"},
		{`{"rcpt_to": {}}`, "rcpt_to: must be a list"},
		{`{"filter_output": {"k": 1}}`, "filter_output: must be the placeholder {} in REST_READ"},
		{`{"mail_from": []}`, "mail_from: must not be an empty list"},
	}
	for _, tt := range tests {
		x, err := Parse([]byte(tt.doc), RestRead)
		if errText(err) != tt.err {
			t.Errorf("Parse(%s) error = %v, want %q", tt.doc, err, tt.err)
		}
		if err == nil && !x.IsEmpty() {
			t.Errorf("Parse(%s): placeholders must carry no value, got %+v", tt.doc, x)
		}
	}
	// Placeholders are input only in REST_READ.
	for _, c := range []Context{RestCreate, RestUpdate, DB, ExploderCreate, AddRoute} {
		if _, err := Parse([]byte(`{"mail_from": {}}`), c); errText(err) != "mail_from.m: is required" {
			t.Errorf("mail_from {} in %s: err = %v", c, err)
		}
	}
}

func TestMarshalWritesExactlyTheMatrix(t *testing.T) {
	x := fullTx()
	for _, c := range Contexts {
		b, err := x.MarshalFor(c)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v in %s", c, err, b)
		}
		for name, row := range specMatrix {
			v, present := got[name]
			switch row[c] {
			case "F":
				if !present {
					t.Errorf("%s: %s missing from %s", c, name, b)
				}
			case "P":
				if want := placeholderJSON(name); string(v) != strings.ReplaceAll(want, " ", "") {
					t.Errorf("%s: %s = %s, want placeholder %s", c, name, v, want)
				}
			default:
				if present {
					t.Errorf("%s: %s present in %s", c, name, b)
				}
			}
		}
		offset, hasOffset := got["rcpt_to_list_offset"]
		if hasOffset != (c == RestUpdate) || (hasOffset && string(offset) != "3") {
			t.Errorf("%s: rcpt_to_list_offset = %s (present %v)", c, offset, hasOffset)
		}
	}
}

// fullTx has every field set, with a body every context can carry something of.
func fullTx() *Tx {
	return &Tx{
		Sender:       &Sender{Name: "submission", Tag: "smtp-msa"},
		RemoteHost:   &HostPort{"203.0.113.9", 41000},
		LocalHost:    &HostPort{"192.0.2.1", 25},
		MailFrom:     &Mailbox{Address: "alice@example.com", Esmtp: []EsmtpParam{{"SIZE", "1234"}, {"BODY", "8BITMIME"}}},
		RcptTo:       []Mailbox{{Address: "bob@example.com"}, {Address: "carol@example.com", Esmtp: []EsmtpParam{{"NOTIFY", "NEVER"}}}},
		RcptToOffset: 3,
		Body: &MessageBuilder{
			Spec: MessageSpec{
				Headers:  []Header{{"subject", json.RawMessage(`"hi"`)}, {"to", json.RawMessage(`[{"address":"bob@example.com"}]`)}},
				TextBody: []Part{{ContentType: "text/html", Content: Content{ContentCreate, "inline0"}}},
			},
			URI:   "http://receiver/parsed",
			Blobs: []Blob{{ID: "inline0", URI: "http://r/transactions/T/blob/inline0", Finalized: true}},
			Raw:   &Blob{ID: TxBodyBlobID, URI: "http://r/transactions/T/body"},
		},
		SMTPMeta:           map[string]json.RawMessage{"ehlo_host": json.RawMessage(`"mx.example.com"`), "tls": json.RawMessage(`true`)},
		Notification:       map[string]json.RawMessage{},
		Retry:              map[string]json.RawMessage{"max_attempts": json.RawMessage(`3`)},
		AttemptCount:       2,
		MailResponse:       &Response{250, "ok"},
		RcptResponse:       []Response{{250, "ok"}, {450, "try later"}},
		DataResponse:       &Response{250, "queued <as> 123"},
		Cancelled:          true,
		FinalAttemptReason: ReasonUpstreamSuccess,
		FilterOutput:       map[string]json.RawMessage{"koukan.dkim_check": json.RawMessage(`{"result":"pass","d":["example.com"]}`)},

		RestID:                "T",
		RestEndpoint:          "http://gateway",
		Options:               map[string]any{"receive_parsing": true},
		Resolution:            []HostPort{{"mx1.example.com", 25}},
		SessionURI:            "http://r0",
		RestUpstreamSender:    &Sender{Name: "gw"},
		EphemeralFilterOutput: map[string]any{"x": 1},
	}
}

// carried is what a round trip through context c keeps of x, as the spec
// describes it (placeholders and in-process fields drop out, the body keeps
// only the forms c carries).
func carried(x *Tx, c Context) *Tx {
	want := &Tx{}
	want.CopyFrom(x, c)
	switch c {
	case RestRead:
		want.Sender, want.MailFrom, want.RcptTo, want.FilterOutput = nil, nil, nil, nil
		mb := *want.Body.(*MessageBuilder)
		mb.Spec = MessageSpec{}
		mb.Raw = &Blob{ID: TxBodyBlobID, URI: mb.Raw.URI, Finalized: mb.Raw.Finalized}
		want.Body = &mb
	case RestCreate, RestUpdate:
		want.Body = &MessageBuilder{Spec: want.Body.(*MessageBuilder).Spec}
	}
	if c == RestUpdate {
		want.RcptToOffset = x.RcptToOffset
	}
	return want
}

func TestRoundTripPerContext(t *testing.T) {
	x := fullTx()
	for _, c := range Contexts {
		b, err := x.MarshalFor(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(b, c)
		if err != nil {
			t.Fatalf("%s: Parse(%s): %v", c, b, err)
		}
		if want := carried(x, c); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: round trip of %s\n got %+v\nwant %+v", c, b, got, want)
		}
		// REST_READ drops placeholders on input, so only there a second
		// trip writes less.
		if again, _ := got.MarshalFor(c); c != RestRead && string(again) != string(b) {
			t.Errorf("%s: second marshal differs:\n%s\n%s", c, b, again)
		}
	}
}

func TestInProcessFieldsNeverInJSON(t *testing.T) {
	x := &Tx{}
	for _, f := range fields {
		if f.full|f.placeholder|f.echo == 0 {
			f.copyTo(x, fullTx())
			for _, c := range Contexts {
				if _, err := Parse([]byte(`{"`+f.name+`": "x"}`), c); errText(err) != f.name+": unknown field" {
					t.Errorf("%s in %s: err = %v", f.name, c, err)
				}
			}
		}
	}
	if x.IsEmpty() {
		t.Fatal("test set no in-process field")
	}
	for _, c := range Contexts {
		if b, _ := x.MarshalFor(c); string(b) != "{}" {
			t.Errorf("%s: in-process fields written: %s", c, b)
		}
	}
}

// TestRestReadGolden renders the "typical final JSON" of spec section 2.5.
func TestRestReadGolden(t *testing.T) {
	x := &Tx{
		Sender:             &Sender{Name: "submission"},
		MailFrom:           &Mailbox{Address: "alice@example.com"},
		RcptTo:             []Mailbox{{Address: "bob@example.com"}},
		Body:               &Blob{ID: TxBodyBlobID, URI: "http://router/transactions/Ab3x/body", Length: 1234, Finalized: true},
		Retry:              map[string]json.RawMessage{},
		AttemptCount:       1,
		MailResponse:       &Response{250, "ok"},
		RcptResponse:       []Response{{250, "ok"}},
		DataResponse:       &Response{250, "ok"},
		FinalAttemptReason: ReasonUpstreamSuccess,
		FilterOutput:       map[string]json.RawMessage{"k": json.RawMessage(`1`)},
		SMTPMeta:           map[string]json.RawMessage{"tls": json.RawMessage(`true`)},
		RestID:             "Ab3x",
	}
	want := `{"sender": {}, "mail_from": {}, "rcpt_to": [{}],
 "body": {"blob_status": {"uri": "http://router/transactions/Ab3x/body", "finalized": true}},
 "retry": {}, "attempt_count": 1,
 "mail_response": {"code": 250, "message": "ok"},
 "rcpt_response": [{"code": 250, "message": "ok"}],
 "data_response": {"code": 250, "message": "ok"},
 "final_attempt_reason": "upstream response success"}`
	got, err := x.MarshalFor(RestRead)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != compact(t, want) {
		t.Errorf("REST_READ\n got %s\nwant %s", got, compact(t, want))
	}

	x.FinalAttemptReason = ReasonOneshot
	got, _ = x.MarshalFor(RestRead)
	if strings.Contains(string(got), "final_attempt_reason") {
		t.Errorf("oneshot shown: %s", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		c        Context
		doc, err string
	}{
		{RestCreate, `[]`, "the transaction must be a JSON object"},
		{RestCreate, `{"bogus": 1}`, "bogus: unknown field"},
		{RestCreate, `{"retry": {}}`, "retry: not allowed in REST_CREATE"},
		{RestUpdate, `{"notification": {}}`, "notification: not allowed in REST_UPDATE"},
		{RestCreate, `{"mail_from": null}`, "mail_from: must not be null"},
		{RestCreate, `{"rcpt_to": []}`, "rcpt_to: must not be an empty list"},
		{RestCreate, `{"rcpt_to": [ ]}`, "rcpt_to: must not be an empty list"},
		{DBAttempt, "{\"rcpt_response\": [\n]}", "rcpt_response: must not be an empty list"},
		{RestCreate, `{"rcpt_to": [{"m": "a@b"}, {"m": 7}]}`, "rcpt_to[1].m: must be a string"},
		{RestCreate, `{"rcpt_to": [{"m": "a@b"}, null]}`, "rcpt_to[1]: must be an object"},
		{RestCreate, `{"mail_from": {"m": "a@b", "x": 1}}`, "mail_from.x: unknown field"},
		{RestCreate, `{"mail_from": {"m": "a@b\r\nRCPT TO:<c@d>"}}`, "mail_from.m: must not contain control characters"},
		{RestCreate, `{"mail_from": {"m": "a@b", "e": [{"p": "1"}]}}`, "mail_from.e[0].k: is required"},
		{RestCreate, `{"mail_from": {"m": "a@b", "e": [{"k": "SI ZE"}]}}`, "mail_from.e[0].k: keyword must be letters, digits and inner hyphens"},
		{RestCreate, `{"mail_from": {"m": "a@b", "e": [{"k": "SIZE", "p": ""}]}}`, "mail_from.e[0].p: empty value"},
		{RestCreate, `{"mail_from": {"m": "a@b"}, "mail_from": {"m": "c@d"}}`, "mail_from: duplicate key"},
		{RestCreate, `{"sender": {"name": "x", "tag": "y", "yaml": {}}}`, "sender: may only contain name, tag"},
		{RestCreate, `{"sender": {"tag": 1}}`, "sender.tag: must be a string"},
		{RestCreate, `{"remote_host": ["1.2.3.4"]}`, "remote_host: must be a [host, port] pair"},
		{RestCreate, `{"remote_host": ["1.2.3.4", "25"]}`, "remote_host[1]: must be an integer"},
		{RestCreate, `{"remote_host": ["1.2.3.4", 70000]}`, "remote_host[1]: must be an integer from 0 to 65535"},
		{RestCreate, `{"remote_host": ["", 25]}`, "remote_host[0]: must not be empty"},
		{RestCreate, `{"smtp_meta": {"tls": null}}`, "smtp_meta.tls: must not be null"},
		{RestCreate, `{"smtp_meta": []}`, "smtp_meta: must not be an empty list"},
		{RestCreate, `{"smtp_meta": [1]}`, "smtp_meta: must be an object"},
		{RestCreate, `{"rcpt_to_list_offset": 1}`, "rcpt_to_list_offset: not allowed in REST_CREATE"},
		{RestUpdate, `{"rcpt_to_list_offset": 1}`, "rcpt_to_list_offset: is only allowed together with rcpt_to"},
		{RestUpdate, `{"rcpt_to": [{"m": "a@b"}], "rcpt_to_list_offset": -1}`, "rcpt_to_list_offset: must be an integer from 0 to 2147483647"},
		{RestUpdate, `{"rcpt_to": [{"m": "a@b"}], "rcpt_to_list_offset": 1.5}`, "rcpt_to_list_offset: must be an integer"},
		{RestUpdate, `{"mail_from_list_offset": 1}`, "mail_from_list_offset: unknown field"},
		{DBAttempt, `{"rcpt_response_list_offset": 1}`, "rcpt_response_list_offset: unknown field"},
		{RestRead, `{"attempt_count": 0}`, "attempt_count: must be an integer from 1 to 2147483647"},
		{RestRead, `{"cancelled": "yes"}`, "cancelled: must be true or false"},
		{RestRead, `{"final_attempt_reason": "oneshot"}`, `final_attempt_reason: "oneshot" is internal to Koukan`},
		{RestRead, `{"final_attempt_reason": ""}`, "final_attempt_reason: must not be empty"},
		{DBAttempt, `{"mail_response": {"code": "250"}}`, "mail_response.code: must be an integer"},
		{DBAttempt, `{"mail_response": {"code": 250.0}}`, "mail_response.code: must be an integer"},
		{DBAttempt, `{"mail_response": {"code": 2e2}}`, "mail_response.code: must be an integer"},
		{DBAttempt, `{"mail_response": {"code": 99}}`, "mail_response.code: must be an integer from 100 to 699"},
		{DBAttempt, `{"mail_response": {"message": "ok"}}`, "mail_response.code: is required"},
		{DBAttempt, `{"mail_response": {"code": 250, "message": 1}}`, "mail_response.message: must be a string"},
		{DBAttempt, `{"rcpt_response": [{"code": 250}, {"code": 250, "x": 1}]}`, "rcpt_response[1].x: unknown field"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.doc), tt.c)
		if errText(err) != tt.err {
			t.Errorf("Parse(%s, %s) error = %v, want %q", tt.doc, tt.c, err, tt.err)
		}
		if _, ok := errors.AsType[*FieldError](err); err != nil && !ok {
			t.Errorf("Parse(%s): error %T is not a *FieldError", tt.doc, err)
		}
	}
}

func TestSyntaxError(t *testing.T) {
	for doc, offset := range map[string]int64{`{"mail_from": }`: 15, ``: 0, `{} x`: 4, `{"a": "b"`: 9, "{\"filter_output\": {\"a\": \"\xff\"}}": 26} {
		_, err := Parse([]byte(doc), RestCreate)
		se, ok := errors.AsType[*SyntaxError](err)
		if !ok || se.Offset != offset {
			t.Errorf("Parse(%q) = %v, want *SyntaxError at %d", doc, err, offset)
			continue
		}
		if !strings.HasPrefix(err.Error(), "invalid JSON at byte ") || strings.Contains(err.Error(), "json:") {
			t.Errorf("Parse(%q): unclean error %q", doc, err)
		}
	}
}

func TestListOffsets(t *testing.T) {
	x, err := Parse([]byte(`{"rcpt_to": [{"m": "c@d"}], "rcpt_to_list_offset": 2}`), RestUpdate)
	if err != nil {
		t.Fatal(err)
	}
	if x.RcptToOffset != 2 || len(x.RcptTo) != 1 {
		t.Fatalf("got %+v", x)
	}
	x, _ = Parse([]byte(`{"rcpt_to": [{"m": "c@d"}]}`), RestUpdate)
	if x.RcptToOffset != 0 {
		t.Errorf("absent offset = %d, want 0", x.RcptToOffset)
	}
}

func TestResponseDefaults(t *testing.T) {
	for code, msg := range map[int]string{250: "ok", 220: "ok", 451: "temporary error", 550: "permanent error", 600: "internal error", 354: "internal error", 199: "internal error"} {
		x, err := Parse([]byte(`{"data_response": {"code": `+strconv.Itoa(code)+`}}`), DBAttempt)
		if err != nil {
			t.Fatal(err)
		}
		if *x.DataResponse != (Response{code, msg}) || DefaultMessage(code) != msg {
			t.Errorf("code %d: got %+v, want message %q", code, x.DataResponse, msg)
		}
	}
	x, _ := Parse([]byte(`{"data_response": {"code": 550, "message": ""}}`), DBAttempt)
	if x.DataResponse.Message != "" {
		t.Errorf("explicit empty message replaced by %q", x.DataResponse.Message)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
