package tx

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func TestDeltaAndMerge(t *testing.T) {
	alice := &Mailbox{Address: "alice@example.com"}
	bob, carol := Mailbox{Address: "bob@example.com"}, Mailbox{Address: "carol@example.com"}
	body := func(length int64, fin bool) *Blob {
		return &Blob{ID: TxBodyBlobID, URI: "u", Length: length, Finalized: fin}
	}
	spec := MessageSpec{TextBody: []Part{{ContentType: "text/plain", Content: Content{ContentCreate, "a"}}}}
	tests := []struct {
		name     string
		old, new *Tx
		want     *Tx    // the delta
		conflict string // "" = no conflict
	}{
		{"nothing new", &Tx{MailFrom: alice}, &Tx{MailFrom: alice}, &Tx{}, ""},
		{"scalar set", &Tx{}, &Tx{MailFrom: alice, Cancelled: true}, &Tx{MailFrom: alice, Cancelled: true}, ""},
		{"scalar equal value", &Tx{MailFrom: alice}, &Tx{MailFrom: &Mailbox{Address: "alice@example.com"}}, &Tx{}, ""},
		{"scalar changed", &Tx{MailFrom: alice}, &Tx{MailFrom: &bob}, nil, "mail_from: is write-once and cannot change"},
		{"esmtp changed", &Tx{MailFrom: alice}, &Tx{MailFrom: &Mailbox{Address: alice.Address, Esmtp: []EsmtpParam{{"SIZE", "1"}}}}, nil, "mail_from: is write-once and cannot change"},
		{"scalar cleared", &Tx{MailFrom: alice}, &Tx{}, nil, "mail_from: cannot be cleared once set"},
		{"bool cleared", &Tx{Cancelled: true}, &Tx{}, nil, "cancelled: cannot be cleared once set"},
		{"response changed", &Tx{DataResponse: &Response{450, "x"}}, &Tx{DataResponse: &Response{250, "x"}}, nil, "data_response: is write-once and cannot change"},
		{"internal scalar changed", &Tx{RestID: "a"}, &Tx{RestID: "b"}, nil, "rest_id: is write-once and cannot change"},
		{"list append", &Tx{RcptTo: []Mailbox{bob}}, &Tx{RcptTo: []Mailbox{bob, carol}}, &Tx{RcptTo: []Mailbox{carol}, RcptToOffset: 1}, ""},
		{"list from empty", &Tx{}, &Tx{RcptResponse: []Response{{250, "ok"}}}, &Tx{RcptResponse: []Response{{250, "ok"}}}, ""},
		{"list item changed", &Tx{RcptTo: []Mailbox{bob, carol}}, &Tx{RcptTo: []Mailbox{bob, bob}}, nil, "rcpt_to[1]: is write-once and cannot change"},
		{"list shrank", &Tx{RcptResponse: []Response{{250, "ok"}}}, &Tx{}, nil, "rcpt_response: cannot shrink from 1 to 0 items"},
		{"dict new and replaced keys", &Tx{FilterOutput: map[string]json.RawMessage{"a": raw(`1`), "b": raw(`2`)}},
			&Tx{FilterOutput: map[string]json.RawMessage{"a": raw(`1`), "b": raw(`3`), "c": raw(`4`)}},
			&Tx{FilterOutput: map[string]json.RawMessage{"b": raw(`3`), "c": raw(`4`)}}, ""},
		{"dict unchanged", &Tx{Retry: map[string]json.RawMessage{}}, &Tx{Retry: map[string]json.RawMessage{}}, &Tx{}, ""},
		{"dict set empty", &Tx{}, &Tx{Retry: map[string]json.RawMessage{}}, &Tx{Retry: map[string]json.RawMessage{}}, ""},
		{"dict key removed", &Tx{SMTPMeta: map[string]json.RawMessage{"tls": raw(`true`), "auth": raw(`false`)}}, &Tx{SMTPMeta: map[string]json.RawMessage{"tls": raw(`true`)}}, nil, `smtp_meta: key "auth" cannot be removed`},
		{"dict cleared", &Tx{Notification: map[string]json.RawMessage{}}, &Tx{}, nil, "notification: cannot be cleared once set"},
		{"body set", &Tx{}, &Tx{Body: body(0, false)}, &Tx{Body: body(0, false)}, ""},
		{"blob grows", &Tx{Body: body(5, false)}, &Tx{Body: body(9, false)}, &Tx{Body: body(9, false)}, ""},
		{"blob finalized", &Tx{Body: body(9, false)}, &Tx{Body: body(9, true)}, &Tx{Body: body(9, true)}, ""},
		{"blob uri moves to the service alias", &Tx{Body: body(9, true)}, &Tx{Body: &Blob{ID: TxBodyBlobID, URI: "svc", Length: 9, Finalized: true}}, &Tx{Body: &Blob{ID: TxBodyBlobID, URI: "svc", Length: 9, Finalized: true}}, ""},
		{"blob shrinks", &Tx{Body: body(9, false)}, &Tx{Body: body(5, false)}, nil, `body: blob "__internal_tx_body" cannot shrink from 9 to 5 bytes`},
		{"finalized blob grows", &Tx{Body: body(9, true)}, &Tx{Body: body(10, true)}, nil, `body: blob "__internal_tx_body" is finalized and cannot change`},
		{"finalized blob reopened", &Tx{Body: body(9, true)}, &Tx{Body: body(9, false)}, nil, `body: blob "__internal_tx_body" is finalized and cannot change`},
		{"other blob", &Tx{Body: body(9, false)}, &Tx{Body: &Blob{ID: "x", Length: 9}}, nil, `body: blob "__internal_tx_body" cannot be replaced by blob "x"`},
		{"blob swapped for inline", &Tx{Body: body(9, false)}, &Tx{Body: &InlineBody{"x"}}, nil, "body: cannot be replaced by a different body"},
		{"inline changed", &Tx{Body: &InlineBody{"x"}}, &Tx{Body: &InlineBody{"y"}}, nil, "body: cannot be replaced by a different body"},
		{"body cleared", &Tx{Body: &InlineBody{"x"}}, &Tx{}, nil, "body: cannot be cleared once set"},
		{"message builder blobs filled in",
			&Tx{Body: &MessageBuilder{Spec: spec}},
			&Tx{Body: &MessageBuilder{Spec: spec, Blobs: []Blob{{ID: "a", Length: 3}}}},
			&Tx{Body: &MessageBuilder{Spec: spec, Blobs: []Blob{{ID: "a", Length: 3}}}}, ""},
		{"message builder blob finalized, raw added",
			&Tx{Body: &MessageBuilder{Spec: spec, Blobs: []Blob{{ID: "a", Length: 3}}}},
			&Tx{Body: &MessageBuilder{Spec: spec, URI: "p", Blobs: []Blob{{ID: "a", Length: 3, Finalized: true}}, Raw: body(1, false)}},
			&Tx{Body: &MessageBuilder{Spec: spec, URI: "p", Blobs: []Blob{{ID: "a", Length: 3, Finalized: true}}, Raw: body(1, false)}}, ""},
		{"message builder blob dropped",
			&Tx{Body: &MessageBuilder{Spec: spec, Blobs: []Blob{{ID: "a"}}}},
			&Tx{Body: &MessageBuilder{Spec: spec, Blobs: []Blob{{ID: "b"}}}}, nil, `body: blob "a" cannot be removed`},
		{"message builder spec changed",
			&Tx{Body: &MessageBuilder{Spec: spec}}, &Tx{Body: &MessageBuilder{}}, nil, "body: message_builder spec cannot change"},
		{"message builder uri changed",
			&Tx{Body: &MessageBuilder{URI: "p"}}, &Tx{Body: &MessageBuilder{URI: "q"}}, nil, "body: message_builder uri cannot change"},
		{"message builder raw dropped",
			&Tx{Body: &MessageBuilder{Raw: body(1, false)}}, &Tx{Body: &MessageBuilder{}}, nil, "body: blob_status cannot be removed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, new := tt.old.Copy(), tt.new.Copy()
			d, err := Delta(tt.old, tt.new)
			checkConflict(t, "Delta", err, tt.conflict)
			if !reflect.DeepEqual(tt.old, old) || !reflect.DeepEqual(tt.new, new) {
				t.Error("Delta modified its arguments")
			}
			if err != nil {
				// Merging new as if it were a delta either conflicts too or,
				// where new only lacks something (a delta cannot clear),
				// changes nothing.
				m := tt.old.Copy()
				err := m.Merge(tt.new)
				if _, ok := errors.AsType[*ConflictError](err); err != nil && !ok {
					t.Errorf("Merge error %T is not a *ConflictError", err)
				}
				if !reflect.DeepEqual(m, tt.old) {
					t.Errorf("Merge (err %v) changed the tx: %+v", err, m)
				}
				return
			}
			if !reflect.DeepEqual(d, tt.want) {
				t.Errorf("Delta =\n %+v\nwant\n %+v", d, tt.want)
			}
			if d.IsEmpty() != tt.want.IsEmpty() {
				t.Errorf("IsEmpty = %v", d.IsEmpty())
			}
			m := tt.old.Copy()
			if err := m.Merge(d); err != nil {
				t.Fatalf("Merge: %v", err)
			}
			m.RcptToOffset, m.RcptResponseOffset = tt.new.RcptToOffset, tt.new.RcptResponseOffset
			if !reflect.DeepEqual(m, tt.new) {
				t.Errorf("old + Delta(old, new) =\n %+v\nwant\n %+v", m, tt.new)
			}
		})
	}
}

