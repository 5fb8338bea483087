package tx

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

func parseBody(t *testing.T, doc string, c Context) (Body, error) {
	t.Helper()
	x, err := Parse([]byte(`{"body": `+doc+`}`), c)
	if err != nil {
		return nil, err
	}
	return x.Body, nil
}

func TestBodyForms(t *testing.T) {
	mb := `{"message_builder": {"headers": [["subject", "hi"]], "text_body": [{"content_type": "text/plain", "content": {"inline": "hello"}}]}}`
	mbWant := &MessageBuilder{Spec: MessageSpec{
		Headers:  []Header{{"subject", json.RawMessage(`"hi"`)}},
		TextBody: []Part{{ContentType: "text/plain", Content: Content{ContentInline, "hello"}}},
	}}
	tests := []struct {
		c    Context
		doc  string
		want Body
		err  string
	}{
		{RestCreate, `{"inline": "Subject: x\r\n\r\nbody"}`, &InlineBody{"Subject: x\r\n\r\nbody"}, ""},
		{RestCreate, `{"reuse_uri": "http://other:8000/transactions/Q1/body"}`, &ReuseBody{"http://other:8000/transactions/Q1/body"}, ""},
		{RestUpdate, `{"reuse_uri": "/transactions/Q1/blob/inline0"}`, &ReuseBody{"/transactions/Q1/blob/inline0"}, ""},
		{RestCreate, mb, mbWant, ""},
		{RestRead, `{"blob_status": {"uri": "http://r/transactions/T/body"}}`, &Blob{ID: TxBodyBlobID, URI: "http://r/transactions/T/body"}, ""},
		{RestRead, `{"message_builder": {"blob_status": {"inline0": {"uri": "u0", "finalized": true}, "x": {"uri": "u1", "finalized": false}}}}`,
			&MessageBuilder{Blobs: []Blob{{ID: "inline0", URI: "u0", Finalized: true}, {ID: "x", URI: "u1"}}}, ""},
		{RestRead, `{"blob_status": {"uri": "b"}, "message_builder": {"uri": "p"}}`,
			&MessageBuilder{URI: "p", Raw: &Blob{ID: TxBodyBlobID, URI: "b"}}, ""},
		{ExploderCreate, `{"blob_status": {"uri": "b", "finalized": true}}`, &Blob{ID: TxBodyBlobID, URI: "b", Finalized: true}, ""},
		{ExploderUpdate, `{"inline": "x"}`, &InlineBody{"x"}, ""},

		{RestCreate, `{"blob_status": {"uri": "b"}}`, nil, "body.blob_status: not allowed in REST_CREATE"},
		{RestRead, `{"inline": "x"}`, nil, "body.inline: not allowed in REST_READ"},
		{RestRead, mb, nil, "body.message_builder.headers: not allowed in REST_READ"},
		{RestUpdate, `{"message_builder": {"uri": "p"}}`, nil, "body.message_builder.uri: not allowed in REST_UPDATE"},
		{RestCreate, `{}`, nil, "body: needs exactly one of message_builder, inline, reuse_uri"},
		{RestCreate, `{"inline": "x", "reuse_uri": "/transactions/a/body"}`, nil, "body: needs exactly one of message_builder, inline, reuse_uri"},
		{RestRead, `{}`, nil, "body: needs exactly one of message_builder, blob_status (blob_status may accompany message_builder)"},
		{AddRoute, `{"inline": "x", "blob_status": {}}`, nil, "body: needs exactly one of message_builder, inline, reuse_uri, blob_status (blob_status may accompany message_builder)"},
		{RestCreate, `{"inline": 5}`, nil, "body.inline: must be a string"},
		{RestCreate, `{"bogus": 5}`, nil, "body.bogus: unknown field"},
		{RestCreate, `{"reuse_uri": "/blob/x"}`, nil, "body.reuse_uri: must be a URI whose path is /transactions/{tx}/body or /transactions/{tx}/blob/{blob}"},
		{RestCreate, `{"reuse_uri": "/transactions/t/blob/__internal_tx_body"}`, nil, "body.reuse_uri: blob ids starting with __internal are reserved"},
		{RestRead, `{"blob_status": {"uri": "b", "length": 3}}`, nil, "body.blob_status.length: unknown field"},
		{RestRead, `{"blob_status": {"finalized": 1}}`, nil, "body.blob_status.finalized: must be true or false"},
		{RestRead, `{"message_builder": {"blob_status": {"": {}}}}`, nil, "body.message_builder.blob_status.: blob id must be non-empty text"},
	}
	for _, tt := range tests {
		got, err := parseBody(t, tt.doc, tt.c)
		if errText(err) != tt.err {
			t.Errorf("%s %s: err = %v, want %q", tt.c, tt.doc, err, tt.err)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s %s:\n got %#v\nwant %#v", tt.c, tt.doc, got, tt.want)
		}
	}
}

