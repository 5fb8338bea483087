package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/admin"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/chain/chaintest"
	"github.com/koukan/koukan/engine/router"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/store/sqlite"
	"github.com/koukan/koukan/engine/tx"
)

// testConfig is a router whose one sender retries temporary failures an hour later, so
// that they wait deferred until a test retries them.
const testConfig = `
rest_listener:
  addr: ["127.0.0.1", 1]
  session_uri: %s
storage:
  url: sqlite:///unused.db
sender:
  - name: app
    output_chain: out
    retry: output_chain
endpoint:
  - name: out
    output_handler:
      retry_params: {max_attempts: 10, min_attempt_time: 3600, max_attempt_time: 7200, backoff_factor: 1}
    chain:
      - filter: rest_output
        static_endpoint: http://127.0.0.1:9
`

// upstream scripts the remote servers: recipients at slow.example get 451 until open is
// set, hold@ never gets an answer, and xss@ gets a reply full of markup.
type upstream struct{ open atomic.Bool }

const xssReply = `4.0.0 <script>alert("x")</script> & <b>bold</b>`

func (u *upstream) factory() chain.Factory {
	return chain.FactoryFunc(func(*config.Step) (chain.Step, error) {
		up := &chaintest.Upstream{Rcpt: func(t *tx.Tx, i int) tx.Response {
			a := t.RcptTo[i].Address
			switch {
			case strings.HasSuffix(a, "@slow.example") && !u.open.Load():
				return tx.Response{Code: 451, Message: "4.3.0 try again later"}
			case strings.HasPrefix(a, "xss@"):
				return tx.Response{Code: 451, Message: xssReply}
			}
			return tx.Response{Code: 250, Message: "2.1.5 ok"}
		}}
		return chaintest.Func(func(ctx context.Context, c *chain.Update) error {
			if len(c.Tx.RcptTo) > 0 && strings.HasPrefix(c.Tx.RcptTo[0].Address, "hold@") {
				<-ctx.Done()
				return ctx.Err()
			}
			return up.Update(ctx, c)
		}), nil
	})
}

// replica is a router on a loopback port with the admin mounted as koukan router mounts it.
type replica struct {
	url string
	st  store.Store
}