func checkConflict(t *testing.T, what string, err error, want string) {
	t.Helper()
	if errText(err) != want {
		t.Errorf("%s error = %v, want %q", what, err, want)
	}
	if _, ok := errors.AsType[*ConflictError](err); err != nil && !ok {
		t.Errorf("%s error %T is not a *ConflictError", what, err)
	}
}

func TestMergeListOffset(t *testing.T) {
	bob, carol := Mailbox{Address: "bob@b"}, Mailbox{Address: "carol@c"}
	x := &Tx{RcptTo: []Mailbox{bob}}
	for _, off := range []int{0, 2} {
		err := x.Merge(&Tx{RcptTo: []Mailbox{carol}, RcptToOffset: off})
		checkConflict(t, "Merge", err, "rcpt_to: items start at offset "+string(rune('0'+off))+" but the list has 1")
	}
	if err := x.Merge(&Tx{RcptTo: []Mailbox{carol}, RcptToOffset: 1}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(x.RcptTo, []Mailbox{bob, carol}) {
		t.Errorf("RcptTo = %v", x.RcptTo)
	}
	// The PATCH path: a REST_UPDATE document merged into the stored tx.
	d, err := Parse([]byte(`{"rcpt_to": [{"m": "dave@d"}], "rcpt_to_list_offset": 2}`), RestUpdate)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Merge(d); err != nil || len(x.RcptTo) != 3 {
		t.Errorf("Merge(PATCH) = %v, rcpt_to %v", err, x.RcptTo)
	}
	if err := x.Merge(d); err == nil {
		t.Error("a replayed PATCH merged twice")
	}
}

func TestMergeDict(t *testing.T) {
	x := &Tx{FilterOutput: map[string]json.RawMessage{"a": raw(`1`), "b": raw(`2`)}}
	if err := x.Merge(&Tx{FilterOutput: map[string]json.RawMessage{"b": raw(`3`), "c": raw(`4`)}}); err != nil {
		t.Fatal(err)
	}
	want := map[string]json.RawMessage{"a": raw(`1`), "b": raw(`3`), "c": raw(`4`)}
	if !reflect.DeepEqual(x.FilterOutput, want) {
		t.Errorf("FilterOutput = %s", x.FilterOutput)
	}
	y := &Tx{}
	if err := y.Merge(&Tx{Notification: map[string]json.RawMessage{}}); err != nil || y.Notification == nil {
		t.Errorf("merging an empty dict must set it: %v %v", err, y.Notification)
	}
}

func TestMergeScalars(t *testing.T) {
	x := &Tx{MailFrom: &Mailbox{Address: "a@b"}}
	if err := x.Merge(&Tx{MailFrom: &Mailbox{Address: "a@b"}, Cancelled: true}); err != nil {
		t.Fatalf("re-sending an equal value: %v", err)
	}
	if !x.Cancelled {
		t.Error("cancelled not merged")
	}
	checkConflict(t, "Merge", x.Merge(&Tx{MailFrom: &Mailbox{Address: "c@d"}}), "mail_from: is write-once and cannot change")

	// A conflict in one field leaves the earlier fields of the delta unapplied.
	y := &Tx{FinalAttemptReason: ReasonDownstreamTimeout}
	err := y.Merge(&Tx{RemoteHost: &HostPort{"h", 1}, FinalAttemptReason: ReasonUpstreamSuccess})
	checkConflict(t, "Merge", err, "final_attempt_reason: is write-once and cannot change")
	if y.RemoteHost != nil {
		t.Error("failed Merge was applied in part")
	}

	b := &Tx{Body: &Blob{ID: TxBodyBlobID, Length: 3}}
	if err := b.Merge(&Tx{Body: &Blob{ID: TxBodyBlobID, Length: 5, Finalized: true}}); err != nil || !b.Body.Complete() {
		t.Errorf("body did not grow: %v %+v", err, b.Body)
	}
	checkConflict(t, "Merge", b.Merge(&Tx{Body: &Blob{ID: TxBodyBlobID, Length: 6}}), `body: blob "__internal_tx_body" is finalized and cannot change`)

	// Merge never clears: an unset field in a delta means unchanged.
	if err := x.Merge(&Tx{}); err != nil || x.MailFrom == nil || !x.Cancelled {
		t.Errorf("empty delta changed the tx: %v %+v", err, x)
	}
}

func TestCopyIsDeep(t *testing.T) {
	x := fullTx()
	c := x.Copy()
	if !reflect.DeepEqual(c, x) {
		t.Fatal("Copy differs from original")
	}
	c.MailFrom.Esmtp[0].Value = "9"
	c.RcptTo[1].Esmtp[0].Value = "X"
	c.RcptResponse[0].Code = 999
	c.Retry["max_attempts"][0] = '9'
	c.SMTPMeta["new"] = raw(`1`)
	mb := c.Body.(*MessageBuilder)
	mb.Blobs[0].Finalized = false
	mb.Raw.Length = 77
	mb.Spec.TextBody[0].ContentType = "x/y"
	mb.Spec.Headers[0].Value[1] = 'X'
	c.Resolution[0].Port = 1
	c.Options["new"] = 1
	c.EphemeralFilterOutput["new"] = 1
	c.Sender.Tag = "other"
	if !reflect.DeepEqual(x, fullTx()) {
		t.Errorf("changing a copy changed the original: %+v", x)
	}
}

func TestIsEmpty(t *testing.T) {
	if !(&Tx{}).IsEmpty() || !(&Tx{RcptToOffset: 3}).IsEmpty() {
		t.Error("zero tx not empty")
	}
	for _, x := range []*Tx{{Cancelled: true}, {Retry: map[string]json.RawMessage{}}, {RcptTo: []Mailbox{{}}}, {Body: &InlineBody{}}, {SessionURI: "x"}} {
		if x.IsEmpty() {
			t.Errorf("%+v reported empty", x)
		}
	}
}

func TestCopyFrom(t *testing.T) {
	tests := []struct {
		c    Context
		want []string
	}{
		// Section 4.1: what a per-recipient transaction takes from the
		// exploder's downstream transaction, and later updates.
		{ExploderCreate, []string{"remote_host", "local_host", "mail_from", "body", "smtp_meta", "notification", "retry", "cancelled"}},
		{ExploderUpdate, []string{"mail_from", "body", "notification", "retry", "cancelled"}},
		{AddRoute, []string{"remote_host", "local_host", "mail_from", "rcpt_to", "body", "smtp_meta", "cancelled", "filter_output"}},
	}
	for _, tt := range tests {
		src := fullTx()
		dst := &Tx{RestID: "keep", Sender: &Sender{Name: "upstream"}}
		dst.CopyFrom(src, tt.c)
		var got []string
		for _, f := range fields {
			if f.isSet(dst) {
				got = append(got, f.name)
			}
		}
		want := append([]string{"sender"}, tt.want...)
		want = append(want, "rest_id")
		if !sameSet(got, want) {
			t.Errorf("%s copied %v, want %v", tt.c, got, want)
		}
		if dst.Sender.Name != "upstream" {
			t.Errorf("%s overwrote sender", tt.c)
		}
		dst.MailFrom.Esmtp[0].Value = "changed"
		if src.MailFrom.Esmtp[0].Value == "changed" {
			t.Errorf("%s shares values with the source", tt.c)
		}
	}
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}