func TestBodyOutputForms(t *testing.T) {
	blob := &Blob{ID: TxBodyBlobID, URI: "http://r/transactions/T/body", Length: 10}
	mb := &MessageBuilder{
		Spec:  MessageSpec{TextBody: []Part{{ContentType: "text/plain", Content: Content{ContentCreate, "a"}}}},
		Blobs: []Blob{{ID: "a", URI: "http://r/transactions/T/blob/a", Finalized: true}},
	}
	tests := []struct {
		body Body
		c    Context
		want string // "" = body left out
	}{
		{blob, RestRead, `{"blob_status":{"uri":"http://r/transactions/T/body"}}`},
		{blob, RestCreate, ``},
		{blob, ExploderUpdate, `{"blob_status":{"uri":"http://r/transactions/T/body"}}`},
		{&InlineBody{"<x>"}, RestRead, ``},
		{&InlineBody{"<x>"}, RestCreate, `{"inline":"<x>"}`},
		{&ReuseBody{"/transactions/a/body"}, RestUpdate, `{"reuse_uri":"/transactions/a/body"}`},
		{mb, RestRead, `{"message_builder":{"blob_status":{"a":{"uri":"http://r/transactions/T/blob/a","finalized":true}}}}`},
		{mb, RestCreate, `{"message_builder":{"text_body":[{"content_type":"text/plain","content":{"create_id":"a"}}]}}`},
		{&MessageBuilder{}, RestRead, `{"message_builder":{}}`},
	}
	for _, tt := range tests {
		b, err := (&Tx{Body: tt.body}).MarshalFor(tt.c)
		if err != nil {
			t.Fatal(err)
		}
		want := `{}`
		if tt.want != "" {
			want = `{"body":` + tt.want + `}`
		}
		if string(b) != want {
			t.Errorf("%T in %s: got %s, want %s", tt.body, tt.c, b, want)
		}
	}
}

