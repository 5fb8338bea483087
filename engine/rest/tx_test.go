package rest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/rest/resttest"
	"github.com/koukan/koukan/engine/tx"
)

// The rest_output sequence against a receiver: create, upload, wait for DATA.
func TestCreatePutWait(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, resttest.Options{})
	c := newClient(t, Options{})
	ctx := testCtx(t, 5*time.Second)

	env := envelope()
	env.SMTPMeta = map[string]json.RawMessage{"ehlo_host": json.RawMessage(`"mx.example.com"`)}
	up, err := c.Create(ctx, rcv.URL()+"/senders/router/transactions", env)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(up.Location(), rcv.URL()+"/transactions/") || up.ETag() != "1" {
		t.Errorf("Location %q ETag %q", up.Location(), up.ETag())
	}
	st := up.State()
	if st.MailResponse == nil || len(st.RcptResponse) != 1 || st.DataResponse != nil {
		t.Fatalf("state after create: %+v", st)
	}
	blob, ok := st.Body.(*tx.Blob)
	if !ok || blob.URI == "" {
		t.Fatalf("body %#v", st.Body)
	}
	msg := []byte("Subject: hi\r\n\r\nhello\r\n")
	if err := up.PutBlob(ctx, blob.URI, bytes.NewReader(msg), int64(len(msg))); err != nil {
		t.Fatal(err)
	}
	final, err := up.Wait(ctx, dataDone)
	if err != nil {
		t.Fatal(err)
	}
	if final.DataResponse.Code != 250 || up.ETag() == "1" {
		t.Errorf("final %+v etag %s", final, up.ETag())
	}

	got := rcv.Transactions()
	if len(got) != 1 {
		t.Fatalf("%d transactions", len(got))
	}
	r := got[0]
	if !bytes.Equal(r.Body, msg) || !r.BodyFinalized {
		t.Errorf("body %q finalized %v", r.Body, r.BodyFinalized)
	}
	if *r.Tx.Sender != (tx.Sender{Name: "router", Tag: "out"}) || r.Tx.MailFrom.Address != "alice@example.com" ||
		r.Tx.RcptTo[0].Address != "bob@example.com" || *r.Tx.RemoteHost != *env.RemoteHost ||
		string(r.Tx.SMTPMeta["ehlo_host"]) != `"mx.example.com"` {
		t.Errorf("received %+v", r.Tx)
	}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	rcv := newReceiver(t, resttest.Options{
		Middleware: rec.wrap,
		Respond: func(r resttest.Request) resttest.Reply {
			if r.Phase == resttest.PhaseRcpt && r.Rcpt == 1 {
				return resttest.Reply{Response: tx.Response{Code: 450, Message: "later"}}
			}
			return resttest.Reply{}
		},
	})
	c := newClient(t, Options{})
	ctx := testCtx(t, 5*time.Second)

	// The gateway's incremental dialect: MAIL first, recipients by PATCH.
	up, err := c.Create(ctx, rcv.URL()+"/senders/ingress/transactions", &tx.Tx{MailFrom: &tx.Mailbox{Address: "a@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, addr := range []string{"b@example.com", "c@example.com"} {
		if err := up.Update(ctx, &tx.Tx{RcptTo: []tx.Mailbox{{Address: addr}}, RcptToOffset: i}); err != nil {
			t.Fatal(err)
		}
		st, err := up.Wait(ctx, func(s *tx.Tx) bool { return len(s.RcptResponse) > i })
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{250, 450}[i]; st.RcptResponse[i].Code != want {
			t.Errorf("rcpt %d: %v, want %d", i, st.RcptResponse[i], want)
		}
	}
	etag := up.ETag()
	if err := up.Update(ctx, nil); err != nil { // heartbeat
		t.Fatal(err)
	}
	if err := up.Update(ctx, &tx.Tx{FilterOutput: map[string]json.RawMessage{"spam": json.RawMessage(`{"score":1}`)}}); err != nil {
		t.Fatal(err)
	}
	if up.ETag() == etag {
		t.Error("ETag did not move on")
	}
	r := rcv.Transactions()[0]
	if r.Heartbeats != 1 || len(r.Tx.RcptTo) != 2 || string(r.Tx.FilterOutput["spam"]) != `{"score":1}` {
		t.Errorf("received %+v heartbeats %d", r.Tx, r.Heartbeats)
	}
	patches := rec.of("PATCH")
	if len(patches) != 4 {
		t.Fatalf("%d PATCHes", len(patches))
	}
	if h := patches[2].header; h.Get("Content-Type") != "" || h.Get("If-Match") == "" {
		t.Errorf("heartbeat headers %v", h)
	}
	if h := patches[3].header; h.Get("Content-Type") != "application/json" {
		t.Errorf("update headers %v", h)
	}
}

// On 412 the Tx reads the transaction again, so the next update can succeed.
func TestUpdateConflict(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, resttest.Options{})
	c := newClient(t, Options{})
	ctx := testCtx(t, 5*time.Second)
	up, err := c.Create(ctx, rcv.URL()+"/senders/x/transactions", envelope())
	if err != nil {
		t.Fatal(err)
	}
	// Someone else writes the transaction.
	req, _ := http.NewRequest(http.MethodPatch, up.Location(), nil)
	req.Header.Set("If-Match", up.ETag())
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("side PATCH: %v %v", res, err)
	}
	res.Body.Close()
	current := res.Header.Get("ETag")

	e := wantKind(t, up.Update(ctx, nil), KindConflict)
	if e.Status != 412 || e.Problem != "version_conflict" {
		t.Errorf("error %+v", e)
	}
	if up.ETag() != current {
		t.Errorf("ETag %s after 412, want %s", up.ETag(), current)
	}
	if err := up.Update(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, resttest.Options{Respond: func(resttest.Request) resttest.Reply {
		return resttest.Reply{Delay: time.Minute}
	}})
	c := newClient(t, Options{})
	ctx := testCtx(t, 5*time.Second)
	up, err := c.Create(ctx, rcv.URL()+"/senders/x/transactions", envelope())
	if err != nil {
		t.Fatal(err)
	}
	if up.State().MailResponse != nil {
		t.Fatal("mail answered despite the delay")
	}
	if err := up.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Wait(ctx, func(s *tx.Tx) bool { return s.Cancelled }); err != nil {
		t.Fatal(err)
	}
	if r := rcv.Transactions()[0]; !r.Tx.Cancelled || r.Tx.MailResponse != nil {
		t.Errorf("received %+v", r.Tx)
	}
}

