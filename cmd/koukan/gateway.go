package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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
	"github.com/koukan/koukan/engine/gateway/inbound"
	"github.com/koukan/koukan/engine/gateway/outbound"
	"github.com/koukan/koukan/engine/httpapi"
	"github.com/koukan/koukan/engine/httpauth"
	"github.com/koukan/koukan/engine/metrics"
	"github.com/koukan/koukan/engine/rest"
)

var gatewayCmd = &command{
	name:    "gateway",
	summary: "run the SMTP gateway: inbound SMTP to the router, router to outbound SMTP/LMTP",
	usage:   "--config gateway.yaml",
	help: `Runs the stateless SMTP gateway: SMTP listeners (smtp_listener.services: MX on 25,
submission on 587 with STARTTLS, submissions on 465) that hand each transaction to the
router's REST API (rest_output), and a REST listener (rest_listener) through which the
router sends mail out over SMTP or LMTP (smtp_output.hosts, chosen by the sender tag).
The config is gateway.yaml in the reference format (see config/examples/gateway.yaml).
SIGINT or SIGTERM stops accepting connections and lets sessions finish for up to 30 s.`,
	flags: func(fs *flag.FlagSet, out *output) func() int {
		path := fs.String("config", "gateway.yaml", "gateway config `file`")
		logFormat := fs.String("log-format", "text", "log format: text or json")
		return func() int { return out.runGateway(*path, *logFormat) }
	},
}

func (o *output) runGateway(path, logFormat string) int {
	cfg, warns, err := config.LoadGateway(path)
	if err != nil {
		fmt.Fprintf(o.stderr, "koukan gateway: %v\n", err)
		return 1
	}
	log := newLogger(o, logFormat, cfg.Logging.Level, warns)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed := make(chan error, len(cfg.SMTPServices)+1)
	gw, err := startGateway(ctx, cfg, log, failed)
	if err != nil {
		log.Error("starting the gateway", "err", err)
		return 1
	}
	status := untilStopped(ctx, log, failed)
	gw.shutdown(30 * time.Second)
	return status
}

// gateway is a running gateway: its SMTP servers and its REST listener.
type gateway struct {
	log  *slog.Logger
	smtp []*inbound.Server
	out  *outbound.Server
	http *http.Server
	// unlocal stops routing this process's REST requests to the REST listener in memory.
	unlocal func()
}

// startGateway starts every listener of cfg; koukan gateway and koukan serve share it. A
// listener that stops on its own reports to failed, which has room for one report each.
func startGateway(ctx context.Context, cfg *config.Gateway, log *slog.Logger, failed chan<- error) (*gateway, error) {
	g := &gateway{log: log}
	clients := map[string]*rest.Client{}
	for _, ro := range cfg.RestOutputs {
		c, err := rest.NewClient(rest.Options{ChunkSize: ro.ChunkSize, CAFile: ro.Verify.CAFile, InsecureSkipVerify: ro.Verify.Off,
			APIKeyFile: ro.Auth.APIKeyFile, CertFile: ro.Auth.ClientCert, KeyFile: ro.Auth.ClientKey})
		if err != nil {
			return nil, fmt.Errorf("rest_output %s: %w", ro.Name, err)
		}
		clients[ro.Name] = c
	}
	for _, svc := range cfg.SMTPServices {
		srv, err := newSMTPService(svc, cfg, clients, log)
		if err != nil {
			g.shutdown(0)
			return nil, err
		}
		addr := hostPort(svc.Addr)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			g.shutdown(0)
			return nil, fmt.Errorf("smtp listener %s: %w", addr, err)
		}
		g.smtp = append(g.smtp, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && ctx.Err() == nil {
				failed <- fmt.Errorf("smtp listener %s: %w", addr, err)
			}
		}()
		log.Info("smtp listening", "addr", ln.Addr().String(), "sender", svc.Sender, "tag", svc.Tag, "smtps", svc.SMTPS)
	}
	if l := cfg.RestListener; l != nil {
		if err := g.startREST(ctx, cfg, l, failed); err != nil {
			g.shutdown(0)
			return nil, err
		}
	}
	return g, nil
}