func TestMessageBuilderSpecErrors(t *testing.T) {
	const p = "body.message_builder."
	part := func(s string) string { return `{"message_builder": {"text_body": [` + s + `]}}` }
	tests := []struct{ doc, err string }{
		{part(`{"content_type": "text/plain", "content": {}}`), p + "text_body[0].content: needs exactly one of inline, create_id, reuse_uri"},
		{part(`{"content_type": "text/plain", "content": {"inline": "a", "create_id": "b"}}`), p + "text_body[0].content: needs exactly one of inline, create_id, reuse_uri"},
		{part(`{"content_type": "text/plain", "content": {"data": "a"}}`), p + "text_body[0].content.data: unknown field"},
		{part(`{"content_type": "text/plain"}`), p + "text_body[0].content: is required"},
		{part(`{"content": {"inline": "a"}}`), p + "text_body[0].content_type: is required"},
		{part(`{"content_type": "text plain", "content": {"inline": "a"}}`), p + "text_body[0].content_type: must be a MIME type such as text/plain"},
		{part(`{"content_type": "text/plain", "content": {"inline": "a"}, "charset": "x"}`), p + "text_body[0].charset: unknown field"},
		{part(`{"content_type": "text/plain", "content": {"create_id": "__internal_x"}}`), p + "text_body[0].content.create_id: blob ids starting with __internal are reserved"},
		{part(`{"content_type": "text/plain", "content": {"create_id": ""}}`), p + "text_body[0].content.create_id: blob id must not be empty"},
		{part(`{"content_type": "text/plain", "content": {"create_id": "a/b"}}`), p + "text_body[0].content.create_id: blob id must not contain / or control characters"},
		{part(`{"content_type": "text/plain", "content": {"reuse_uri": "/transactions/T/body"}}`), p + "text_body[0].content.reuse_uri: must name a blob (/transactions/{tx}/blob/{blob}); a transaction body cannot be reused as a part"},
		{part(`{"content_type": "text/plain", "content": {"inline": "a"}}, {"content_type": "text/html", "content": {"create_id": "inline0"}}`), p + `text_body[1].content: duplicate blob id "inline0"`},
		{`{"message_builder": {"text_body": [{"content_type": "text/plain", "content": {"reuse_uri": "/transactions/A/blob/x"}}], "file_attachments": [{"content_type": "image/png", "content": {"reuse_uri": "/transactions/B/blob/x"}}]}}`, p + `file_attachments[0].content: duplicate blob id "x"`},
		{part(`{"content_type": "text/plain", "content": {"inline": "a"}, "filename": "a\nb"}`), p + "text_body[0].filename: must not contain control characters"},
		{`{"message_builder": {"headers": [["subject"]]}}`, p + "headers[0]: must be a [name, value] pair"},
		{`{"message_builder": {"headers": [["sub ject", "x"]]}}`, p + "headers[0][0]: must be a header field name (printable ASCII without spaces or colons)"},
		{`{"message_builder": {"headers": [[1, "x"]]}}`, p + "headers[0][0]: must be a string"},
		{`{"message_builder": {"headers": [["subject", null]]}}`, p + "headers[0][1]: must not be null"},
		{`{"message_builder": {"headers": {}}}`, p + "headers: must be a list"},
		{`{"message_builder": {"text": []}}`, p + "text: unknown field"},
		{`{"message_builder": []}`, "body.message_builder: must be an object"},
	}
	for _, tt := range tests {
		if _, err := parseBody(t, tt.doc, RestCreate); errText(err) != tt.err {
			t.Errorf("%s\n err = %v\nwant %s", tt.doc, err, tt.err)
		}
	}
}

func TestParseMessageSpecReferenceFile(t *testing.T) {
	data, err := os.ReadFile("testdata/message_builder.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseMessageSpec(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Headers) != 7 || s.Headers[3].Name != "date" || string(s.Headers[3].Value) != `{"unix_secs":1709750551,"tz_offset":-28800}` {
		t.Errorf("headers = %+v", s.Headers)
	}
	if len(s.TextBody) != 2 || s.RelatedAttachments[0].ContentID != "xyz123" || s.FileAttachments[0].Filename != "hipstercat.png" {
		t.Errorf("parts = %+v", s)
	}
	out, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseMessageSpec(out)
	if err != nil || !reflect.DeepEqual(again, s) {
		t.Errorf("round trip: %v\n%+v\n%+v", err, again, s)
	}
	if _, err := ParseMessageSpec([]byte(`{"text_body": [{}]}`)); errText(err) != "text_body[0].content_type: is required" {
		t.Errorf("err = %v", err)
	}
}

func TestNormalize(t *testing.T) {
	s := MessageSpec{
		Headers: []Header{{"subject", json.RawMessage(`"x"`)}},
		TextBody: []Part{
			{ContentType: "text/html", Content: Content{ContentInline, "<b>hi</b>"}},
			{ContentType: "text/plain", Content: Content{ContentCreate, "plain"}},
		},
		RelatedAttachments: []Part{{ContentType: "image/png", ContentID: "img", Content: Content{ContentReuse, "http://r/transactions/T0/blob/logo"}}},
		FileAttachments:    []Part{{ContentType: "text/csv", Filename: "a.csv", Content: Content{ContentInline, "a,b"}}},
	}
	orig := s.clone()
	norm, blobs, err := s.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	wantBlobs := []PartBlob{
		{"inline0", Content{ContentInline, "<b>hi</b>"}},
		{"plain", Content{ContentCreate, "plain"}},
		{"logo", Content{ContentReuse, "http://r/transactions/T0/blob/logo"}},
		{"inline3", Content{ContentInline, "a,b"}},
	}
	if !reflect.DeepEqual(blobs, wantBlobs) {
		t.Errorf("blobs = %+v", blobs)
	}
	var ids []string
	for ref := range norm.parts() {
		if ref.part.Content.Kind != ContentCreate {
			t.Errorf("%s not normalized: %+v", ref.path, ref.part.Content)
		}
		ids = append(ids, ref.part.Content.Value)
	}
	if !reflect.DeepEqual(ids, []string{"inline0", "plain", "logo", "inline3"}) {
		t.Errorf("ids = %v", ids)
	}
	if norm.FileAttachments[0].Filename != "a.csv" || norm.RelatedAttachments[0].ContentID != "img" {
		t.Errorf("part metadata lost: %+v", norm)
	}
	if !reflect.DeepEqual(s, orig) {
		t.Errorf("Normalize modified its receiver")
	}
	twice, _, err := norm.Normalize()
	if err != nil || !reflect.DeepEqual(twice, norm) {
		t.Errorf("Normalize is not idempotent: %v %+v", err, twice)
	}

	bad := MessageSpec{TextBody: []Part{{ContentType: "text/plain", Content: Content{ContentCreate, "inline1"}}, {ContentType: "text/plain", Content: Content{ContentInline, "x"}}}}
	if _, _, err := bad.Normalize(); errText(err) != `text_body[1].content: duplicate blob id "inline1"` {
		t.Errorf("err = %v", err)
	}
}

