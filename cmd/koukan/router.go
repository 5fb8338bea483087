package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/builtin"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/router"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/store/backends"
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
or on SIGHUP, and GET /admin/scripts shows the loaded version.`,
	flags: func(fs *flag.FlagSet, out *output) func() int {
		path := fs.String("config", "router.yaml", "router config `file`")
		logFormat := fs.String("log-format", "text", "log format: text or json")
		return func() int { return out.runRouter(*path, *logFormat) }
	},
}

func (o *output) runRouter(path, logFormat string) int {
	cfg, warns, err := config.LoadRouter(path)
	if err != nil {
		fmt.Fprintf(o.stderr, "koukan router: %v\n", err)
		return 1
	}
	log := newLogger(o, logFormat, cfg.Logging.Level)
	for _, w := range warns {
		log.Warn("config: " + w.String())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := backends.Open(ctx, cfg.Storage.Location, store.Options{
		SessionURI: cfg.RestListener.SessionURI, ChunkSize: cfg.RestListener.ChunkSize,
	})
	if err != nil {
		log.Error("opening storage", "err", err)
		return 1
	}
	defer st.Close()
	scripts, err := startScripts(ctx, cfg, log)
	if err != nil {
		log.Error("loading scripts", "err", err)
		return 1
	}
	defer scripts.Close()
	svc := router.New(cfg, st, chain.Either(builtin.New(builtin.Options{Config: cfg, Policies: scripts, Log: log}), scripts), log)
	addr := net.JoinHostPort(cfg.RestListener.Addr.Host, strconv.Itoa(cfg.RestListener.Addr.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("listening", "addr", addr, "err", err)
		return 1
	}
	srv := &http.Server{Handler: withScriptAdmin(svc.Handler(), scripts), ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() {
		if cfg.RestListener.Cert != "" {
			served <- srv.ServeTLS(ln, cfg.RestListener.Cert, cfg.RestListener.Key)
		} else {
			served <- srv.Serve(ln)
		}
	}()
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()
	log.Info("router listening", "addr", ln.Addr().String(), "session_uri", cfg.RestListener.SessionURI,
		"storage", string(cfg.Storage.Location.Backend))

	status := 0
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-served:
		log.Error("http server stopped", "err", err)
		status = 1
	case err := <-ran:
		log.Error("router stopped", "err", err)
		status = 1
	}
	stop()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	svc.Shutdown(shutdownCtx)
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn("http shutdown", "err", err)
	}
	return status
}

func newLogger(o *output, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(o.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(o.stderr, opts))
}