// newSMTPService is one smtp_listener service, sending to its rest_output.
func newSMTPService(svc config.SMTPService, cfg *config.Gateway, clients map[string]*rest.Client, log *slog.Logger) (*inbound.Server, error) {
	var ro config.RestOutput
	for _, r := range cfg.RestOutputs {
		if r.Name == svc.Endpoint {
			ro = r
		}
	}
	o := inbound.Options{
		Endpoint: ro.URL, Sender: svc.Sender, Tag: svc.Tag, Client: clients[ro.Name],
		ImplicitTLS: svc.SMTPS, AuthSecrets: svc.AuthSecrets, AllowInsecureAuth: svc.AllowInsecureAuth,
		// The config's 0 is "none" where the options' is "the default".
		MaxAuthFailures: orNone(svc.MaxAuthFailures), AuthFailureWindow: svc.AuthFailureWindow, AuthFailureDelay: orNone(svc.AuthFailureDelay),
		ProxyProtocolTimeout: svc.ProxyProtocolTimeout, MaxMessageBytes: svc.MaxMessageSize,
		MaxRecipients: svc.MaxRecipients, MaxConns: svc.MaxConnections, MaxConnsPerIP: svc.MaxConnectionsPerIP,
		MaxErrors: svc.MaxErrors, CommandTimeout: svc.CommandTimeout, IdleTimeout: svc.IdleTimeout,
		RcptTimeout: svc.RcptTimeout, DataTimeout: svc.DataTimeout,
		RequestTimeout: ro.RcptTimeout, PutTimeout: ro.DataTimeout, ChunkSize: ro.ChunkSize,
		Hostname: svc.Hostname, Log: log.With("service", hostPort(svc.Addr)),
	}
	if svc.Cert != "" {
		cert, err := tls.LoadX509KeyPair(svc.Cert, svc.Key)
		if err != nil {
			return nil, fmt.Errorf("smtp listener %s: %w", hostPort(svc.Addr), err)
		}
		o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv, err := inbound.New(o)
	if err != nil {
		return nil, fmt.Errorf("smtp listener %s: %w", hostPort(svc.Addr), err)
	}
	return srv, nil
}

// startREST serves the transaction API the router sends outbound mail through.
func (g *gateway) startREST(ctx context.Context, cfg *config.Gateway, l *config.GatewayRestListener, failed chan<- error) error {
	tlsConf, keys, err := restSecurity(ctx, l.Listener, l.RestAuth, g.log)
	if err != nil {
		return fmt.Errorf("rest_listener: %w", err)
	}
	hosts := map[string]outbound.Host{}
	for tag, h := range cfg.SMTPHosts {
		oh := outbound.Host{EHLOHost: h.EHLOHost, LMTP: h.Protocol == "lmtp", EnableBDAT: h.EnableBDAT, ChunkSize: h.ChunkSize,
			RequireTLS: h.RequireTLS, VerifyTLS: h.CAFile != "", MaxReuse: h.MaxReuse, ReuseIdle: h.ReuseIdle,
			// Inner deadlines stay under the router's (reference §9.3): the reference's
			// 3300 s would outlast any rest_output wait.
			Timeout: min(h.Timeout, 25*time.Second), DataTimeout: h.DataTimeout}
		if h.CAFile != "" {
			pem, err := os.ReadFile(h.CAFile)
			if err != nil {
				return fmt.Errorf("smtp_output.hosts.%s.ca_file: %w", tag, err)
			}
			oh.RootCAs = x509.NewCertPool()
			if !oh.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("smtp_output.hosts.%s.ca_file %s: no PEM certificates", tag, h.CAFile)
			}
		}
		hosts[tag] = oh
	}
	g.out = outbound.New(outbound.Options{Hosts: hosts, SessionURI: l.SessionURI, RestIDEntropy: l.RestIDEntropy,
		GCInterval: l.GCInterval, IdleTTL: l.GCTxTTL, DoneTTL: l.GCDoneTTL, Log: g.log})
	addr := hostPort(l.Addr)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("rest listener %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", g.out.Handler())
	mux.Handle("GET /metrics", metrics.Handler())
	// The gateway keeps no state: serving is being healthy and ready.
	for _, probe := range []string{"GET /healthz", "GET /readyz"} {
		mux.HandleFunc(probe, func(w http.ResponseWriter, _ *http.Request) {
			httpapi.WriteJSONLine(w, http.StatusOK, map[string]string{"status": "ok"})
		})
	}
	g.http = &http.Server{Handler: guarded(metrics.CountRequests(mux), keys, g.out.TxSender, g.log), TLSConfig: tlsConf,
		ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(g.log.Handler(), slog.LevelWarn)}
	g.unlocal = serveLocally(g.http.Handler, tlsConf, ln, addr)
	go func() {
		if err := serveHTTP(g.http, ln); !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("rest listener %s: %w", addr, err)
		}
	}()
	go g.out.Run(ctx)
	g.log.Info("gateway rest listening", "addr", ln.Addr().String(), "session_uri", l.SessionURI)
	return nil
}

