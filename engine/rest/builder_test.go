package rest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/rest/resttest"
	"github.com/koukan/koukan/engine/tx"
)

// parsedMessage is the parser's output for a multipart message (spec
// section 8.3): each create_id appears in the tree and in a flat list.
const parsedMessage = `{
 "parts": {"headers": [["content-type", ["multipart/mixed", {}]]], "content_type": "multipart/mixed", "parts": [
   {"content_type": "text/plain", "content": {"inline": "hello"}},
   {"content_type": "image/png", "content": {"create_id": "1"}},
   {"content_type": "image/png", "content": {"create_id": "0"}}]},
 "text_body": [{"content_type": "text/plain", "content": {"inline": "hello"}}],
 "file_attachments": [{"content_type": "image/png", "filename": "a.png", "content": {"create_id": "1"}},
                      {"content_type": "image/png", "filename": "b.png", "content": {"create_id": "0"}}]}`

// receive_parsing: post the parsed message, PUT its parts, then the raw one.
func TestPostMessageBuilder(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, resttest.Options{Parsing: true})
	ctx := testCtx(t, 5*time.Second)
	up, err := newClient(t, Options{}).Create(ctx, rcv.URL()+"/senders/x/transactions", envelope())
	if err != nil {
		t.Fatal(err)
	}
	mb, ok := up.State().Body.(*tx.MessageBuilder)
	if !ok || mb.URI == "" || mb.Raw == nil {
		t.Fatalf("body %#v", up.State().Body)
	}
	blobs, err := up.PostMessageBuilder(ctx, mb.URI, json.RawMessage(parsedMessage))
	if err != nil {
		t.Fatal(err)
	}
	if len(blobs) != 2 || blobs[0].ID != "1" || blobs[1].ID != "0" {
		t.Fatalf("blobs %+v", blobs)
	}
	for _, b := range blobs {
		part := []byte("png " + b.ID)
		if err := up.PutBlob(ctx, b.URI, bytes.NewReader(part), int64(len(part))); err != nil {
			t.Fatal(err)
		}
	}
	if err := up.PutBlob(ctx, mb.Raw.URI, strings.NewReader("raw"), 3); err != nil {
		t.Fatal(err)
	}
	if st, err := up.Wait(ctx, dataDone); err != nil || st.DataResponse.Code != 250 {
		t.Fatalf("%+v %v", st, err)
	}
	r := rcv.Transactions()[0]
	if string(r.Parsed) != parsedMessage || string(r.Parts["0"]) != "png 0" || string(r.Parts["1"]) != "png 1" || string(r.Body) != "raw" {
		t.Errorf("received parsed %s parts %q body %q", r.Parsed, r.Parts, r.Body)
	}
}

// The answer must name a URI for every create_id.
func TestPostMessageBuilderAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, status, body string
		want               Kind
	}{
		{"missing id", "200", `{"body":{"message_builder":{"blob_status":{"0":{"uri":"/b/0"}}}}}`, KindProtocol},
		{"no message_builder", "200", `{"body":{"blob_status":{"uri":"/b"}}}`, KindProtocol},
		{"not 200", "400", `{"error":{"code":"invalid_json","message":"?"}}`, KindStatus},
		{"ok", "200", `{"body":{"message_builder":{"blob_status":{"0":{"uri":"/b/0"},"1":{"uri":"http://elsewhere/b/1"}}}}}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/senders/x/transactions" {
					w.Header().Set("ETag", "1")
					w.Header().Set("Location", "/transactions/t")
					w.WriteHeader(http.StatusCreated)
					_, _ = w.Write([]byte(`{"mail_from":{},"rcpt_to":[{}]}`))
					return
				}
				if tc.status != "200" {
					w.WriteHeader(http.StatusBadRequest)
				}
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			ctx := testCtx(t, 5*time.Second)
			up, err := newClient(t, Options{}).Create(ctx, srv.URL+"/senders/x/transactions", envelope())
			if err != nil {
				t.Fatal(err)
			}
			blobs, err := up.PostMessageBuilder(ctx, "/transactions/t/message_builder", json.RawMessage(parsedMessage))
			if tc.want != 0 {
				wantKind(t, err, tc.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			uris := []string{blobs[0].URI, blobs[1].URI}
			if !slices.Equal(uris, []string{"http://elsewhere/b/1", srv.URL + "/b/0"}) {
				t.Errorf("URIs %q", uris)
			}
		})
	}
}

func TestCreateIDs(t *testing.T) {
	ids, err := createIDs(json.RawMessage(parsedMessage))
	if err != nil || !slices.Equal(ids, []string{"1", "0"}) {
		t.Errorf("createIDs = %q, %v", ids, err)
	}
	// A value that is not under a "create_id" key does not count, even if
	// it spells one.
	ids, err = createIDs(json.RawMessage(`{"a": ["create_id", "x"], "b": {"create_id": "y", "c": "create_id"}}`))
	if err != nil || !slices.Equal(ids, []string{"y"}) {
		t.Errorf("createIDs = %q, %v", ids, err)
	}
	for _, bad := range []string{`[]`, `{"a":`, `"x"`} {
		if _, err := createIDs(json.RawMessage(bad)); err == nil {
			t.Errorf("createIDs(%s) accepted", bad)
		}
	}
}
