package resttest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/rest/resttest"
)

type answer struct {
	status int
	header http.Header
	body   string
}

// do is one raw HTTP request; headers are name, value pairs.
func do(t *testing.T, method, url, body string, headers ...string) answer {
	t.Helper()
	a, err := send(method, url, body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func send(method, url, body string, headers ...string) (answer, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return answer{}, err
	}
	for i := 0; i < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, string(b)}, err
}

func (a answer) want(t *testing.T, status int, header ...string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.body)
	}
	for i := 0; i < len(header); i += 2 {
		if got := a.header.Get(header[i]); got != header[i+1] {
			t.Errorf("%s: %q, want %q", header[i], got, header[i+1])
		}
	}
}

// The receiver contract of spec section 2.11, byte for byte.
func TestWire(t *testing.T) {
	t.Parallel()
	rcv := resttest.NewReceiver(resttest.Options{})
	defer rcv.Close()
	base := rcv.URL()
	loc := base + "/transactions/tx1"

	res := do(t, "POST", base+"/senders/router/transactions",
		`{"sender":{"name":"ignored","tag":"out"},"mail_from":{"m":"a@example.com"},"rcpt_to":[{"m":"b@example.com"}],"remote_host":["203.0.113.9",25]}`,
		"Content-Type", "application/json")
	res.want(t, 201, "Location", loc, "ETag", "1", "Content-Type", "application/json")
	created := `{"sender":{},"remote_host":["203.0.113.9",25],"mail_from":{},"rcpt_to":[{}],` +
		`"body":{"blob_status":{"uri":"` + loc + `/body"}},` +
		`"mail_response":{"code":250,"message":"ok"},"rcpt_response":[{"code":250,"message":"ok"}]}`
	if res.body != created {
		t.Errorf("201 body\n%s\nwant\n%s", res.body, created)
	}
	if got := rcv.Transactions()[0].Tx.Sender; got.Name != "router" || got.Tag != "out" {
		t.Errorf("sender %+v", got)
	}

	do(t, "GET", loc, "").want(t, 200, "ETag", "1")
	start := time.Now()
	res = do(t, "GET", loc, "", "If-None-Match", "1", "Request-Timeout", "1")
	res.want(t, 304, "ETag", "1")
	if d := time.Since(start); d < time.Second || d > 3*time.Second || res.body != "" {
		t.Errorf("304 after %v with body %q", d, res.body)
	}
	do(t, "GET", loc, "", "If-None-Match", "0").want(t, 200, "ETag", "1")
	do(t, "GET", loc, "", "If-None-Match", "1", "Request-Timeout", "soon").want(t, 400)

	do(t, "PATCH", loc, "").want(t, 400)
	do(t, "PATCH", loc, "", "If-Match", "7").want(t, 412)
	do(t, "PATCH", loc, "hello", "If-Match", "1", "Content-Type", "text/plain").want(t, 415)
	do(t, "PATCH", loc, `{"filter_output":{"x":1}}`, "If-Match", `"1"`, "Content-Type", "application/json").want(t, 200, "ETag", "2")
	do(t, "PATCH", loc, "", "If-Match", "2").want(t, 200, "ETag", "3") // heartbeat

	// A hanging GET wakes when the upload completes.
	woke := make(chan answer, 1)
	go func() {
		a, _ := send("GET", loc, "", "If-None-Match", "3", "Request-Timeout", "10")
		woke <- a
	}()
	time.Sleep(50 * time.Millisecond)
	start = time.Now()
	do(t, "PUT", loc+"/body", "Subject", "Content-Range", "bytes 0-6/*").want(t, 200, "Content-Range", "bytes 0-6/*")
	do(t, "PUT", loc+"/body", "12345", "Content-Range", "bytes 10-14/*").want(t, 416, "Content-Range", "bytes 0-6/*")
	res = do(t, "PUT", loc+"/body", ": hi\r\n\r\n", "Content-Range", "bytes 7-14/15")
	res.want(t, 200, "Content-Range", "bytes 0-14/15", "Content-Type", "application/json")
	if res.body != "{}" {
		t.Errorf("PUT answered %q", res.body)
	}
	if w := <-woke; w.status != 200 || w.header.Get("ETag") == "3" || time.Since(start) > 2*time.Second {
		t.Errorf("hanging GET: %d ETag %s after %v", w.status, w.header.Get("ETag"), time.Since(start))
	}

	res = do(t, "GET", loc, "")
	res.want(t, 200, "ETag", "5") // finalized, then answered
	if !strings.Contains(res.body, `"body":{"blob_status":{"uri":"`+loc+`/body","finalized":true}}`) ||
		!strings.HasSuffix(res.body, `"data_response":{"code":250,"message":"ok"}}`) {
		t.Errorf("after upload: %s", res.body)
	}
	if got := rcv.Transactions()[0]; string(got.Body) != "Subject: hi\r\n\r\n" || got.Heartbeats != 1 {
		t.Errorf("received body %q heartbeats %d", got.Body, got.Heartbeats)
	}

	res = do(t, "POST", loc+"/cancel", "")
	res.want(t, 200, "ETag", "6")
	if !strings.Contains(res.body, `"cancelled":true`) {
		t.Errorf("after cancel: %s", res.body)
	}

	res = do(t, "GET", base+"/transactions/nope", "")
	res.want(t, 404, "Content-Type", "application/json")
	if res.body != `{"error":{"code":"unknown_transaction","message":"unknown transaction"}}` {
		t.Errorf("404 body %s", res.body)
	}
}