// shutdown stops accepting, then gives sessions and transactions up to grace to finish.
func (g *gateway) shutdown(grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for _, s := range g.smtp {
		if err := s.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			g.log.Warn("smtp shutdown", "err", err)
		}
	}
	if g.http != nil {
		g.unlocal()
		g.http.Shutdown(ctx)
	}
	if g.out != nil {
		g.out.Close()
	}
}

func hostPort(h config.HostPort) string { return net.JoinHostPort(h.Host, strconv.Itoa(h.Port)) }

// orNone turns a config's zero ("none") into the -1 that says so to inbound.Options.
func orNone[T int | time.Duration](v T) T {
	if v == 0 {
		return -1
	}
	return v
}

// restSecurity reads what guards a REST listener (docs/security.md): its TLS, nil without
// cert, and its API keys, nil without api_keys_file. The keys are kept in force as the file
// changes, and re-read on SIGHUP, until ctx ends.
func restSecurity(ctx context.Context, l config.Listener, a config.RestAuth, log *slog.Logger) (*tls.Config, *httpauth.KeyFile, error) {
	var tlsConf *tls.Config
	var keys *httpauth.KeyFile
	var err error
	if l.Cert != "" {
		if tlsConf, err = httpauth.ServerTLS(l.Cert, l.Key, a.ClientCA); err != nil {
			return nil, nil, err
		}
	}
	if a.APIKeysFile != "" {
		if keys, err = httpauth.OpenKeyFile(a.APIKeysFile, log); err != nil {
			return nil, nil, err
		}
		go func() {
			if err := keys.Watch(ctx); err != nil {
				log.Error("api keys are read on SIGHUP only", "err", err)
			}
		}()
		onHangup(ctx, func() { keys.ReloadLogged("reload requested") })
	}
	return tlsConf, keys, nil
}

// guarded is h behind keys, when there are any; txSender finds whose a transaction is.
func guarded(h http.Handler, keys *httpauth.KeyFile, txSender func(context.Context, string) (string, bool, error), log *slog.Logger) http.Handler {
	if keys == nil {
		return h
	}
	return httpauth.Middleware(httpauth.Options{Keys: keys, TxSender: txSender, Log: log})(h)
}

// serveHTTP serves srv on ln, with TLS when srv has a TLS config.
func serveHTTP(srv *http.Server, ln net.Listener) error {
	if srv.TLSConfig != nil {
		return srv.ServeTLS(ln, "", "")
	}
	return srv.Serve(ln)
}
