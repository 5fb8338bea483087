package router

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
	"strings"
	"testing"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/store/postgres"
	"github.com/koukan/koukan/engine/store/sqlite"
	"github.com/koukan/koukan/engine/store/storetest"
)

// testConfig is a router.yaml with a one-recipient sender (submission), an incremental one
// (ingress, whose chain ends in an exploder) and a sender with a tag.
const testConfig = `
global:
  mailer_daemon_mailbox: mailer-daemon@router.example
rest_listener:
  addr: ["127.0.0.1", 1]
  session_uri: %[1]s
  max_body_size: 4096
  chunk_size: 100
storage:
  url: sqlite:///unused.db
  session_refresh_interval: 0.1
  gc_interval: 0.1
  gc_ttl: 0.3
  blob_tx_refresh_interval: 0.05
sender:
  - name: submission
    output_chain: submission
    retry: output_chain
    tag:
      - name: oneshot
        output_chain: sink
        retry: null
      - name: sync-sor
        output_chain: sync_sor
        retry: null
      - name: sf-sor
        output_chain: sf_sor
        retry: null
      - name: msa-upstream
        retry: null
  - name: sor
    output_chain: sink
  - name: ingress
    output_chain: ingress
    upstream_sender: submission
  - name: msa
    output_chain: msa_exploder
    upstream_sender: submission
    # Recipients' transactions without retries until store-and-forward, as in the default
    # config's submission service.
  - name: msa-oneshot
    output_chain: msa_exploder
    upstream_sender: submission
    upstream_tag: msa-upstream
  - name: notifying
    output_chain: submission
    retry: output_chain
    notification: output_chain
  - name: delaying
    output_chain: delaying
    retry: output_chain
    notification: output_chain
endpoint:
  - name: submission
    output_handler:
      downstream_timeout: 1.5
      upstream_refresh: 0.3
      retry_params:
        max_attempts: 3
        min_attempt_time: 0.2
        max_attempt_time: 0.4
        backoff_factor: 1
        bug_retry: 0.3
      notification:
        sender: submission
    chain:
      - filter: rest_output
        static_endpoint: %[2]s
        rcpt_timeout: 1
        data_timeout: 1
  - name: sink
    chain:
      - filter: rest_output
        static_endpoint: http://127.0.0.1:9
  - name: delaying
    output_handler:
      retry_params:
        max_attempts: 8
        min_attempt_time: 0.2
        max_attempt_time: 0.3
        backoff_factor: 1
      notification:
        sender: submission
        delay: 0.5
    chain:
      - filter: rest_output
        static_endpoint: http://127.0.0.1:9
  - name: sync_sor
    chain:
      - filter: add_route
        sender: sor
      - filter: rest_output
        static_endpoint: http://127.0.0.1:9
  - name: sf_sor
    chain:
      - filter: add_route
        sender: sor
        store_and_forward: true
      - filter: rest_output
        static_endpoint: http://127.0.0.1:9
  - name: ingress
    chain:
      - filter: exploder
        msa: false
        rcpt_timeout: 2
        data_timeout: 3
  - name: msa_exploder
    chain:
      # The recipient's answer comes at once from the scripted upstream; the wait is only
      # bounded generously for loaded CI machines.
      - filter: exploder
        msa: true
        rcpt_timeout: 3
        data_timeout: 2
`

// backend opens replicas on one fresh database of some kind.
type backend struct {
	name string
	open func(t testing.TB, uri string) store.Store
}

