package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/store"
)

const (
	minimalListener = "rest_listener: {addr: [localhost, 8000], session_uri: 'http://localhost:8000'}\n"
	minimalStorage  = "storage: {url: 'sqlite:///r.db'}\n"
)

// parseRouter parses a router config made of extra plus whatever of the required sections
// extra leaves out.
func parseRouter(t *testing.T, extra string) *Router {
	t.Helper()
	src := extra
	if !strings.Contains(extra, "rest_listener:") {
		src = minimalListener + src
	}
	if !strings.Contains(extra, "storage:") {
		src = minimalStorage + src
	}
	r, _, err := ParseRouter("t.yaml", []byte(src))
	if err != nil {
		t.Fatalf("%v\nin:\n%s", err, src)
	}
	return r
}

func TestRouterDefaults(t *testing.T) {
	thirty, day := 30, 24*time.Hour
	defaultRetry := &RetryParams{MaxAttempts: &thirty, MinAttemptTime: time.Minute, MaxAttemptTime: time.Hour,
		BackoffFactor: 1.5, Deadline: &day, BugRetry: time.Hour}
	const chain = "endpoint: [{name: e, %s chain: [{filter: %s}]}]\n"
	endpoint := func(outputHandler, step string) string {
		return strings.Replace(strings.Replace(chain, "%s", outputHandler, 1), "%s", step, 1)
	}
	for _, c := range []struct {
		name, yaml string
		get        func(r *Router) any
		want       any
	}{
		{"global", "", func(r *Router) any { return r.Global },
			RouterGlobal{Dequeue: true, Executor: RouterExecutors{Executor{256}}, RestIDEntropy: 16}},
		{"yes and no as booleans, as PyYAML reads them", "global: {dequeue: no}", func(r *Router) any { return r.Global.Dequeue }, false},
		{"rest_listener", "", func(r *Router) any { return r.RestListener },
			RestListener{Listener: Listener{Addr: HostPort{"localhost", 8000}}, SessionURI: "http://localhost:8000", ServiceURI: "http://localhost:8000", ChunkSize: 1 << 20, MaxBodySize: 64 << 20}},
		{"service_uri", minimalListener[:len(minimalListener)-2] + ", service_uri: 'https://koukan.example.com'}",
			func(r *Router) any { return r.RestListener.ServiceURI }, "https://koukan.example.com"},
		{"storage", "", func(r *Router) any { return r.Storage },
			Storage{Location: store.Location{Backend: store.SQLite, Path: "r.db"}, SessionRefreshInterval: 30 * time.Second,
				GCTTL: 24 * time.Hour, BlobTxRefreshInterval: 10 * time.Second}},
		{"gc_interval null is off", "storage: {url: 'sqlite:///r.db', gc_interval: null}", func(r *Router) any { return r.Storage.GCInterval }, time.Duration(0)},
		{"gc_interval 0 is off", "storage: {url: 'sqlite:///r.db', gc_interval: 0}", func(r *Router) any { return r.Storage.GCInterval }, time.Duration(0)},
		{"fractional seconds", "storage: {url: 'sqlite:///r.db', gc_interval: 2.5}", func(r *Router) any { return r.Storage.GCInterval }, 2500 * time.Millisecond},
		{"no output_handler", endpoint("", "rest_output"), func(r *Router) any { return r.Endpoint("e").OutputHandler },
			OutputHandler{DownstreamTimeout: time.Minute, UpstreamRefresh: 30 * time.Second}},
		{"retry_params {} has the defaults", endpoint("output_handler: {retry_params: {}},", "rest_output"),
			func(r *Router) any { return r.Endpoint("e").OutputHandler.RetryParams }, defaultRetry},
		{"retry_params null means no retries", endpoint("output_handler: {retry_params: null},", "rest_output"),
			func(r *Router) any { return r.Endpoint("e").OutputHandler.RetryParams }, (*RetryParams)(nil)},
		{"max_attempts and deadline null disable the checks", endpoint("output_handler: {retry_params: {max_attempts: null, deadline: null}},", "rest_output"),
			func(r *Router) any {
				rp := r.Endpoint("e").OutputHandler.RetryParams
				return []any{rp.MaxAttempts, rp.Deadline}
			},
			[]any{(*int)(nil), (*time.Duration)(nil)}},
		{"rest_output", endpoint("", "rest_output"), func(r *Router) any { return *r.Endpoint("e").Chain[0].RestOutput },
			RestOutputStep{RcptTimeout: 30 * time.Second, DataTimeout: 300 * time.Second}},
		{"exploder for submission", endpoint("", "exploder, msa: true"), func(r *Router) any { return *r.Endpoint("e").Chain[0].Exploder },
			ExploderStep{MSA: true, RcptTimeout: 5 * time.Second, DataTimeout: 30 * time.Second}},
		{"exploder for ingress", endpoint("", "exploder"), func(r *Router) any { return *r.Endpoint("e").Chain[0].Exploder },
			ExploderStep{RcptTimeout: 30 * time.Second, DataTimeout: 300 * time.Second}},
		{"exploder timeouts", endpoint("", "exploder, msa: true, rcpt_timeout: 7"), func(r *Router) any { return *r.Endpoint("e").Chain[0].Exploder },
			ExploderStep{MSA: true, RcptTimeout: 7 * time.Second, DataTimeout: 30 * time.Second}},
		{"receive_parsing null parses with the default budget",
			"rest_endpoint: [{name: r, endpoint: 'http://r.example.com/', sender: s, options: {receive_parsing: }}]",
			func(r *Router) any { return r.RestEndpoint("r").Options }, EndpointOptions{ReceiveParsing: true, MaxInline: 65536}},
		{"tags override the sender; upstream defaults to the sender and tag",
			"sender: [{name: s, output_chain: e, retry: output_chain, tag: [{name: t}, {name: u, retry: null}]}]\n" +
				endpoint("output_handler: {retry_params: {}},", "rest_output"),
			func(r *Router) any {
				s := r.Sender("s")
				return []SenderSettings{s.SenderSettings, s.Tags[0].SenderSettings, s.Tags[1].SenderSettings}
			},
			[]SenderSettings{
				{OutputChain: "e", Retry: true, UpstreamSender: "s"},
				{OutputChain: "e", Retry: true, UpstreamSender: "s", UpstreamTag: "t"},
				{OutputChain: "e", UpstreamSender: "s", UpstreamTag: "u"},
			}},
		{"merge keys", "endpoint: [{name: e, chain: [{<<: {filter: dkim_sign, domain: example.com}, selector: s1}, {filter: rest_output}]}]",
			func(r *Router) any { return r.Endpoint("e").Chain[0].Options["domain"].Plain() }, "example.com"},
		{"no logging", "", func(r *Router) any { return r.Logging.Level }, slog.LevelInfo},
		{"root level", "logging: {version: 1, root: {level: error}}", func(r *Router) any { return r.Logging.Level }, slog.LevelError},
		{"root as the logger named empty", "logging: {loggers: {'': {level: CRITICAL}, hpack: {level: DEBUG}}}",
			func(r *Router) any { return r.Logging.Level }, slog.Level(12)},
		{"numeric level", "logging: {root: {level: 10}}", func(r *Router) any { return r.Logging.Level }, slog.LevelDebug},
		{"any dictConfig structure", "logging: {version: 1, filters: {f: {'()': x.y}}, handlers: {h: {class: x, args: [1, [2]]}}}",
			func(r *Router) any { return r.Logging.Level }, slog.LevelInfo},
	} {
		t.Run(c.name, func(t *testing.T) { check(t, c.name, c.get(parseRouter(t, c.yaml)), c.want) })
	}
}

