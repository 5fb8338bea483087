package router

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/store"
)

const (
	envelope   = `"mail_from":{"m":"alice@example.com"},"rcpt_to":[{"m":"bob@example.com"}]`
	message    = "Subject: hi\r\n\r\nhello\r\n"
	inlineBody = `{` + envelope + `,"body":{"inline":"Subject: hi\r\n\r\nhello\r\n"}}`
)

func TestCreateInlineBody(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := startReplica(t, b)
		res := r.post("submission", inlineBody)
		loc := res.header.Get("Location")
		// Created with its first attempt started (version 1, then 2), in one commit.
		if !strings.HasPrefix(loc, r.url+"/transactions/") || res.header.Get("ETag") != "2" {
			t.Fatalf("Location %q ETag %q", loc, res.header.Get("ETag"))
		}
		want := fmt.Sprintf(`{"sender":{},"mail_from":{},"rcpt_to":[{}],"body":{"blob_status":{"uri":"%s/body","finalized":true}},"retry":{}}`, loc)
		if string(res.body) != strings.TrimSuffix(want, "}")+`,"attempt_count":1}` {
			t.Errorf("body\n got %s\nwant %s", res.body, want)
		}
		etag := r.settled(loc)
		get := do(t, "GET", loc, nil)
		if get.status != 200 || string(get.body) != strings.TrimSuffix(want, "}")+`,"attempt_count":1}` || get.header.Get("ETag") != etag {
			t.Errorf("GET: %d %s %v", get.status, get.body, get.header)
		}
		// The tag picks the chain; oneshot has no retry.
		res = r.post("submission", `{`+envelope+`,"sender":{"name":"ignored","tag":"oneshot"}}`)
		if strings.Contains(string(res.body), "retry") {
			t.Errorf("oneshot tag got retry: %s", res.body)
		}
		rec, err := r.store.Get(t.Context(), strings.TrimPrefix(res.header.Get("Location"), r.url+"/transactions/"))
		if err != nil || !strings.Contains(string(rec.JSON), `"name":"submission","tag":"oneshot"`) {
			t.Errorf("stored sender: %s %v", rec.JSON, err)
		}
	})
}

func TestCreateErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := startReplica(t, b)
		for _, tc := range []struct {
			name, sender, body, contentType string
			status                          int
			code, field                     string
		}{
			{"unknown sender", "nobody", inlineBody, jsonType, 404, "unknown_sender", ""},
			{"unknown tag", "submission", `{` + envelope + `,"sender":{"tag":"bulk"}}`, jsonType, 404, "unknown_tag", ""},
			{"not json", "submission", `{"mail_from":`, jsonType, 400, "invalid_json", ""},
			{"bad field", "submission", `{"mail_from":{"m":7},"rcpt_to":[{"m":"b@x"}]}`, jsonType, 400, "invalid_field", "mail_from.m"},
			{"null", "submission", `{"mail_from":null,"rcpt_to":[{"m":"b@x"}]}`, jsonType, 400, "invalid_field", "mail_from"},
			{"retry from client", "submission", `{` + envelope + `,"retry":{}}`, jsonType, 400, "invalid_field", "retry"},
			{"two recipients", "submission", `{"mail_from":{"m":"a@x"},"rcpt_to":[{"m":"b@x"},{"m":"c@x"}]}`, jsonType, 400, "invalid_field", "rcpt_to"},
			{"no recipient", "submission", `{"mail_from":{"m":"a@x"}}`, jsonType, 400, "invalid_field", "rcpt_to"},
			{"no sender address", "submission", `{"rcpt_to":[{"m":"b@x"}]}`, jsonType, 400, "invalid_field", "mail_from"},
			{"message without text", "submission", `{` + envelope + `,"body":{"message_builder":{"headers":[["subject","x"]]}}}`, jsonType, 400, "invalid_field", "body.message_builder.text_body"},
			{"form", "submission", inlineBody, "application/x-www-form-urlencoded", 415, "unsupported_media_type", ""},
			{"too large", "submission", `{` + envelope + `,"body":{"inline":"` + strings.Repeat("x", 5000) + `"}}`, jsonType, 413, "too_large", ""},
			{"reuse unknown", "submission", `{` + envelope + `,"body":{"reuse_uri":"/transactions/nope/body"}}`, jsonType, 400, "invalid_reuse", ""},
			{"reuse bad uri", "submission", `{` + envelope + `,"body":{"reuse_uri":"/elsewhere"}}`, jsonType, 400, "invalid_field", "body.reuse_uri"},
		} {
			res := do(t, "POST", r.url+"/senders/"+tc.sender+"/transactions", tc.body, "Content-Type", tc.contentType)
			if res.status != tc.status || res.errorCode(t) != tc.code {
				t.Errorf("%s: %d %s, want %d %s", tc.name, res.status, res.body, tc.status, tc.code)
				continue
			}
			if f, _ := res.json(t)["error"].(map[string]any)["field"].(string); tc.field != "" && f != tc.field {
				t.Errorf("%s: field %q, want %q", tc.name, f, tc.field)
			}
		}
		// A missing Content-Type is taken as JSON, as the reference did.
		if res := do(t, "POST", r.url+"/senders/submission/transactions", inlineBody); res.status != 201 {
			t.Errorf("POST without content type: %d %s", res.status, res.body)
		}
		if res := do(t, "DELETE", r.url+"/transactions/x", nil); res.status != 405 || res.header.Get("Allow") != "GET, PATCH" || res.errorCode(t) != "method_not_allowed" {
			t.Errorf("wrong method: %d %v %s", res.status, res.header, res.body)
		}
		if res := do(t, "GET", r.url+"/transactions", nil); res.status != 404 || res.errorCode(t) != "unknown_route" {
			t.Errorf("unknown route: %d %s", res.status, res.body)
		}
	})
}

func TestUploadBody(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := startReplica(t, b)
		res := r.post("submission", `{`+envelope+`}`)
		loc := res.header.Get("Location")
		if want := `"body":{"blob_status":{"uri":"` + loc + `/body"}}`; !strings.Contains(string(res.body), want) {
			t.Fatalf("created %s, want %s", res.body, want)
		}
		// Chunked transfer-encoding, whole body, several store chunks (chunk_size 100).
		big := strings.Repeat("0123456789", 50)
		put := do(t, "PUT", loc+"/body", io.MultiReader(strings.NewReader(big)))
		if put.status != 200 || put.header.Get("Content-Range") != "bytes 0-499/500" || string(put.body) != "{}" {
			t.Fatalf("PUT: %d %s %v", put.status, put.body, put.header)
		}
		get := do(t, "GET", loc, nil)
		if !strings.Contains(string(get.body), `"finalized":true`) || get.header.Get("ETag") == "1" {
			t.Errorf("after PUT: %s etag %s", get.body, get.header.Get("ETag"))
		}
		id := strings.TrimPrefix(loc, r.url+"/transactions/")
		body, _, err := r.store.OpenBlob(t.Context(), id, "__internal_tx_body")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(body)
		if string(got) != big {
			t.Errorf("stored %d bytes, want %d", len(got), len(big))
		}
		// Resending after a broken upload is fine; a different length is not.
		if res := do(t, "PUT", loc+"/body", big); res.status != 200 {
			t.Errorf("resend: %d %s", res.status, res.body)
		}
		if res := do(t, "PUT", loc+"/body", big+"x"); res.status != 416 || res.header.Get("Content-Range") != "bytes 0-499/500" {
			t.Errorf("longer resend: %d %s %v", res.status, res.body, res.header)
		}
		if res := do(t, "PUT", loc+"/body", strings.Repeat("x", 5000)); res.status != 413 {
			t.Errorf("oversize PUT: %d %s", res.status, res.body)
		}
		if res := do(t, "PUT", r.url+"/transactions/nope/body", "x"); res.status != 404 || res.errorCode(t) != "unknown_transaction" {
			t.Errorf("PUT to unknown tx: %d %s", res.status, res.body)
		}
	})
}