func startReplica(t *testing.T, dbPath string, up *upstream) *replica {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{url: "http://" + ln.Addr().String()}
	cfg, _, err := config.ParseRouter("router.yaml", fmt.Appendf(nil, testConfig, r.url))
	if err != nil {
		t.Fatal(err)
	}
	if r.st, err = sqlite.Open(context.Background(), dbPath, store.Options{SessionURI: r.url}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("KOUKAN_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	svc := router.New(cfg, r.st, up.factory(), log)
	adm := admin.New(admin.Options{Store: r.st, Transactions: svc, Log: log, Scripts: func() admin.Scripts {
		return admin.Scripts{Hash: "abc123", LoadedAt: time.Now(), LastAttempt: time.Now(), LastError: "filters/x.lua:3: bad <lua> & co",
			Scripts: []admin.Script{{Kind: "filter", Name: "received_header", File: "builtin/filters/received_header.lua"}}}
	}})
	mux := http.NewServeMux()
	mux.Handle("/", svc.Handler())
	mux.Handle("/admin/", adm.Handler())
	mux.Handle("/ui", adm.Handler())
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	go adm.Run(ctx)
	t.Cleanup(func() {
		cancel()
		<-ran
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		svc.Shutdown(sctx)
		srv.Close()
		r.st.Close()
	})
	return r
}

func start(t *testing.T) (*replica, *upstream) {
	up := &upstream{}
	return startReplica(t, filepath.Join(t.TempDir(), "router.db"), up), up
}

type response struct {
	status int
	header http.Header
	body   string
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
}

// problem is the code and field of a problem body.
func (r response) problem(t *testing.T) (string, string) {
	t.Helper()
	var p struct {
		Error struct{ Code, Message, Field string }
	}
	r.json(t, &p)
	if p.Error.Message == "" {
		t.Errorf("problem without a message: %s", r.body)
	}
	return p.Error.Code, p.Error.Field
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func do(t *testing.T, method, url, body string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header, string(b)}
}

// post creates a transaction to rcpt and returns its id.
func (r *replica) post(t *testing.T, rcpt string) string {
	t.Helper()
	res := do(t, "POST", r.url+"/senders/app/transactions",
		`{"mail_from":{"m":"alice@example.com"},"rcpt_to":[{"m":"`+rcpt+`"}],"body":{"inline":"Subject: hi\r\n\r\nhello\r\n"}}`,
		"Content-Type", "application/json")
	if res.status != 201 {
		t.Fatalf("POST: %d %s", res.status, res.body)
	}
	loc := res.header.Get("Location")
	return loc[strings.LastIndexByte(loc, '/')+1:]
}

func (r *replica) show(t *testing.T, id string) admin.DetailView {
	t.Helper()
	res := do(t, "GET", r.url+"/admin/transactions/"+id, "")
	if res.status != 200 {
		t.Fatalf("show %s: %d %s", id, res.status, res.body)
	}
	var d admin.DetailView
	res.json(t, &d)
	return d
}

// waitState waits until the transaction is in state with at least attempts attempts.
func (r *replica) waitState(t *testing.T, id string, state store.State, attempts int) admin.DetailView {
	t.Helper()
	var d admin.DetailView
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if d = r.show(t, id); d.State == state && d.Attempts >= attempts {
			return d
		}
	}
	t.Fatalf("%s is %s after %d attempts, want %s after %d", id, d.State, d.Attempts, state, attempts)
	return d
}

func (r *replica) list(t *testing.T, query string) admin.ListView {
	t.Helper()
	res := do(t, "GET", r.url+"/admin/transactions?"+query, "")
	if res.status != 200 {
		t.Fatalf("list ?%s: %d %s", query, res.status, res.body)
	}
	var l admin.ListView
	res.json(t, &l)
	return l
}

func ids(l admin.ListView) []string {
	var out []string
	for _, v := range l.Transactions {
		out = append(out, v.ID)
	}
	return out
}

func TestListShowAndRetry(t *testing.T) {
	r, up := start(t)
	slow := r.post(t, "bob@slow.example")
	fast := r.post(t, "carol@Fast.Example")
	d := r.waitState(t, slow, store.StateDeferred, 1)
	if d.MailFrom != "alice@example.com" || !slices.Equal(d.RcptTo, []string{"bob@slow.example"}) || d.Sender != "app" ||
		d.Domain != "slow.example" || d.NextAttempt == nil || time.Until(*d.NextAttempt) < 30*time.Minute ||
		d.LastReply == nil || *d.LastReply != (admin.Reply{Stage: "rcpt", Code: 451, Message: "4.3.0 try again later"}) {
		t.Errorf("deferred transaction: %+v", d)
	}
	if len(d.AttemptList) != 1 || d.AttemptList[0].Attempt != 1 || len(d.AttemptList[0].RcptResponse) != 1 ||
		d.AttemptList[0].RcptResponse[0].Code != 451 || d.AttemptList[0].Started.IsZero() {
		t.Errorf("attempts: %+v", d.AttemptList)
	}
	f := r.waitState(t, fast, store.StateDelivered, 1)
	if f.Domain != "fast.example" || f.FinalAttemptReason != "upstream response success" || f.NextAttempt != nil ||
		f.LastReply == nil || f.LastReply.Stage != "data" || f.LastReply.Code != 250 {
		t.Errorf("delivered transaction: %+v", f)
	}

	if got := ids(r.list(t, "")); !slices.Equal(got, []string{fast, slow}) {
		t.Errorf("list %v, want newest first [%s %s]", got, fast, slow)
	}
	for query, want := range map[string][]string{
		"state=deferred":             {slow},
		"state=delivered&sender=app": {fast},
		"rcpt_domain=SLOW.example.":  {slow},
		"rcpt_domain=other.example":  nil,
		"sender=nobody":              nil,
		"since=1h":                   {fast, slow},
		"since=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339): nil,
	} {
		if got := ids(r.list(t, query)); !slices.Equal(got, want) {
			t.Errorf("list ?%s: %v, want %v", query, got, want)
		}
	}

	up.open.Store(true)
	res := do(t, "POST", r.url+"/admin/transactions/"+slow+"/retry", "")
	if res.status != 200 {
		t.Fatalf("retry: %d %s", res.status, res.body)
	}
	var retried admin.DetailView
	res.json(t, &retried)
	if retried.State == store.StateDeferred || retried.NextAttempt != nil && time.Until(*retried.NextAttempt) > time.Minute {
		t.Errorf("after retry: %+v, want due now", retried.TxView)
	}
	r.waitState(t, slow, store.StateDelivered, 2)

	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"POST", "/admin/transactions/" + slow + "/retry", 409, "transaction_final"},
		{"POST", "/admin/transactions/nope/retry", 404, "unknown_transaction"},
		{"POST", "/admin/transactions/nope/cancel", 404, "unknown_transaction"},
		{"GET", "/admin/transactions/nope", 404, "unknown_transaction"},
		{"DELETE", "/admin/transactions/" + slow, 405, "method_not_allowed"},
		{"GET", "/admin/elsewhere", 404, "unknown_route"},
	} {
		res := do(t, tc.method, r.url+tc.path, "")
		if code, _ := res.problem(t); res.status != tc.status || code != tc.code {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, res.status, res.body, tc.status, tc.code)
		}
	}
}