func TestGatewayDefaults(t *testing.T) {
	g, _, err := ParseGateway("g.yaml", []byte(`
rest_listener: {addr: [localhost, 8001], session_uri: 'http://localhost:8001'}
smtp_output: {hosts: {outbound: {ehlo_host: mx.example.com}, slow: {ehlo_host: mx.example.com, data_timeout: 600}}}
smtp_listener: {services: [{addr: [localhost, 25], endpoint: r}]}
rest_output: [{name: r, endpoint: 'http://localhost:8000/'}, {name: big, endpoint: 'http://localhost:8000/', chunk_size: 100}]
`))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "rest_listener", *g.RestListener, GatewayRestListener{
		Listener: Listener{Addr: HostPort{"localhost", 8001}}, SessionURI: "http://localhost:8001", RestIDEntropy: 16,
		GCInterval: 5 * time.Second, GCTxTTL: 600 * time.Second, GCDoneTTL: 10 * time.Second,
	})
	check(t, "smtp host", g.SMTPHosts["outbound"], SMTPHost{EHLOHost: "mx.example.com", Timeout: 3300 * time.Second, DataTimeout: 240 * time.Second,
		Protocol: "smtp", ChunkSize: 65536, MaxReuse: 100, ReuseIdle: 5 * time.Second})
	check(t, "data_timeout", g.SMTPHosts["slow"].DataTimeout, 600*time.Second)
	check(t, "service", g.SMTPServices[0], SMTPService{Listener: Listener{Addr: HostPort{"localhost", 25}}, Endpoint: "r",
		RcptTimeout: 40 * time.Second, DataTimeout: 310 * time.Second, MaxMessageSize: 32 << 20, MaxRecipients: 1000,
		MaxConnections: 1000, MaxConnectionsPerIP: 20, MaxErrors: 10, CommandTimeout: 5 * time.Minute, IdleTimeout: 5 * time.Minute,
		MaxAuthFailures: 5, AuthFailureWindow: 15 * time.Minute, AuthFailureDelay: time.Second})
	check(t, "rest_output chunk sizes", []int{g.RestOutputs[0].ChunkSize, g.RestOutputs[1].ChunkSize}, []int{64 << 10, 100})
	check(t, "rest_output timeouts", []time.Duration{g.RestOutputs[0].RcptTimeout, g.RestOutputs[0].DataTimeout},
		[]time.Duration{30 * time.Second, 60 * time.Second})
	check(t, "verify", g.RestOutputs[0].Verify, TLSVerify{})
}
