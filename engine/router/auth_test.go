package router

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/koukan/koukan/engine/httpauth"
	"github.com/koukan/koukan/engine/tx"
)

// Behind API keys: a key reaches its own sender's transactions only (others' are unknown,
// also as reuse_uri), and only a trusted caller may say where a message came from.
func TestAPIKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := startReplica(t, b)
		appKey, appCred := httpauth.NewKey()
		gwKey, gwCred := httpauth.NewKey()
		otherKey, otherCred := httpauth.NewKey()
		keys, err := httpauth.ParseKeys("keys", []byte("sender submission "+appCred+"\n"+
			"sender submission "+gwCred+" trusted\nsender ingress "+gwCred+" trusted\nsender msa "+otherCred+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(httpauth.Middleware(httpauth.Options{Keys: keys, TxSender: r.svc.TxSender, Log: testLogger()})(r.svc.Handler()))
		defer srv.Close()
		as := func(key string) []string { return []string{"Content-Type", jsonType, "Authorization", "Bearer " + key} }
		// path is where a Location points, on the server with keys.
		path := func(res resp) string { return srv.URL + strings.TrimPrefix(res.header.Get("Location"), r.url) }

		const claims = `"remote_host":["203.0.113.9",41000],"local_host":["192.0.2.1",25],"smtp_meta":{"ehlo_host":"mx.a.example","auth":true},`
		const msg = `{` + claims + `"mail_from":{"m":"a@example.com"},"rcpt_to":[{"m":"b@example.com"}],"body":{"inline":"Subject: x\r\n\r\nx\r\n"}}`
		stored := func(loc string) *tx.Tx {
			id := loc[strings.LastIndexByte(loc, '/')+1:]
			rec, err := r.store.Get(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			st, err := tx.Parse(rec.JSON, tx.DB)
			if err != nil {
				t.Fatal(err)
			}
			return st
		}

		app := do(t, "POST", srv.URL+"/senders/submission/transactions", msg, as(appKey)...)
		if app.status != http.StatusCreated {
			t.Fatalf("create with the app's key: %d %s", app.status, app.body)
		}
		if st := stored(app.header.Get("Location")); st.RemoteHost != nil || st.LocalHost != nil || st.SMTPMeta != nil {
			t.Errorf("an untrusted caller's claims were kept: %+v %+v %s", st.RemoteHost, st.LocalHost, st.SMTPMeta)
		}
		gw := do(t, "POST", srv.URL+"/senders/submission/transactions", msg, as(gwKey)...)
		if gw.status != http.StatusCreated {
			t.Fatalf("create with the gateway's key: %d %s", gw.status, gw.body)
		}
		if st := stored(gw.header.Get("Location")); st.RemoteHost == nil || st.RemoteHost.Host != "203.0.113.9" || string(st.SMTPMeta["auth"]) != "true" {
			t.Errorf("a trusted caller's claims were dropped: %+v %s", st.RemoteHost, st.SMTPMeta)
		}
		// Without keys (the server without the middleware) everyone is trusted, as before.
		open := r.post("submission", msg)
		if st := stored(open.header.Get("Location")); st.RemoteHost == nil || st.SMTPMeta == nil {
			t.Errorf("without keys the claims were dropped: %+v", st)
		}

		for _, c := range []struct {
			key    string
			res    resp
			status int
		}{
			{appKey, app, 200}, {gwKey, app, 200}, {otherKey, app, 404}, {"", app, 401}, {appKey + "x", app, 401},
		} {
			got := do(t, "GET", path(c.res), nil, "Authorization", "Bearer "+c.key)
			if got.status != c.status {
				t.Errorf("GET with key %.12q: %d %s, want %d", c.key, got.status, got.body, c.status)
			}
			if c.status == 404 && got.errorCode(t) != "unknown_transaction" {
				t.Errorf("another sender's transaction: %s", got.body)
			}
		}
		if got := do(t, "POST", path(app)+"/cancel", nil, "Authorization", "Bearer "+otherKey); got.status != 404 {
			t.Errorf("cancel with another sender's key: %d %s", got.status, got.body)
		}
		if got := do(t, "POST", srv.URL+"/senders/ingress/transactions", `{"mail_from":{"m":"a@example.com"}}`, as(appKey)...); got.status != 403 {
			t.Errorf("create for another sender: %d %s", got.status, got.body)
		}

		// reuse_uri: a key's own transactions' blobs only.
		reuse := `{"mail_from":{"m":"a@example.com"},"rcpt_to":[{"m":"c@example.com"}],"body":{"reuse_uri":"` +
			strings.TrimPrefix(path(app), srv.URL) + `/body"}}`
		if got := do(t, "POST", srv.URL+"/senders/submission/transactions", reuse, as(appKey)...); got.status != http.StatusCreated {
			t.Errorf("reusing its own blob: %d %s", got.status, got.body)
		}
		if got := do(t, "POST", srv.URL+"/senders/msa/transactions", reuse, as(otherKey)...); got.status != 400 || got.errorCode(t) != "invalid_reuse" {
			t.Errorf("reusing another sender's blob: %d %s", got.status, got.body)
		}
		inc := do(t, "POST", srv.URL+"/senders/msa/transactions", `{"mail_from":{"m":"a@example.com"},"rcpt_to":[{"m":"c@example.com"}]}`, as(otherKey)...)
		if inc.status != http.StatusCreated {
			t.Fatalf("create for msa: %d %s", inc.status, inc.body)
		}
		patch := `{"body":{"reuse_uri":"` + strings.TrimPrefix(path(app), srv.URL) + `/body"}}`
		etag := r.settled(inc.header.Get("Location"))
		if got := do(t, "PATCH", path(inc), patch, append(as(otherKey), "If-Match", etag)...); got.status != 400 || got.errorCode(t) != "invalid_reuse" {
			t.Errorf("PATCH reusing another sender's blob: %d %s", got.status, got.body)
		}

		if _, found, err := r.svc.TxSender(context.Background(), "nonexistent"); found || err != nil {
			t.Errorf("TxSender of an unknown transaction: %v %v", found, err)
		}
	})
}