// Create's checks of the 201, against servers that get it wrong.
func TestCreateAnswers(t *testing.T) {
	t.Parallel()
	const body = `{"mail_from":{},"rcpt_to":[{}]}`
	for _, tc := range []struct {
		name     string
		status   int
		loc      string
		etag     string
		body     string
		want     Kind
		location string // want, relative to the server
	}{
		{"ok relative location", 201, "/transactions/t1", "1", body, 0, "/transactions/t1"},
		{"no etag", 201, "/transactions/t1", "", body, KindProtocol, ""},
		{"no location", 201, "", "1", body, KindProtocol, ""},
		{"200 is not 201", 200, "/transactions/t1", "1", body, KindStatus, ""},
		{"not a transaction", 201, "/transactions/t1", "1", `{"mail_from":{"m":"x"}}`, KindProtocol, ""},
		{"problem", 503, "", "", `{"error":{"code":"internal_error","message":"db down"}}`, KindStatus, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.loc != "" {
					w.Header().Set("Location", tc.loc)
				}
				if tc.etag != "" {
					w.Header().Set("ETag", tc.etag)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			up, err := newClient(t, Options{}).Create(testCtx(t, 5*time.Second), srv.URL+"/senders/x/transactions", envelope())
			if tc.want == 0 {
				if err != nil || up.Location() != srv.URL+tc.location {
					t.Fatalf("%v, location %v", err, up)
				}
				return
			}
			e := wantKind(t, err, tc.want)
			if tc.status == 503 && (e.Status != 503 || e.Safe() != "create: http status 503 (internal_error)") {
				t.Errorf("error %+v safe %q", e, e.Safe())
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := newClient(t, Options{}).Create(testCtx(t, 5*time.Second), url+"/senders/x/transactions", envelope())
	e := wantKind(t, err, KindTransport)
	if e.Safe() != "create: connection failed" || !strings.Contains(e.Error(), "refused") {
		t.Errorf("safe %q error %q", e.Safe(), e.Error())
	}
}

// Safe repeats only a problem code that looks like one.
func TestSafe(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{Op: "wait", Kind: KindTimeout}, "wait: timeout"},
		{Error{Op: "update", Kind: KindConflict, Status: 412, Problem: "version_conflict"}, "update: update conflict (version_conflict)"},
		{Error{Op: "put blob", Kind: KindStatus, Status: 500, Problem: problemCode("<script>\r\n")}, "put blob: http status 500"},
	} {
		if got := tc.e.Safe(); got != tc.want {
			t.Errorf("Safe() = %q, want %q", got, tc.want)
		}
	}
}