// Finalizing an upload without data, and the checks on upload headers.
func TestWireFinalize(t *testing.T) {
	t.Parallel()
	rcv := resttest.NewReceiver(resttest.Options{})
	defer rcv.Close()
	do(t, "POST", rcv.URL()+"/senders/x/transactions", `{"mail_from":{"m":""},"rcpt_to":[{"m":"b@example.com"}]}`).want(t, 201)
	body := rcv.URL() + "/transactions/tx1/body"
	do(t, "PUT", body, "", "X-Finalize-Blob-Length", "3").want(t, 416, "Content-Range", "bytes */*")
	do(t, "PUT", body, "hello", "Content-Range", "bytes 0-4/*").want(t, 200, "Content-Range", "bytes 0-4/*")
	do(t, "PUT", body, "hello", "Content-Range", "bytes 0-3/*").want(t, 400) // length mismatch
	do(t, "PUT", body, "hello", "Content-Range", "bytes 5-9/3").want(t, 400)
	do(t, "PUT", body, "hello", "Content-Range", "bytes 0-4/*", "X-Finalize-Blob-Length", "5").want(t, 400)
	do(t, "PUT", body, "x", "X-Finalize-Blob-Length", "5").want(t, 400)
	do(t, "PUT", body, "", "X-Finalize-Blob-Length", "4").want(t, 416, "Content-Range", "bytes 0-4/*")
	do(t, "PUT", body, "", "X-Finalize-Blob-Length", "5").want(t, 200, "Content-Range", "bytes 0-4/5")
	do(t, "PUT", body, "!", "Content-Range", "bytes 5-5/*").want(t, 416, "Content-Range", "bytes 0-4/5")
	if got := rcv.Transactions()[0]; string(got.Body) != "hello" || !got.BodyFinalized || got.Tx.DataResponse == nil {
		t.Errorf("received %q finalized %v data %v", got.Body, got.BodyFinalized, got.Tx.DataResponse)
	}
}

// With Parsing, the read form offers message_builder.uri, and the parsed
// message's create_ids become blobs to PUT before DATA is answered.
func TestWireParsing(t *testing.T) {
	t.Parallel()
	rcv := resttest.NewReceiver(resttest.Options{Parsing: true})
	defer rcv.Close()
	loc := rcv.URL() + "/transactions/tx1"
	res := do(t, "POST", rcv.URL()+"/senders/x/transactions", `{"mail_from":{"m":"a@example.com"},"rcpt_to":[{"m":"b@example.com"}]}`)
	res.want(t, 201)
	if want := `"body":{"message_builder":{"uri":"` + loc + `/message_builder"},"blob_status":{"uri":"` + loc + `/body"}}`; !strings.Contains(res.body, want) {
		t.Errorf("201 body %s, want %s", res.body, want)
	}
	parsed := `{"parts":{"content_type":"image/png","content":{"create_id":"0"}},"file_attachments":[{"content_type":"image/png","content":{"create_id":"0"}}]}`
	res = do(t, "POST", loc+"/message_builder", parsed, "Content-Type", "application/json")
	res.want(t, 200, "ETag", "2")
	if want := `"message_builder":{"uri":"` + loc + `/message_builder","blob_status":{"0":{"uri":"` + loc + `/blob/0"}}}`; !strings.Contains(res.body, want) {
		t.Errorf("message_builder answer %s, want %s", res.body, want)
	}
	do(t, "POST", loc+"/message_builder", parsed).want(t, 409)
	do(t, "PUT", loc+"/blob/9", "x").want(t, 404)
	do(t, "PUT", loc+"/body", "raw").want(t, 200, "Content-Range", "bytes 0-2/3")
	if got := rcv.Transactions()[0]; got.Tx.DataResponse != nil {
		t.Fatal("DATA answered before every part arrived")
	}
	do(t, "PUT", loc+"/blob/0", "png").want(t, 200)
	if res := do(t, "GET", loc, ""); !strings.Contains(res.body, `"data_response"`) {
		t.Errorf("after every blob: %s", res.body)
	}
	if got := rcv.Transactions()[0]; string(got.Parsed) != parsed || string(got.Parts["0"]) != "png" {
		t.Errorf("received parsed %s parts %q", got.Parsed, got.Parts)
	}
}