func TestUploadRanges(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := startReplica(t, b)
		loc := r.post("submission", `{`+envelope+`}`).header.Get("Location")
		put := func(body string, headers ...string) resp { return do(t, "PUT", loc+"/body", body, headers...) }
		for i, step := range []struct {
			body, rng   string
			status      int
			wantRange   string
			wantProblem string
		}{
			{"0123456", "bytes 0-6/*", 200, "bytes 0-6/*", ""},
			{"abcde", "bytes 10-14/*", 416, "bytes 0-6/*", "invalid_range"},
			{"abcde", "bytes 7-11/5", 400, "", "invalid_header"},
			{"abc", "bytes 7-14/15", 400, "", "invalid_header"},
			{"56789012", "bytes 5-12/15", 200, "bytes 0-12/15", ""},
			{"34", "bytes 13-14/16", 416, "bytes 0-12/15", "invalid_range"},
			{"34", "bytes 13-14/15", 200, "bytes 0-14/15", ""},
			{"34", "bytes 13-14/15", 200, "bytes 0-14/15", ""},
		} {
			res := put(step.body, "Content-Range", step.rng)
			if res.status != step.status || res.header.Get("Content-Range") != step.wantRange {
				t.Fatalf("step %d (%s): %d %s range %q", i, step.rng, res.status, res.body, res.header.Get("Content-Range"))
			}
			if step.wantProblem != "" && res.errorCode(t) != step.wantProblem {
				t.Errorf("step %d: code %s", i, res.errorCode(t))
			}
		}
		// A range needs a length to check it against.
		if res := do(t, "PUT", loc+"/body", io.MultiReader(strings.NewReader("x")), "Content-Range", "bytes 0-0/*"); res.status != 400 {
			t.Errorf("chunked range: %d %s", res.status, res.body)
		}
		for _, bad := range []string{"bytes=0-1/2", "bytes 3-1/*", "items 0-1/2"} {
			if res := put("xy", "Content-Range", bad); res.status != 400 || res.errorCode(t) != "invalid_header" {
				t.Errorf("content-range %q: %d %s", bad, res.status, res.body)
			}
		}

		// x-finalize-blob-length closes a blob uploaded with open ranges.
		loc = r.post("submission", `{`+envelope+`}`).header.Get("Location")
		if res := put("abcd", "Content-Range", "bytes 0-3/*"); res.status != 200 {
			t.Fatalf("open range: %d %s", res.status, res.body)
		}
		for _, tc := range []struct {
			n, body string
			status  int
		}{{"3", "", 416}, {"5", "", 416}, {"four", "", 400}, {"4", "x", 400}, {"4", "", 200}} {
			res := put(tc.body, "X-Finalize-Blob-Length", tc.n)
			if res.status != tc.status {
				t.Errorf("x-finalize-blob-length %s body %q: %d %s", tc.n, tc.body, res.status, res.body)
			}
		}
		if get := do(t, "GET", loc, nil); !strings.Contains(string(get.body), `"finalized":true`) {
			t.Errorf("not finalized: %s", get.body)
		}
	})
}

