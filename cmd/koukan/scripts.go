package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/dns"
	"github.com/koukan/koukan/engine/httpapi"
	"github.com/koukan/koukan/engine/metrics"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/luabind"
	"github.com/koukan/koukan/scripts"
)

// scriptSources are where a router config finds scripts, in order: its directories, then
// the library shipped in the binary.
func scriptSources(c config.Scripts) []luabind.Source {
	var out []luabind.Source
	for _, dir := range c.Paths {
		out = append(out, luabind.Source{Name: dir, FS: os.DirFS(dir)})
	}
	if c.Builtin {
		out = append(out, luabind.Source{Name: "builtin", FS: scripts.FS})
	}
	return out
}

// startScripts loads the router's Lua runtime, checked against cfg, and keeps it up to
// date: on file changes when scripts.reload is on, and on SIGHUP, until ctx ends.
func startScripts(ctx context.Context, cfg *config.Router, log *slog.Logger) (*luabind.Runtime, error) {
	res, err := dns.New(dns.Options{Servers: cfg.DNS.Servers, Timeout: cfg.DNS.Timeout})
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	rt, err := luabind.New(luabind.Options{
		Sources:     scriptSources(cfg.Scripts),
		CallTimeout: cfg.Scripts.CallTimeout,
		PoolSize:    cfg.Scripts.PoolSize,
		MaxUses:     cfg.Scripts.MaxUses,
		Modules:     cfg.Modules,
		Check:       func(lib *luabind.Library) luabind.Findings { return luabind.CheckConfig(cfg, lib) },
		Log:         log,
		Services:    luabind.Services{Resolver: res},
	})
	if err != nil {
		return nil, err
	}
	if cfg.Scripts.Reload {
		go func() {
			if err := rt.Watch(ctx, cfg.Scripts.Paths, cfg.Scripts.PollInterval); err != nil {
				log.Error("script hot reload is off", "err", err)
			}
		}()
	}
	onHangup(ctx, rt.ReloadNow)
	return rt, nil
}

// onHangup runs reload on each SIGHUP until ctx ends.
func onHangup(ctx context.Context, reload func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload()
			}
		}
	}()
}

// withOps serves, next to the router's API, what operators and orchestrators ask:
// GET /admin/scripts (the loaded script version and the last reload error), GET /healthz
// (the process answers), GET /readyz (the database answers and scripts are loaded) and
// GET /metrics (Prometheus); it counts every request by route and status.
func withOps(api http.Handler, rt *luabind.Runtime, st store.Store) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.Handle("GET /metrics", metrics.Handler())
	mux.HandleFunc("GET /admin/scripts", func(w http.ResponseWriter, _ *http.Request) {
		st := rt.Status()
		httpapi.WriteJSONLine(w, http.StatusOK, struct {
			luabind.Status
			Calls    int64 `json:"calls"`
			Errors   int64 `json:"errors"`
			Timeouts int64 `json:"timeouts"`
		}{st, rt.Stats.Calls.Load(), rt.Stats.Errors.Load(), rt.Stats.Timeouts.Load()})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSONLine(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		switch {
		case st.Ping(ctx) != nil:
			httpapi.WriteJSONLine(w, http.StatusServiceUnavailable, map[string]string{"status": "the database does not answer"})
		case rt.Status().Hash == "":
			httpapi.WriteJSONLine(w, http.StatusServiceUnavailable, map[string]string{"status": "no scripts loaded"})
		default:
			httpapi.WriteJSONLine(w, http.StatusOK, map[string]string{"status": "ready"})
		}
	})
	return metrics.CountRequests(mux)
}
