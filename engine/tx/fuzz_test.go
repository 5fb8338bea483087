package tx

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"testing"
)

var fuzzSeeds = []string{
	// Section 2.6: the gateway's MAIL, RCPT and a heartbeat-free PATCH.
	`{"sender":{"name":"ingress","tag":"smtp-mx"},"mail_from":{"m":"alice@a.com","e":[{"k":"SIZE","p":"123"}]},"remote_host":["203.0.113.9",41000],"local_host":["192.0.2.1",25],"smtp_meta":{"ehlo_host":"mx.a.com","esmtp":true,"tls":true,"auth":false}}`,
	`{"rcpt_to":[{"m":"bob@b.com"}],"rcpt_to_list_offset":1}`,
	// Section 2.12: submission with a message builder, and a plain one.
	`{"mail_from":{"m":"alice@example.com"},"rcpt_to":[{"m":"bob@example.com"}],"body":{"message_builder":{"headers":[["subject","hi"]],"text_body":[{"content_type":"text/plain","content":{"inline":"hello"}}]}}}`,
	`{"mail_from":{"m":"a@x"},"rcpt_to":[{"m":"b@y"}],"filter_output":{"app":{"id":7}}}`,
	`{"mail_from":{"m":""},"rcpt_to":[{"m":"b@y"}],"body":{"reuse_uri":"http://r0:8000/transactions/Q1/body"}}`,
	`{"body":{"inline":"Subject: x\r\n\r\nhi\r\n"}}`,
	// Section 2.5 and 2.12 responses.
	`{"sender": {}, "mail_from": {}, "rcpt_to": [{}], "body": {"blob_status": {"uri": "http://router/transactions/Ab3x/body", "finalized": true}}, "retry": {}, "attempt_count": 1, "mail_response": {"code": 250, "message": "ok"}, "rcpt_response": [{"code": 250, "message": "ok"}], "data_response": {"code": 250, "message": "ok"}, "final_attempt_reason": "upstream response success"}`,
	`{"sender":{},"mail_from":{},"rcpt_to":[{}],"retry":{},"body":{"message_builder":{"blob_status":{"inline0":{"uri":"http://svc:8000/transactions/Zk9q/blob/inline0","finalized":true}}}}}`,
	`{"mail_from":{},"rcpt_to":[{}],"body":{"blob_status":{"uri":"http://rcv/body"},"message_builder":{"uri":"http://rcv/parsed"}},"mail_response":{"code":250},"rcpt_response":[{"code":250}],"cancelled":true,"filter_output":{}}`,
	// Stored forms.
	`{"sender":{"name":"submission","tag":"msa"},"mail_from":{"m":"a@x"},"rcpt_to":[{"m":"b@y"},{"m":"c@z","e":[{"k":"NOTIFY","p":"FAILURE"}]}],"retry":{},"notification":{"x":1},"cancelled":true,"smtp_meta":{}}`,
	`{"mail_response":{"code":250,"message":"ok"},"rcpt_response":[{"code":450,"message":"4.2.1 later"},{"code":550}],"data_response":{"code":600},"filter_output":{"dkim":{"result":"pass"}}}`,
	`{"remote_host":["::1",0],"mail_from":{"m":"a@x"},"body":{"blob_status":{"uri":"u","finalized":true},"message_builder":{"text_body":[{"content_type":"text/plain","content":{"create_id":"0"}}],"blob_status":{"0":{"uri":"v"}}}},"retry":{},"notification":{},"cancelled":false}`,
	`{"rcpt_to":[{"m":"b@y"}],"body":{"message_builder":{"related_attachments":[{"content_type":"image/png","content_id":"x","content":{"reuse_uri":"/transactions/T/blob/logo"}}],"file_attachments":[{"content_type":"text/csv","filename":"a.csv","content":{"inline":"a,b"}}]}},"filter_output":{"a":[1,2,{"b":null}]}}`,
	// Text that encoders like to rewrite: raw U+2028, HTML characters,
	// escapes, numbers beyond float64.
	"{\"filter_output\":{\"a\":\"\u2028<&>\",\"b\":1E400,\"c\":\"\\u00e9\\u0000\"},\"mail_from\":{\"m\":\"é\u2028\"}}",
	// Bad input.
	"{\"filter_output\":{\"a\":\"\xff\"}}", `{"mail_from": null}`, `{"rcpt_to": []}`, `{"mail_from": {"m": "a\u0000b"}}`, `{"a":1,"a":2}`, `[{}]`, `{`, ``,
}

func FuzzParse(f *testing.F) {
	spec, err := os.ReadFile("testdata/message_builder.json")
	if err != nil {
		f.Fatal(err)
	}
	seeds := append(fuzzSeeds, `{"body":{"message_builder":`+string(spec)+`}}`)
	for _, s := range seeds {
		for _, c := range Contexts {
			f.Add([]byte(s), uint8(c))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, ctx uint8) {
		c := Context(ctx % uint8(numContexts))
		x, err := Parse(data, c)
		if err != nil {
			_, field := errors.AsType[*FieldError](err)
			_, syntax := errors.AsType[*SyntaxError](err)
			if !field && !syntax {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		out, err := x.MarshalFor(c)
		if err != nil {
			t.Fatalf("accepted %q but cannot write it: %v", data, err)
		}
		y, err := Parse(out, c)
		if err != nil {
			t.Fatalf("own output %s rejected: %v", out, err)
		}
		if !reflect.DeepEqual(x, y) {
			t.Fatalf("round trip changed the tx:\n%#v\n%#v", x, y)
		}
		if again, _ := y.MarshalFor(c); !bytes.Equal(out, again) {
			t.Fatalf("output not stable:\n%s\n%s", out, again)
		}

		if c := x.Copy(); !reflect.DeepEqual(c, x) {
			t.Fatalf("Copy differs")
		}
		d, err := Delta(&Tx{}, x)
		if err != nil {
			t.Fatalf("Delta from empty: %v", err)
		}
		m := &Tx{}
		if err := m.Merge(d); err != nil {
			t.Fatalf("Merge of Delta from empty: %v", err)
		}
		m.RcptToOffset, m.RcptResponseOffset = x.RcptToOffset, x.RcptResponseOffset
		if !reflect.DeepEqual(m, x) {
			t.Fatalf("empty + Delta(empty, x) != x:\n%#v\n%#v", m, x)
		}
		if d, err := Delta(x, x); err != nil || !d.IsEmpty() {
			t.Fatalf("Delta(x, x) = %+v, %v", d, err)
		}
	})
}