func TestMessageBuilderAndReuse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := startReplica(t, b)
		mb := `{` + envelope + `,"body":{"message_builder":{"headers":[["subject","hello"]],
			"text_body":[{"content_type":"text/plain","content":{"create_id":"plain"}},
			             {"content_type":"text/html","content":{"inline":"<b>hi</b>"}}]}}}`
		res := r.post("submission", mb)
		loc := res.header.Get("Location")
		want := fmt.Sprintf(`{"message_builder":{"blob_status":{"inline1":{"uri":"%[1]s/blob/inline1","finalized":true},"plain":{"uri":"%[1]s/blob/plain"}}}}`, loc)
		if got := string(res.json(t)["body"].(map[string]any)["message_builder"].(map[string]any)["blob_status"].(map[string]any)["plain"].(map[string]any)["uri"].(string)); got != loc+"/blob/plain" {
			t.Errorf("plain blob uri %q", got)
		}
		if !strings.Contains(string(res.body), want[1:len(want)-1]) {
			t.Errorf("created %s\nwant body %s", res.body, want)
		}
		if res := do(t, "PUT", loc+"/blob/nope", "x"); res.status != 404 || res.errorCode(t) != "unknown_blob" {
			t.Errorf("unknown blob: %d %s", res.status, res.body)
		}
		if res := do(t, "PUT", loc+"/blob/__internal_tx_body", "x"); res.status != 404 {
			t.Errorf("internal blob id: %d %s", res.status, res.body)
		}
		if res := do(t, "PUT", loc+"/body", "x"); res.status != 409 {
			t.Errorf("raw body PUT on a message_builder tx: %d %s", res.status, res.body)
		}
		// Reusing a part that is still being uploaded fails; once finalized it works.
		reuse := `{` + envelope + `,"body":{"message_builder":{"text_body":[{"content_type":"text/plain","content":{"reuse_uri":"` + loc + `/blob/plain"}}]}}}`
		if res := do(t, "POST", r.url+"/senders/submission/transactions", reuse, "Content-Type", jsonType); res.status != 400 || res.errorCode(t) != "invalid_reuse" {
			t.Errorf("reuse of an unfinalized part: %d %s", res.status, res.body)
		}
		if res := do(t, "PUT", loc+"/blob/plain", "hello"); res.status != 200 {
			t.Fatalf("PUT part: %d %s", res.status, res.body)
		}
		second := r.post("submission", reuse)
		if !strings.Contains(string(second.body), `"plain":{"uri":"`+second.header.Get("Location")+`/blob/plain","finalized":true}`) {
			t.Errorf("reused part: %s", second.body)
		}
		// A whole body reused by URI is finalized at once, bytes shared not copied.
		first := r.post("submission", inlineBody).header.Get("Location")
		third := r.post("submission", `{`+envelope+`,"body":{"reuse_uri":"`+first+`/body"}}`)
		if !strings.Contains(string(third.body), `"finalized":true`) {
			t.Errorf("reused body: %s", third.body)
		}
	})
}

func TestPatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := startReplica(t, b)
		sub := r.post("submission", inlineBody).header.Get("Location")
		v := r.settled(sub)
		patch := func(loc, body string, headers ...string) resp { return do(t, "PATCH", loc, body, headers...) }
		if res := patch(sub, `{"rcpt_to":[{"m":"c@x"}],"rcpt_to_list_offset":1}`, "Content-Type", jsonType); res.status != 400 || res.errorCode(t) != "if_match_required" {
			t.Errorf("without If-Match: %d %s", res.status, res.body)
		}
		if res := patch(sub, `{"rcpt_to":[{"m":"c@x"}],"rcpt_to_list_offset":1}`, "Content-Type", jsonType, "If-Match", v); res.status != 400 || res.errorCode(t) != "not_incremental" {
			t.Errorf("JSON on a one-recipient sender: %d %s", res.status, res.body)
		}
		// A heartbeat moves the version on, also on one-recipient senders.
		res := patch(sub, "", "If-Match", `"`+v+`"`)
		if res.status != 200 || res.header.Get("ETag") == v {
			t.Errorf("heartbeat: %d %s %v", res.status, res.body, res.header)
		}
		if res := patch(sub, "", "If-Match", v); res.status != 412 || res.errorCode(t) != "version_conflict" {
			t.Errorf("stale If-Match: %d %s", res.status, res.body)
		}
		if res := patch(sub, "junk", "If-Match", res.header.Get("ETag")); res.status != 415 {
			t.Errorf("non-JSON body: %d %s", res.status, res.body)
		}
		if res := patch(r.url+"/transactions/nope", "", "If-Match", "1"); res.status != 404 {
			t.Errorf("unknown tx: %d %s", res.status, res.body)
		}

		// The gateway's incremental dialect on a sender whose chain ends in the exploder.
		res = r.post("ingress", `{"mail_from":{"m":"alice@example.com","e":[{"k":"SIZE","p":"100"}]},"remote_host":["203.0.113.9",41000],"smtp_meta":{"ehlo_host":"mx.a.com"}}`)
		in := res.header.Get("Location")
		if want := `"body":{"blob_status":{"uri":"` + in + `/body"}}`; !strings.Contains(string(res.body), want) {
			t.Errorf("incremental create: %s", res.body)
		}
		etag := r.settled(in)
		step := func(body string, status int) resp {
			t.Helper()
			res := patch(in, body, "Content-Type", jsonType, "If-Match", etag)
			if res.status != status {
				t.Fatalf("PATCH %s: %d %s, want %d", body, res.status, res.body, status)
			}
			if status == 200 {
				etag = res.header.Get("ETag")
			}
			return res
		}
		step(`{"rcpt_to":[{"m":"b1@example.com"}],"rcpt_to_list_offset":0}`, 200)
		if res := step(`{"rcpt_to":[{"m":"b2@example.com"}],"rcpt_to_list_offset":0}`, 409); res.errorCode(t) != "conflict" {
			t.Errorf("offset mismatch: %s", res.body)
		}
		res = step(`{"rcpt_to":[{"m":"b2@example.com"}],"rcpt_to_list_offset":1}`, 200)
		if !strings.Contains(string(res.body), `"rcpt_to":[{},{}]`) {
			t.Errorf("two recipients: %s", res.body)
		}
		step(`{"mail_from":{"m":"mallory@example.com"}}`, 409)
		step(`{"retry":{}}`, 400)
		// The body arrives by PUT: the first PUT creates it.
		if res := do(t, "PUT", in+"/body", message); res.status != 200 {
			t.Fatalf("PUT body: %d %s", res.status, res.body)
		}
		etag = do(t, "GET", in, nil).header.Get("ETag")
		step(`{"body":{"inline":"x"}}`, 409)

		// A body starts at offset 0.
		in3 := r.post("ingress", `{"mail_from":{"m":"a@x"}}`).header.Get("Location")
		v3 := r.settled(in3)
		if res := do(t, "PUT", in3+"/body", "xyz", "Content-Range", "bytes 5-7/*"); res.status != 416 || res.header.Get("Content-Range") != "bytes */*" {
			t.Errorf("first PUT past offset 0: %d %v %s", res.status, res.header, res.body)
		}
		// An empty chunked PATCH is a heartbeat too.
		if res := do(t, "PATCH", in3, io.MultiReader(), "If-Match", v3); res.status != 200 {
			t.Errorf("chunked heartbeat: %d %s", res.status, res.body)
		}
		// A finished transaction takes no new requests; heartbeats stay harmless.
		do(t, "POST", in3+"/cancel", nil)
		etag3 := do(t, "GET", in3, nil).header.Get("ETag")
		if res := do(t, "PATCH", in3, `{"rcpt_to":[{"m":"b@x"}]}`, "Content-Type", jsonType, "If-Match", etag3); res.status != 409 || res.errorCode(t) != "transaction_final" {
			t.Errorf("PATCH after cancel: %d %s", res.status, res.body)
		}
		if res := do(t, "PUT", in3+"/body", "x"); res.status != 409 || res.errorCode(t) != "transaction_final" {
			t.Errorf("PUT after cancel: %d %s", res.status, res.body)
		}
		if res := do(t, "PATCH", in3, "", "If-Match", etag3); res.status != 200 {
			t.Errorf("heartbeat after cancel: %d %s", res.status, res.body)
		}

		// Or inline in a PATCH.
		in2 := r.post("ingress", `{"mail_from":{"m":"a@x"}}`).header.Get("Location")
		res = do(t, "PATCH", in2, `{"rcpt_to":[{"m":"b@x"}],"body":{"inline":"hi"}}`, "Content-Type", jsonType, "If-Match", r.settled(in2))
		if res.status != 200 || !strings.Contains(string(res.body), `"finalized":true`) {
			t.Errorf("PATCH with body: %d %s", res.status, res.body)
		}
	})
}