func TestListPages(t *testing.T) {
	r, _ := start(t)
	var created []string
	for i := range 7 {
		created = append(created, r.post(t, fmt.Sprintf("r%d@fast.example", i)))
	}
	slices.Reverse(created)
	var paged []string
	query := "limit=3"
	for range 10 {
		l := r.list(t, query)
		if len(l.Transactions) > 3 {
			t.Fatalf("page of %d", len(l.Transactions))
		}
		paged = append(paged, ids(l)...)
		if l.NextCursor == "" {
			break
		}
		query = "limit=3&cursor=" + l.NextCursor
	}
	if !slices.Equal(paged, created) {
		t.Errorf("pages %v, want %v", paged, created)
	}
	if l := r.list(t, "limit=7"); l.NextCursor != "" || len(l.Transactions) != 7 {
		t.Errorf("a page holding everything has a next cursor %q (%d)", l.NextCursor, len(l.Transactions))
	}
}

func TestBadParameters(t *testing.T) {
	r, _ := start(t)
	for query, field := range map[string]string{
		"state=lost":           "state",
		"state=":               "state",
		"limit=0":              "limit",
		"limit=1001":           "limit",
		"limit=ten":            "limit",
		"cursor=xyz":           "cursor",
		"cursor=":              "cursor",
		"since=yesterday":      "since",
		"since=-1h":            "since",
		"rcpt_domain=a b":      "rcpt_domain",
		"sender=":              "sender",
		"stat=due":             "stat",
		"state=due&state=held": "state",
	} {
		res := do(t, "GET", r.url+"/admin/transactions?"+strings.ReplaceAll(query, " ", "%20"), "")
		if code, f := res.problem(t); res.status != 400 || code != "invalid_parameter" || f != field {
			t.Errorf("?%s: %d %s, want 400 invalid_parameter naming %s", query, res.status, res.body, field)
		}
	}
	res := do(t, "POST", r.url+"/admin/domains/not%20a%20domain/suspend", "")
	if code, f := res.problem(t); res.status != 400 || code != "invalid_parameter" || f != "domain" {
		t.Errorf("suspend of a bad domain: %d %s", res.status, res.body)
	}
}