func TestReuseURI(t *testing.T) {
	tests := []struct {
		uri, tx, blob string
		ok            bool
	}{
		{"http://router:8000/transactions/Ab3x/body", "Ab3x", TxBodyBlobID, true},
		{"/transactions/Ab3x/body", "Ab3x", TxBodyBlobID, true},
		{"https://svc/transactions/Q1/blob/inline0", "Q1", "inline0", true},
		{"/transactions/Q1/blob/a%20b", "Q1", "a b", true},
		{"/transactions/Q1/blob/a%2Fb", "", "", false},
		{"/transactions/Q1/blob/__internal_tx_body", "", "", false},
		{"/transactions/Q1/blob/__internalx", "", "", false},
		{"/transactions//body", "", "", false},
		{"/transactions/Q1/body/", "", "", false},
		{"/transactions/Q1", "", "", false},
		{"/transactions/Q1/blob/", "", "", false},
		{"/prefix/transactions/Q1/body", "", "", false},
		{"transactions/Q1/body", "", "", false},
		{"/transactions/Q1/blobs/x", "", "", false},
		{"http://[::1", "", "", false},
	}
	for _, tt := range tests {
		tx, blob, err := ParseReuseURI(tt.uri)
		if (err == nil) != tt.ok || tx != tt.tx || blob != tt.blob {
			t.Errorf("ParseReuseURI(%q) = %q, %q, %v", tt.uri, tx, blob, err)
		}
		if tt.ok {
			if tx2, blob2, err := ParseReuseURI(BlobPath(tx, blob)); err != nil || tx2 != tx || blob2 != blob {
				t.Errorf("BlobPath(%q, %q) = %q does not parse back", tx, blob, BlobPath(tx, blob))
			}
		}
	}
}

func TestBodyComplete(t *testing.T) {
	spec := MessageSpec{TextBody: []Part{{ContentType: "text/plain", Content: Content{ContentCreate, "a"}}, {ContentType: "text/html", Content: Content{ContentInline, "x"}}}}
	tests := []struct {
		body Body
		want bool
	}{
		{&InlineBody{}, true},
		{&ReuseBody{"/transactions/a/body"}, true},
		{&Blob{Length: 5}, false},
		{&Blob{Length: 5, Finalized: true}, true},
		{&MessageBuilder{Spec: spec}, false},
		{&MessageBuilder{Spec: spec, Blobs: []Blob{{ID: "a"}}}, false},
		{&MessageBuilder{Spec: spec, Blobs: []Blob{{ID: "a", Finalized: true}}}, true},
		{&MessageBuilder{Spec: spec, Blobs: []Blob{{ID: "a", Finalized: true}}, Raw: &Blob{}}, false},
		{&MessageBuilder{Blobs: []Blob{{ID: "0", Finalized: true}, {ID: "1"}}}, false},
	}
	for i, tt := range tests {
		if got := tt.body.Complete(); got != tt.want {
			t.Errorf("%d: %T.Complete() = %v", i, tt.body, got)
		}
	}
}