func TestHangingGet(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := startReplica(t, b)
		loc := r.post("ingress", `{"mail_from":{"m":"a@x"}}`).header.Get("Location")
		v := r.settled(loc)
		start := time.Now()
		res := do(t, "GET", loc, nil, "If-None-Match", v, "Request-Timeout", "1")
		if res.status != 304 || res.header.Get("ETag") != v || time.Since(start) < time.Second {
			t.Errorf("timeout: %d %v after %v", res.status, res.header, time.Since(start))
		}
		if res := do(t, "GET", loc, nil, "If-None-Match", v, "Request-Timeout", "soon"); res.status != 400 {
			t.Errorf("bad request-timeout: %d %s", res.status, res.body)
		}
		if res := do(t, "GET", loc, nil, "If-None-Match", "0"); res.status != 200 || res.header.Get("ETag") != v {
			t.Errorf("stale If-None-Match: %d %v", res.status, res.header)
		}
		// Waiters wake when a write commits, well before their timeout.
		var wg sync.WaitGroup
		results := make([]resp, 5)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				timeout := "20"
				if i == 0 {
					timeout = "99999999999" // capped, not overflowed
				}
				results[i] = do(t, "GET", loc, nil, "If-None-Match", v, "Request-Timeout", timeout)
			}()
		}
		time.Sleep(200 * time.Millisecond)
		start = time.Now()
		patched := do(t, "PATCH", loc, `{"rcpt_to":[{"m":"b@x"}]}`, "Content-Type", jsonType, "If-Match", v)
		wg.Wait()
		for i, res := range results {
			if res.status != 200 || res.header.Get("ETag") != patched.header.Get("ETag") || !strings.Contains(string(res.body), `"rcpt_to":[{}]`) {
				t.Errorf("waiter %d: %d %v %s", i, res.status, res.header, res.body)
			}
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("waiters took %v to wake", d)
		}
		if res := do(t, "GET", r.url+"/transactions/nope", nil, "If-None-Match", "1"); res.status != 404 {
			t.Errorf("unknown tx: %d", res.status)
		}
		// Shutting down releases waiters at once.
		done := make(chan resp)
		go func() { done <- do(t, "GET", loc, nil, "If-None-Match", patched.header.Get("ETag")) }()
		time.Sleep(100 * time.Millisecond)
		go r.svc.Shutdown(context.Background())
		select {
		case res := <-done:
			if res.status != 304 {
				t.Errorf("waiter at shutdown: %d", res.status)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("shutdown did not release a hanging GET")
		}
	})
}

func TestCancel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := startReplica(t, b)
		loc := r.post("submission", inlineBody).header.Get("Location")
		r.settled(loc)
		res := do(t, "POST", loc+"/cancel", nil)
		if res.status != 200 || !strings.Contains(string(res.body), `"cancelled":true`) ||
			!strings.Contains(string(res.body), `"final_attempt_reason":"downstream cancelled"`) {
			t.Errorf("cancel: %d %s", res.status, res.body)
		}
		if again := do(t, "POST", loc+"/cancel", nil); again.status != 200 || again.header.Get("ETag") != res.header.Get("ETag") {
			t.Errorf("second cancel: %d %v", again.status, again.header)
		}
		if res := do(t, "POST", r.url+"/transactions/nope/cancel", nil); res.status != 404 {
			t.Errorf("cancel unknown: %d", res.status)
		}
	})
}

func TestIdempotencyKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := startReplica(t, b)
		first := r.post("submission", inlineBody, "Idempotency-Key", "k1")
		again := r.post("submission", inlineBody, "Idempotency-Key", "k1")
		if again.header.Get("Location") != first.header.Get("Location") {
			t.Errorf("retried create: %v %s", again.header, again.body)
		}
		other := `{"mail_from":{"m":"alice@example.com"},"rcpt_to":[{"m":"carol@example.com"}]}`
		res := do(t, "POST", r.url+"/senders/submission/transactions", other, "Content-Type", jsonType, "Idempotency-Key", "k1")
		if res.status != 422 || res.errorCode(t) != "idempotency_key_reused" {
			t.Errorf("same key, different request: %d %s", res.status, res.body)
		}
		// Keys are per sender.
		if res := r.post("ingress", other, "Idempotency-Key", "k1"); res.header.Get("Location") == first.header.Get("Location") {
			t.Errorf("key shared across senders")
		}
	})
}

// TestTwoReplicas: requests for a transaction leased by one replica are redirected to it by
// another; once it stops, the other serves the transaction and can take it over.
func TestTwoReplicas(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		a, other := startReplica(t, b), startReplica(t, b)
		loc := a.post("submission", `{`+envelope+`}`).header.Get("Location")
		path := strings.TrimPrefix(loc, a.url)
		for _, req := range []struct{ method, path, body string }{
			{"GET", path, ""}, {"PATCH", path, ""}, {"PUT", path + "/body", message}, {"POST", path + "/cancel", ""},
		} {
			res := do(t, req.method, other.url+req.path, req.body, "If-Match", "1")
			if res.status != 308 || res.header.Get("Location") != a.url+req.path {
				t.Errorf("%s %s on the other replica: %d %v", req.method, req.path, res.status, res.header)
			}
		}
		if res := do(t, "GET", other.url+path, nil, "If-None-Match", "1"); res.status != 308 {
			t.Errorf("hanging GET on the other replica: %d", res.status)
		}
		a.stop()
		if res := do(t, "PUT", other.url+path+"/body", message); res.status != 200 {
			t.Fatalf("PUT after the owner stopped: %d %s", res.status, res.body)
		}
		get := do(t, "GET", other.url+path, nil)
		if get.status != 200 || !strings.Contains(string(get.body), `"finalized":true`) {
			t.Errorf("GET after the owner stopped: %d %s", get.status, get.body)
		}
		// The survivor dequeues the transaction and owns it from then on.
		got, err := other.store.Dequeue(t.Context())
		if err != nil || got == nil || got.RestID != strings.TrimPrefix(path, "/transactions/") || !got.Lease.Here {
			t.Fatalf("dequeue on the survivor: %+v %v", got, err)
		}
	})
}

// TestBackgroundLoops: the heartbeat keeps the session, reaps dead replicas' sessions
// (freeing their leases), collects garbage, and stops the replica when its session is lost.
func TestBackgroundLoops(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := startReplica(t, b)
		ctx := t.Context()

		dead := b.open(t, "http://dead-replica")
		if _, err := dead.Create(ctx, store.NewTx{RestID: "held", JSON: []byte(`{}`), Leased: true}); err != nil {
			t.Fatal(err)
		}
		dead.(interface{ Abandon() error }).Abandon()
		loc := r.post("submission", inlineBody).header.Get("Location")
		id := strings.TrimPrefix(loc, r.url+"/transactions/")
		if _, err := r.store.FinishAttempt(ctx, id, store.Finish{FinalReason: "upstream response success"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "dead session reaped", func() bool {
			h, err := r.store.Head(ctx, "held")
			return err == nil && h.Lease == (store.Lease{})
		})
		eventually(t, "finished tx collected", func() bool { return do(t, "GET", loc, nil).status == 404 })

		// Another replica declares this one dead: it must stop.
		judge := b.open(t, "http://judge")
		defer judge.Close()
		if _, err := judge.ReapSessions(ctx, 0); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-r.ran:
			if err == nil || !strings.Contains(err.Error(), "session lost") {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run kept going after its session was lost")
		}
	})
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for: %s", what)
}