// backends are SQLite always and PostgreSQL when storetest.PostgresEnv is set.
func backends(t testing.TB) []backend {
	sqlitePath := filepath.Join(t.TempDir(), "router.db")
	bs := []backend{{"sqlite", func(t testing.TB, uri string) store.Store {
		s, err := sqlite.Open(context.Background(), sqlitePath, store.Options{SessionURI: uri, ChunkSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}}}
	pg := backend{name: "postgres"}
	var dsn string
	pg.open = func(t testing.TB, uri string) store.Store {
		if dsn == "" {
			dsn = storetest.PostgresDSN(t)
		}
		s, err := postgres.Open(context.Background(), dsn, store.Options{SessionURI: uri, ChunkSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return append(bs, pg)
}

// forEachBackend runs f against a fresh database of each backend.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// replica is one running router: its service, its store and its HTTP server.
type replica struct {
	t     testing.TB
	svc   *Service
	store store.Store
	srv   *httptest.Server
	url   string
	// ran gets what Run, started with the replica, returned.
	ran    chan error
	cancel context.CancelFunc
}

// testLogger discards the service's log unless KOUKAN_TEST_LOG is set.
func testLogger() *slog.Logger {
	var w io.Writer = io.Discard
	if os.Getenv("KOUKAN_TEST_LOG") != "" {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// hold is an upstream that never answers, so transactions stay in their first attempt.
type hold struct{}

func (hold) Update(ctx context.Context, _ *chain.Update) error {
	<-ctx.Done()
	return ctx.Err()
}

// steps makes every configured step the given one: tests put one scripted step in place of
// a whole chain.
func steps(s chain.Step) chain.Factory {
	return chain.FactoryFunc(func(*config.Step) (chain.Step, error) { return s, nil })
}

// startReplica runs a router replica on a loopback port with the test config, whose chains
// hold every transaction in its first attempt.
func startReplica(t testing.TB, b backend) *replica { return startReplicaWith(t, b, steps(hold{})) }

// startReplicaWith runs a replica whose chains are made by f.
func startReplicaWith(t testing.TB, b backend, f chain.Factory) *replica {
	return startReplicaUpstream(t, b, f, "http://127.0.0.1:9")
}

// startReplicaUpstream runs a replica whose submission chain's rest_output sends to upstream;
// tweaks change the test config before the replica starts.
func startReplicaUpstream(t testing.TB, b backend, f chain.Factory, upstream string, tweaks ...func(*config.Router)) *replica {
	return startReplicaLogging(t, b, f, upstream, testLogger(), tweaks...)
}

// startReplicaLogging is startReplicaUpstream with the service logging to log.
func startReplicaLogging(t testing.TB, b backend, f chain.Factory, upstream string, log *slog.Logger, tweaks ...func(*config.Router)) *replica {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	cfg, _, err := config.ParseRouter("router.yaml", fmt.Appendf(nil, testConfig, url, upstream))
	if err != nil {
		t.Fatal(err)
	}
	for _, tweak := range tweaks {
		tweak(cfg)
	}
	st := b.open(t, url)
	svc := New(cfg, st, f, log)
	srv := httptest.NewUnstartedServer(svc.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{t: t, svc: svc, store: st, srv: srv, url: url, cancel: cancel, ran: make(chan error, 1)}
	go func() { r.ran <- svc.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

// stop shuts the replica down as the binary does: waiters released, leases given up.
func (r *replica) stop() {
	if r.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.cancel()
	r.svc.Shutdown(ctx)
	r.srv.Close()
	r.store.Close()
	r.srv = nil
}

// settled waits until the output handler has started the transaction's first attempt (which
// moves its version on) and returns the ETag from then.
func (r *replica) settled(loc string) string {
	r.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if res := do(r.t, "GET", loc, nil); strings.Contains(string(res.body), `"attempt_count"`) {
			return res.header.Get("ETag")
		}
	}
	r.t.Fatalf("%s: the first attempt did not start", loc)
	return ""
}

// resp is a decoded response.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, r.body)
	}
	return m
}

// errorCode is the code of a problem body.
func (r resp) errorCode(t testing.TB) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	if e == nil || e["message"] == "" {
		t.Fatalf("not a problem body: %s", r.body)
	}
	code, _ := e["code"].(string)
	return code
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// do sends a request; a body of type string is sent with Content-Length, an io.Reader
// chunked. Headers come as name, value pairs.
func do(t testing.TB, method, url string, body any, headers ...string) resp {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case io.Reader:
		rd = b
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if _, chunked := body.(io.Reader); chunked {
		req.ContentLength = -1
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{res.StatusCode, res.Header, data}
}

const jsonType = "application/json"

// post creates a transaction and fails the test unless it is created.
func (r *replica) post(sender, body string, headers ...string) resp {
	r.t.Helper()
	res := do(r.t, "POST", r.url+"/senders/"+sender+"/transactions", body, append([]string{"Content-Type", jsonType}, headers...)...)
	if res.status != http.StatusCreated {
		r.t.Fatalf("POST %s: %d %s", sender, res.status, res.body)
	}
	return res
}
