package config

import (
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/store"
)

func loadGood[T any](t *testing.T, load func(string) (*T, Warnings, error), file string, wantWarnings ...string) *T {
	t.Helper()
	c, warns, err := load("testdata/good/" + file)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if got, want := warns.String(), strings.Join(wantWarnings, "\n"); got != want {
		t.Errorf("%s warnings:\n%s\nwant:\n%s", file, got, want)
	}
	return c
}

func check(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func settings(t *testing.T, r *Router, sender, tag string) *SenderSettings {
	t.Helper()
	s := r.Sender(sender)
	if s == nil {
		t.Fatalf("no sender %q", sender)
	}
	st, ok := s.ForTag(tag)
	if !ok {
		t.Fatalf("sender %q has no tag %q", sender, tag)
	}
	return st
}

func TestGoodRouter(t *testing.T) {
	const f = "testdata/good/router.yaml:"
	r := loadGood(t, LoadRouter, "router.yaml",
		f+`8:5: global.executor: key "rest" is ignored (REST requests are goroutines bounded by the listener, not a pool)`,
		f+`11:7: global.executor.output: key "watchdog_timeout" is ignored (the chain's timeouts bound each attempt)`,
		f+`14:3: global: key "gc_interval" is ignored (garbage collection is set by storage.gc_interval)`,
		f+`15:3: global: key "tx_idle_timeout" is ignored (the reference never read it)`,
		f+`36:5: sender[ingress].tag[short_circuit]: key "remote_host" is ignored (Koukan does not forge where a message came from)`,
		f+`37:5: sender[ingress].tag[short_circuit]: key "smtp_meta" is ignored (Koukan does not forge where a message came from)`,
		f+`82:3: endpoint[submission_exploder]: key "msa" is ignored (set msa on the chain's exploder step)`,
		f+`110:5: endpoint[submission_exploder].chain[3]: key "output_chain" is ignored (recipients run the output_chain of the sender's upstream_sender and upstream_tag)`,
		f+`187:5: endpoint[submission].chain[15]: key "static_remote_host" is ignored (the remote host comes from the routing resolution)`,
		f+`251:9: endpoint[ingress].chain[2].policy.prefixes[0]: the {base: "alice"} form was ignored by the reference; it is read as the prefix "alice" (write it as a plain string)`,
		f+`279:5: endpoint[ingress].chain[7]: key "overwrite" is ignored (resolved addresses always replace the host name)`,
	)

	check(t, "global", r.Global, RouterGlobal{
		Dequeue:             true,
		Executor:            RouterExecutors{Output: Executor{100}},
		MailerDaemonMailbox: "mailer-daemon@example.com",
		RestIDEntropy:       12,
	})
	check(t, "rest_listener", r.RestListener, RestListener{
		Listener:   Listener{Addr: HostPort{"localhost", 8000}},
		SessionURI: "http://localhost:8000",
		ServiceURI: "http://localhost:8000",
		ChunkSize:  1 << 20, MaxBodySize: 64 << 20,
	})
	check(t, "storage", r.Storage, Storage{
		Location:               store.Location{Backend: store.SQLite, Path: "router.db"},
		SessionRefreshInterval: time.Second,
		GCInterval:             30 * time.Second,
		GCTTL:                  time.Hour,
		BlobTxRefreshInterval:  10 * time.Second,
	})

	type want struct {
		chain               string
		retry, notification bool
		upSender, upTag     string
	}
	for _, c := range []struct {
		sender, tag string
		want        want
	}{
		{"ingress", "", want{"ingress", false, false, "ingress", ""}},
		{"ingress", "smtp-mx", want{"ingress_exploder", false, false, "ingress", "smtp-mx-upstream"}},
		{"ingress", "smtp-mx-upstream", want{"ingress", false, false, "ingress", "smtp-mx-upstream"}},
		{"submission", "", want{"submission", true, true, "submission", ""}},
		{"submission", "smtp-msa", want{"submission_exploder", false, false, "submission", "smtp-msa-upstream"}},
		{"submission", "smtp-msa-upstream", want{"submission", false, false, "submission", "smtp-msa-upstream"}},
		{"submission", "notification", want{"submission", true, true, "submission", "notification"}},
		{"sor", "", want{"sink", false, false, "sor", ""}},
	} {
		st := settings(t, r, c.sender, c.tag)
		check(t, c.sender+"/"+c.tag, want{st.OutputChain, st.Retry, st.Notification, st.UpstreamSender, st.UpstreamTag}, c.want)
	}
	if _, ok := r.Sender("ingress").ForTag("no-such-tag"); ok {
		t.Error("ForTag found a tag that is not there")
	}

	check(t, "rest_endpoint receiver", *r.RestEndpoint("receiver"), RestEndpoint{
		Name: "receiver", Pos: Position{"testdata/good/router.yaml", 62, 3},
		URL: "https://app.example.com/koukan/transactions", Sender: "router",
		Options: EndpointOptions{SendFilterOutput: true},
	})
	check(t, "rest_endpoint sink options", r.RestEndpoint("sink").Options, EndpointOptions{ReceiveParsing: true})

	// submission_exploder: an incremental chain whose exploder follows the msa rules.
	se := r.Endpoint("submission_exploder")
	check(t, "submission_exploder output_handler", se.OutputHandler, OutputHandler{DownstreamTimeout: 5 * time.Second, UpstreamRefresh: time.Second})
	check(t, "submission_exploder incremental", se.EndsInExploder(), true)
	check(t, "submission_exploder exploder", *se.Chain[3].Exploder, ExploderStep{MSA: true, RcptTimeout: 300 * time.Second, DataTimeout: 300 * time.Second})
	check(t, "weighted action", se.Chain[2].Options["action"].Plain(), []any{[]any{1, "LOG"}, []any{0, "REJECT"}})

	// submission: retries without a deadline, DSNs, routers, Lua steps, rest_output.
	sub := r.Endpoint("submission")
	three := 3
	check(t, "submission retry_params", *sub.OutputHandler.RetryParams, RetryParams{
		MaxAttempts: &three, MinAttemptTime: 2 * time.Second, MaxAttemptTime: 5 * time.Second,
		BackoffFactor: 1.5, BugRetry: time.Hour,
	})
	check(t, "submission notification", *sub.OutputHandler.Notification, Notification{Sender: "submission", Tag: "notification"})
	check(t, "submission incremental", sub.EndsInExploder(), false)
	anchored := sub.Chain[0] // *valid_mail_from: the step written in submission_exploder
	check(t, "aliased step", []any{anchored.Filter, anchored.Pos, anchored.Options["code"].Plain(), anchored.Options["match"].Plain()},
		[]any{"policy_action", Position{"testdata/good/router.yaml", 87, 5}, 501, map[string]any{"matcher": "invalid_mail_from"}})
	check(t, "option positions", []Position{anchored.Options["code"].KeyPos, anchored.Options["code"].Pos},
		[]Position{{"testdata/good/router.yaml", 92, 5}, {"testdata/good/router.yaml", 92, 11}})
	check(t, "builtin", []bool{anchored.Builtin(), sub.Chain[4].Builtin()}, []bool{false, true})
	check(t, "message_builder", sub.Chain[4], Step{Filter: "message_builder", Pos: Position{"testdata/good/router.yaml", 138, 5}})
	hello := sub.Chain[6].Router
	check(t, "plugin policy", []any{hello.Policy.Name, hello.Policy.Destination, hello.Policy.Options, hello.DryRun, hello.Destination},
		[]any{"hello", (*Destination)(nil), map[string]Value{}, false, (*Destination)(nil)})
	own := sub.Chain[7].Router.Policy
	check(t, "address_list policy", []any{own.Name, own.Options["domains"].Plain(), *own.Destination},
		[]any{"address_list", []any{"example.com", "rest-application.example.com"},
			Destination{Pos: Position{"testdata/good/router.yaml", 149, 9}, Endpoint: "short_circuit"}})
	check(t, "dest_domain policy", []any{sub.Chain[8].Router.Policy.Options["dest_port"].Plain(), sub.Chain[8].Router.Policy.Destination.Endpoint},
		[]any{25, "gateway"})
	check(t, "catch-all router", *sub.Chain[9].Router, RouterStep{})
	check(t, "dkim_sign options", sub.Chain[10].Options["selector"].Plain(), "sel")
	check(t, "static_hosts", sub.Chain[12].Options["static_hosts"].Plain(), []any{map[string]any{"host": "127.0.0.1", "port": 3025}})
	check(t, "submission rest_output", *sub.Chain[15].RestOutput, RestOutputStep{
		RcptTimeout: 300 * time.Second, DataTimeout: 300 * time.Second, ChunkSize: 1 << 20, Verify: TLSVerify{CAFile: "localhost.crt"},
	})

	// ingress_exploder: dry-run routers and the ingress exploder's default timeouts.
	ie := r.Endpoint("ingress_exploder")
	check(t, "dry run with placeholder destination", []any{ie.Chain[3].Router.DryRun, ie.Chain[3].Router.Policy.Destination}, []any{true, (*Destination)(nil)})
	check(t, "ingress exploder", *ie.Chain[len(ie.Chain)-1].Exploder, ExploderStep{RcptTimeout: 30 * time.Second, DataTimeout: 300 * time.Second})

	// ingress: default retry params, destinations with options merged over their rest_endpoint's.
	in := r.Endpoint("ingress")
	thirty, day := 30, 24*time.Hour
	check(t, "ingress retry_params", *in.OutputHandler.RetryParams, RetryParams{
		MaxAttempts: &thirty, MinAttemptTime: time.Minute, MaxAttemptTime: time.Hour, BackoffFactor: 1.5, Deadline: &day, BugRetry: time.Hour,
	})
	gw := in.Chain[2].Router.Policy
	check(t, "prefixes with {base}", gw.Options["prefixes"].Plain(), []any{"alice", "bob"})
	check(t, "host_list", gw.Destination.HostList, []HostPort{{"fake_smtpd", 3025}, {"backup.example.com", 25}})
	check(t, "receiver destination options", in.Chain[3].Router.Policy.Destination.Options,
		EndpointOptions{ReceiveParsing: true, MaxInline: 65536, SendFilterOutput: true})
	check(t, "add_route", *in.Chain[5].AddRoute, AddRouteStep{Sender: "sor", StoreAndForward: true})
	if _, ok := in.Chain[7].Options["overwrite"]; ok {
		t.Error("the ignored dns_resolution.overwrite is among the options")
	}
	check(t, "verify false", in.Chain[8].RestOutput.Verify, TLSVerify{Off: true})

	sink := r.Endpoint("sink")
	check(t, "sink destination options", sink.Chain[0].Router.Policy.Destination.Options,
		EndpointOptions{ReceiveParsing: true, MaxInline: 0, SendFilterOutput: true})
	check(t, "sink rest_output", *sink.Chain[2].RestOutput, RestOutputStep{RcptTimeout: 30 * time.Second, DataTimeout: 300 * time.Second, ChunkSize: 1 << 20})

	check(t, "modules", r.Modules, Modules{
		SyncFilter:            map[string]string{"hello": "koukan.hello_filter"},
		RecipientRouterPolicy: map[string]string{"hello": "koukan.hello_policy"},
		TransactionMatcher:    map[string]string{"match_hello": "koukan.hello_matcher:match"},
	})
	check(t, "logging", r.Logging, Logging{Level: slog.LevelWarn})
}

func TestGoodGateway(t *testing.T) {
	const f = "testdata/good/gateway.yaml:"
	g := loadGood(t, LoadGateway, "gateway.yaml",
		f+`4:3: global: key "executor" is ignored (the router's global.executor.output.max_inflight bounds deliveries)`,
		f+`13:3: rest_listener: key "chunk_size" is ignored (uploads stream to the SMTP client as they arrive)`,
		f+`16:3: smtp_output: key "use_system_smtplib" is ignored (it has no effect: Koukan has one SMTP client)`,
		f+`40:5: smtp_listener.services[1]: key "enable_bdat" is ignored (CHUNKING is always offered)`,
		f+`41:5: smtp_listener.services[1]: key "chunk_size" is ignored (the message goes to the router in pieces of its rest_output's chunk_size)`,
		f+`59:3: rest_output[mx]: key "refresh_interval" is ignored (each piece of the message is passed on as it arrives)`)
	check(t, "rest_listener", *g.RestListener, GatewayRestListener{
		Listener:   Listener{Addr: HostPort{"::0", 8001}},
		SessionURI: "http://localhost:8001", RestIDEntropy: 16,
		GCInterval: 5 * time.Second, GCTxTTL: 300 * time.Second, GCDoneTTL: 10 * time.Second,
	})
	check(t, "smtp hosts", g.SMTPHosts, map[string]SMTPHost{
		"outbound": {EHLOHost: "mx.example.com", Timeout: 3300 * time.Second, DataTimeout: 240 * time.Second, Protocol: "smtp", EnableBDAT: true,
			ChunkSize: 65536, MaxReuse: 100, ReuseIdle: 5 * time.Second},
		"mailbox": {EHLOHost: "localhost", Timeout: 30 * time.Second, DataTimeout: 240 * time.Second, Protocol: "lmtp", ChunkSize: 65536,
			MaxReuse: 100, ReuseIdle: 5 * time.Second},
	})
	limits := func(s SMTPService) SMTPService {
		s.MaxMessageSize, s.MaxRecipients, s.MaxConnections, s.MaxConnectionsPerIP, s.MaxErrors = 32<<20, 1000, 1000, 20, 10
		s.CommandTimeout, s.IdleTimeout = 5*time.Minute, 5*time.Minute
		s.MaxAuthFailures, s.AuthFailureWindow, s.AuthFailureDelay = 5, 15*time.Minute, time.Second
		return s
	}
	check(t, "services", g.SMTPServices, []SMTPService{
		limits(SMTPService{Listener: Listener{Addr: HostPort{"localhost", 1025}}, Endpoint: "mx", Sender: "ingress", Tag: "smtp-mx",
			ProxyProtocolTimeout: 2500 * time.Millisecond, RcptTimeout: 40 * time.Second, DataTimeout: 310 * time.Second}),
		limits(SMTPService{Listener: Listener{HostPort{"localhost", 1587}, "localhost.crt", "localhost.key"}, Endpoint: "msa", Sender: "submission", Tag: "smtp-msa",
			AuthSecrets: "secrets.json", RcptTimeout: 40 * time.Second, DataTimeout: 310 * time.Second}),
		limits(SMTPService{Listener: Listener{HostPort{"localhost", 1465}, "localhost.crt", "localhost.key"}, Endpoint: "msa", Sender: "submission", Tag: "smtp-msa",
			SMTPS: true, RcptTimeout: 300 * time.Second, DataTimeout: 300 * time.Second}),
	})
	check(t, "rest_output", g.RestOutputs, []RestOutput{
		{Name: "mx", Pos: Position{"testdata/good/gateway.yaml", 53, 3}, URL: "http://localhost:8000/senders/ingress/transactions",
			Verify: TLSVerify{CAFile: "localhost.crt"}, RcptTimeout: 300 * time.Second, DataTimeout: 300 * time.Second,
			ChunkSize: 1 << 20},
		{Name: "msa", Pos: Position{"testdata/good/gateway.yaml", 60, 3}, URL: "http://localhost:8000/senders/submission/transactions",
			RcptTimeout: 30 * time.Second, DataTimeout: 60 * time.Second, ChunkSize: 64 << 10},
	})
	check(t, "logging (most verbose handler)", g.Logging, Logging{Level: slog.LevelDebug})
}

func TestGoodServe(t *testing.T) {
	s := loadGood(t, LoadServe, "serve.yaml")
	r, g := s.Router, s.Gateway
	check(t, "storage", r.Storage.Location, store.Location{Backend: store.Postgres, DSN: "postgres://koukan@/koukan?host=/var/run/postgresql"})
	check(t, "mailbox", r.Global.MailerDaemonMailbox, "postmaster@example.com")
	check(t, "exploder upstream", settings(t, r, "submission", "smtp-msa").UpstreamTag, "one")
	check(t, "unlimited attempts", r.Endpoint("submission").OutputHandler.RetryParams.MaxAttempts, (*int)(nil))
	check(t, "notification without tag", *r.Endpoint("submission").OutputHandler.Notification, Notification{Sender: "submission"})
	check(t, "gateway service", g.SMTPServices[0].Endpoint, "router")
	check(t, "logging", []Logging{r.Logging, g.Logging}, []Logging{{slog.LevelInfo}, {slog.LevelInfo}})
}
