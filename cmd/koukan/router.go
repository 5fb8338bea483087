package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/admin"
	"github.com/koukan/koukan/engine/builtin"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/metrics"
	"github.com/koukan/koukan/engine/router"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/store/backends"
	"github.com/koukan/koukan/luabind"
)

var routerCmd = &command{
	name:    "router",
	summary: "run the router: REST API, durable storage, retries, DSNs, Lua chains",
	usage:   "--config router.yaml",
	help: `Runs the router: the REST/JSON transaction API that applications and the gateway call,
backed by durable SQL storage (SQLite or PostgreSQL). The config is router.yaml in the
reference format (see config/testdata/good/router.yaml). SIGINT or SIGTERM shuts it down
cleanly, releasing its leases.

Transactions are handed to their sender's output chain at once and retried per its
retry_params. Chain steps other than the Go built-ins are Lua scripts, searched in
scripts.paths (default: scripts/ next to the config); they are reloaded when they change
or on SIGHUP, and GET /admin/scripts shows the loaded version. An api_keys_file is
re-read the same ways.

Operators list, retry and cancel queued transactions and suspend destination domains
under /admin/ (koukan queue wraps it; see docs/admin.md), and GET /ui is a status page.`,
	flags: func(fs *flag.FlagSet, out *output) func() int {
		path := fs.String("config", "router.yaml", "router config `file`")
		logFormat := fs.String("log-format", "text", "log format: text or json")
		sessionURI := fs.String("session-uri", "", "this replica's own `URL`, overriding rest_listener.session_uri: replicas\nsharing one config each pass theirs (on Kubernetes: http://$(POD_IP):8000)")
		return func() int { return out.runRouter(*path, *logFormat, *sessionURI) }
	},
}

func (o *output) runRouter(path, logFormat, sessionURI string) int {
	cfg, warns, err := config.LoadRouter(path)
	if err != nil {
		fmt.Fprintf(o.stderr, "koukan router: %v\n", err)
		return 1
	}
	if sessionURI != "" {
		if u, err := url.Parse(sessionURI); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fmt.Fprintf(o.stderr, "koukan router: --session-uri %q: want an http:// or https:// URL\n", sessionURI)
			return 2
		}
		if cfg.RestListener.ServiceURI == cfg.RestListener.SessionURI {
			cfg.RestListener.ServiceURI = sessionURI
		}
		cfg.RestListener.SessionURI = sessionURI
	}
	log := newLogger(o, logFormat, cfg.Logging.Level, warns)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed := make(chan error, 2)
	r, err := startRouter(ctx, cfg, log, nil, failed)
	if err != nil {
		log.Error("starting the router", "err", err)
		return 1
	}
	status := untilStopped(ctx, log, failed)
	stop()
	r.shutdown()
	return status
}

// routerRun is a running router: storage, scripts, the service and its HTTP server.
type routerRun struct {
	log     *slog.Logger
	st      store.Store
	scripts *luabind.Runtime
	svc     *router.Service
	srv     *http.Server
	unlocal func()
}

// startRouter opens storage, loads the scripts and serves the API until ctx ends; koukan
// router and koukan serve share it. extra, if not nil, serves further routes next to the
// API (the local mailbox of serve). A part that stops on its own reports to failed.
func startRouter(ctx context.Context, cfg *config.Router, log *slog.Logger, extra map[string]http.Handler, failed chan<- error) (*routerRun, error) {
	tlsConf, keys, err := restSecurity(ctx, cfg.RestListener.Listener, cfg.RestListener.RestAuth, log)
	if err != nil {
		return nil, fmt.Errorf("rest_listener: %w", err)
	}
	if err := builtin.CheckEndpoints(cfg); err != nil {
		return nil, err
	}
	st, err := backends.Open(ctx, cfg.Storage.Location, store.Options{
		SessionURI: cfg.RestListener.SessionURI, ChunkSize: cfg.RestListener.ChunkSize,
	})
	if err != nil {
		return nil, fmt.Errorf("opening storage: %w", err)
	}
	scripts, err := startScripts(ctx, cfg, log)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("loading scripts: %w", err)
	}
	r := &routerRun{log: log, st: st, scripts: scripts}
	if err := metrics.WatchQueue(st.QueueDomains); err != nil {
		log.Warn("queue metrics", "err", err)
	}
	r.svc = router.New(cfg, st, chain.Either(builtin.New(builtin.Options{Config: cfg, Policies: scripts, Log: log}), scripts), log)
	addr := hostPort(cfg.RestListener.Addr)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		scripts.Close()
		st.Close()
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	adm := admin.New(admin.Options{Store: st, Transactions: r.svc, Scripts: adminScripts(scripts), Log: log})
	go adm.Run(ctx)
	api := http.NewServeMux()
	api.Handle("/", r.svc.Handler())
	api.Handle("/admin/", adm.Handler())
	api.Handle("/ui", adm.Handler())
	handler := withOps(api, scripts, st)
	if len(extra) > 0 {
		mux := http.NewServeMux()
		mux.Handle("/", handler)
		for pattern, h := range extra {
			mux.Handle(pattern, h)
		}
		handler = mux
	}
	r.srv = &http.Server{Handler: guarded(handler, keys, r.svc.TxSender, log), TLSConfig: tlsConf,
		ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	r.unlocal = serveLocally(r.srv.Handler, tlsConf, ln, addr)
	go func() {
		if err := serveHTTP(r.srv, ln); !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("router http server: %w", err)
		}
	}()
	go func() {
		if err := r.svc.Run(ctx); err != nil {
			failed <- fmt.Errorf("router: %w", err)
		}
	}()
	log.Info("router listening", "addr", ln.Addr().String(), "session_uri", cfg.RestListener.SessionURI,
		"storage", string(cfg.Storage.Location.Backend))
	return r, nil
}

// adminScripts reports the loaded scripts to the status page.
func adminScripts(rt *luabind.Runtime) func() admin.Scripts {
	return func() admin.Scripts {
		st := rt.Status()
		out := admin.Scripts{Hash: st.Hash, LoadedAt: st.LoadedAt, LastAttempt: st.LastAttempt, LastError: st.LastError}
		for _, s := range st.Scripts {
			out.Scripts = append(out.Scripts, admin.Script{Kind: s.Kind, Name: s.Name, File: s.File})
		}
		return out
	}
}

// shutdown drains output handlers and requests (10 s at most), then closes storage, which
// releases this replica's leases.
func (r *routerRun) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.unlocal()
	r.svc.Shutdown(ctx)
	if err := r.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		r.log.Warn("http shutdown", "err", err)
	}
	r.scripts.Close()
	r.st.Close()
}

// newLogger makes the command's logger and logs the config's warnings with it.
func newLogger(o *output, format string, level slog.Level, warns config.Warnings) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var log *slog.Logger
	if format == "json" {
		log = slog.New(slog.NewJSONHandler(o.stderr, opts))
	} else {
		log = slog.New(slog.NewTextHandler(o.stderr, opts))
	}
	for _, w := range warns {
		log.Warn("config: " + w.String())
	}
	return log
}

// untilStopped waits for the signal that stops the command (ctx) or for a part that stopped
// on its own, and returns the exit status: 0, or 1 after a failure.
func untilStopped(ctx context.Context, log *slog.Logger, failed <-chan error) int {
	select {
	case <-ctx.Done():
		log.Info("shutting down")
		return 0
	case err := <-failed:
		log.Error("stopped", "err", err)
		return 1
	}
}