func TestSuspendResume(t *testing.T) {
	r, up := start(t)
	other := r.post(t, "carol@slow.example")
	r.waitState(t, other, store.StateDeferred, 1)
	up.open.Store(true)
	res := do(t, "POST", r.url+"/admin/domains/Held.Example./suspend", "")
	var dv admin.DomainView
	if res.json(t, &dv); res.status != 200 || dv.Domain != "held.example" || dv.SuspendedSince.IsZero() {
		t.Fatalf("suspend: %d %s", res.status, res.body)
	}
	held := r.post(t, "bob@held.example")
	if d := r.show(t, held); d.State != store.StateHeld || d.Attempts != 0 {
		t.Errorf("created for a suspended domain: %+v", d.TxView)
	}
	// The dequeue loop runs (it takes a retried transaction of another domain) and still
	// leaves the held one alone.
	if res := do(t, "POST", r.url+"/admin/transactions/"+other+"/retry", ""); res.status != 200 {
		t.Fatalf("retry: %d %s", res.status, res.body)
	}
	r.waitState(t, other, store.StateDelivered, 2)
	if d := r.show(t, held); d.State != store.StateHeld || d.Attempts != 0 {
		t.Errorf("held transaction after the dequeue loop ran: %+v", d.TxView)
	}
	var doms admin.DomainsView
	do(t, "GET", r.url+"/admin/domains", "").json(t, &doms)
	if len(doms.Domains) != 1 || doms.Domains[0].Domain != "held.example" || doms.Domains[0].Held != 1 {
		t.Errorf("domains: %+v", doms)
	}
	if got := ids(r.list(t, "state=held")); !slices.Equal(got, []string{held}) {
		t.Errorf("held list %v", got)
	}
	if res := do(t, "POST", r.url+"/admin/domains/held.example/suspend", ""); res.status != 200 {
		t.Errorf("suspending again: %d %s", res.status, res.body)
	}
	if res := do(t, "POST", r.url+"/admin/domains/held.example/resume", ""); res.status != 200 || !strings.Contains(res.body, `"suspended":false`) {
		t.Fatalf("resume: %d %s", res.status, res.body)
	}
	r.waitState(t, held, store.StateDelivered, 1)
	res = do(t, "POST", r.url+"/admin/domains/held.example/resume", "")
	if code, _ := res.problem(t); res.status != 404 || code != "domain_not_suspended" {
		t.Errorf("resume of a domain not suspended: %d %s", res.status, res.body)
	}
	do(t, "GET", r.url+"/admin/domains", "").json(t, &doms)
	if len(doms.Domains) != 0 {
		t.Errorf("domains after resume: %+v", doms)
	}
}

// Cancel wakes a client waiting on the transaction, and is sent to the replica whose
// output handler works on it.
func TestCancel(t *testing.T) {
	db := filepath.Join(t.TempDir(), "router.db")
	up := &upstream{}
	a, b := startReplica(t, db, up), startReplica(t, db, up)
	id := a.post(t, "hold@fast.example")
	a.waitState(t, id, store.StateInFlight, 1)

	res := do(t, "POST", b.url+"/admin/transactions/"+id+"/cancel", "")
	if want := a.url + "/admin/transactions/" + id + "/cancel"; res.status != 308 || res.header.Get("Location") != want {
		t.Fatalf("cancel on the other replica: %d %q, want 308 to %s", res.status, res.header.Get("Location"), want)
	}

	first := do(t, "GET", a.url+"/transactions/"+id, "")
	waited := make(chan response, 1)
	go func() {
		waited <- do(t, "GET", a.url+"/transactions/"+id, "", "If-None-Match", first.header.Get("ETag"), "Request-Timeout", "25")
	}()
	time.Sleep(200 * time.Millisecond) // let the hanging GET start waiting
	began := time.Now()
	res = do(t, "POST", a.url+"/admin/transactions/"+id+"/cancel", "")
	var c admin.DetailView
	if res.json(t, &c); res.status != 200 || c.State != store.StateCancelled {
		t.Fatalf("cancel: %d %s", res.status, res.body)
	}
	select {
	case got := <-waited:
		if got.status != 200 || !strings.Contains(got.body, `"cancelled":true`) {
			t.Errorf("the hanging GET answered %d %s", got.status, got.body)
		}
		if time.Since(began) > 10*time.Second {
			t.Errorf("the hanging GET took %v after the cancel: it was not woken", time.Since(began))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the hanging GET was not woken by the cancel")
	}
	// Cancelling a final transaction is a no-op, as on the transaction API.
	if res := do(t, "POST", a.url+"/admin/transactions/"+id+"/cancel", ""); res.status != 200 {
		t.Errorf("second cancel: %d %s", res.status, res.body)
	}
}

func TestStatusPage(t *testing.T) {
	r, _ := start(t)
	id := r.post(t, "xss@markup.example")
	r.waitState(t, id, store.StateDeferred, 1)
	r.post(t, "dave@fast.example")
	res := do(t, "GET", r.url+"/ui", "")
	if res.status != 200 || !strings.HasPrefix(res.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /ui: %d %s", res.status, res.header.Get("Content-Type"))
	}
	page := res.body
	for _, want := range []string{
		id, "markup.example", "<svg", "<polyline", `id="queue-deferred">1<`, "received_header",
		"bad &lt;lua&gt; &amp; co", "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script>", "<b>bold", "ZgotmplZ", "<lua>"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page has %q unescaped", bad)
		}
	}
}
