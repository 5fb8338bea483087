package main

import (
	"bytes"
	"context"
	_ "embed"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"text/template"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/mailbox"
)

var serveCmd = &command{
	name:    "serve",
	summary: "run router and gateway in one process (a working MTA with one command)",
	usage:   "[--config all.yaml] [--data DIR] [--router ADDR] [--gateway ADDR] [--smtp ADDR] [--submission ADDR]",
	help: `Runs the router and the gateway in one process; they talk over loopback HTTP as they do
when apart. Without --config it uses a built-in configuration:

  - SQLite and the local mailbox under --data (./koukan-data);
  - the REST API on 127.0.0.1:8000, the gateway's REST listener on 127.0.0.1:8001;
  - SMTP for the internet (MX) on 127.0.0.1:2525: mail for @localhost only;
  - SMTP submission on 127.0.0.1:2587 (no AUTH: loopback only);
  - mail to @localhost lands in the local mailbox, one .eml file per message under
    DATA/mailbox, listed at GET /mailbox on the REST API; mail to other domains is routed
    by MX, with retries and delivery status notifications;
  - Lua scripts from DATA/scripts (yours, hot-reloaded), then the shipped library.

--pprof ADDR serves Go's CPU and allocation profiles there (go tool pprof http://ADDR/debug/pprof/profile).

Example:
  koukan serve &
  koukan send --from me@localhost --to you@localhost --subject hi --text hello --wait
  curl -s http://127.0.0.1:8000/mailbox

--config takes an all-in-one file with router: and gateway: sections in the formats of
router.yaml and gateway.yaml (see config/examples/serve.yaml); the address flags then do not
apply. SIGINT or SIGTERM drains in-flight work and stops; SIGHUP reloads the scripts and the
api_keys_file.`,
	flags: func(fs *flag.FlagSet, out *output) func() int {
		var o serveOptions
		fs.StringVar(&o.config, "config", "", "all-in-one config `file` (router: and gateway: sections)")
		fs.StringVar(&o.data, "data", "koukan-data", "data `dir` of the built-in config: database, mailbox, scripts")
		fs.StringVar(&o.router, "router", "127.0.0.1:8000", "REST API `address` (built-in config)")
		fs.StringVar(&o.gateway, "gateway", "127.0.0.1:8001", "gateway REST `address` (built-in config)")
		fs.StringVar(&o.smtp, "smtp", "127.0.0.1:2525", "SMTP MX `address` (built-in config)")
		fs.StringVar(&o.submission, "submission", "127.0.0.1:2587", "SMTP submission `address` (built-in config)")
		fs.StringVar(&o.pprof, "pprof", "", "serve Go's profiles (net/http/pprof) on this `address`, e.g. 127.0.0.1:6060; off by default")
		logFormat := fs.String("log-format", "text", "log format: text or json")
		return func() int { return out.runServe(o, *logFormat) }
	},
}

type serveOptions struct {
	config, data, router, gateway, smtp, submission, pprof string
}

//go:embed serve_default.yaml
var defaultServe string

// listenAddr is a listen address as the built-in config template writes it.
type listenAddr struct {
	Host    string
	Port    int
	URLHost string // host:port for URLs
}

func parseAddr(flagName, s string) (listenAddr, error) {
	host, port, err := net.SplitHostPort(s)
	p, perr := strconv.Atoi(port)
	if err != nil || perr != nil || p < 1 || p > 65535 {
		return listenAddr{}, fmt.Errorf("--%s %q: want host:port", flagName, s)
	}
	return listenAddr{Host: strconv.Quote(host), Port: p, URLHost: net.JoinHostPort(host, port)}, nil
}

// builtinConfig renders the built-in config for the flags, with the local mailbox's LMTP
// port.
func builtinConfig(o serveOptions, lmtpPort int) ([]byte, error) {
	v := struct {
		Router, Gateway, MX, Submission listenAddr
		Data                            string
		LMTP                            int
	}{LMTP: lmtpPort}
	var err error
	for _, a := range []struct {
		name, value string
		dst         *listenAddr
	}{{"router", o.router, &v.Router}, {"gateway", o.gateway, &v.Gateway}, {"smtp", o.smtp, &v.MX}, {"submission", o.submission, &v.Submission}} {
		if *a.dst, err = parseAddr(a.name, a.value); err != nil {
			return nil, err
		}
	}
	if v.Data, err = filepath.Abs(o.data); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = template.Must(template.New("serve").Parse(defaultServe)).Execute(&b, v)
	return b.Bytes(), err
}

func (o *output) runServe(so serveOptions, logFormat string) int {
	started := time.Now()
	fail := func(format string, args ...any) int {
		fmt.Fprintf(o.stderr, "koukan serve: "+format+"\n", args...)
		return 1
	}
	var cfg *config.Serve
	var warns config.Warnings
	var box *mailbox.Mailbox
	var lmtp net.Listener
	if so.config != "" {
		var err error
		if cfg, warns, err = config.LoadServe(so.config); err != nil {
			return fail("%v", err)
		}
	} else {
		var err error
		if err = os.MkdirAll(filepath.Join(so.data, "scripts"), 0o755); err != nil {
			return fail("%v", err)
		}
		if box, err = mailbox.New(filepath.Join(so.data, "mailbox"), nil); err != nil {
			return fail("%v", err)
		}
		if lmtp, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return fail("local mailbox: %v", err)
		}
		data, err := builtinConfig(so, lmtp.Addr().(*net.TCPAddr).Port)
		if err != nil {
			return fail("%v", err)
		}
		if cfg, warns, err = config.ParseServe(filepath.Join(so.data, "serve.yaml (built in)"), data); err != nil {
			return fail("the built-in config: %v", err)
		}
	}
	log := newLogger(o, logFormat, cfg.Router.Logging.Level, warns)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if so.pprof != "" {
		if err := servePprof(so.pprof, log); err != nil {
			return fail("--pprof: %v", err)
		}
	}

	var extra map[string]http.Handler
	if box != nil {
		box.Log = log
		go box.ServeLMTP(lmtp)
		defer box.Close()
		extra = map[string]http.Handler{"/mailbox": box.Handler(), "/mailbox/": box.Handler()}
	}
	failed := make(chan error, len(cfg.Gateway.SMTPServices)+3)
	r, err := startRouter(ctx, cfg.Router, log, extra, failed)
	if err != nil {
		log.Error("starting the router", "err", err)
		return 1
	}
	gw, err := startGateway(ctx, cfg.Gateway, log, failed)
	if err != nil {
		log.Error("starting the gateway", "err", err)
		r.shutdown()
		return 1
	}
	if box != nil {
		o.printWelcome(so, started)
	}
	status := untilStopped(ctx, log, failed)
	stop()
	// The gateway first: no new SMTP sessions feed the router while it drains.
	gw.shutdown(10 * time.Second)
	r.shutdown()
	return status
}

// printWelcome says what listens where, with examples to paste.
func (o *output) printWelcome(so serveOptions, started time.Time) {
	api := "http://" + so.router
	smtpHost, smtpPort, _ := net.SplitHostPort(so.smtp)
	fmt.Fprintf(o.stdout, `koukan is up (%v):
  REST API        %s   (OpenAPI at %s/openapi.json)
  SMTP (MX)       %s      mail for @localhost
  SMTP submission %s      from this machine, to anywhere
  local mailbox   %s   (files in %s)

Send with the API:
  curl -s %s/senders/submission/transactions -H 'Content-Type: application/json' \
    -d '{"mail_from":{"m":"me@localhost"},"rcpt_to":[{"m":"you@localhost"}],"body":{"inline":"Subject: hi\r\n\r\nhello\r\n"}}'
or with koukan send:
  koukan send --router %s --from me@localhost --to you@localhost --subject hi --text hello --wait
or over SMTP:
  swaks --server %s --port %s --from me@example.org --to you@localhost
`, time.Since(started).Round(time.Millisecond), api, api, so.smtp, so.submission, api+"/mailbox",
		filepath.Join(so.data, "mailbox"), api, api, smtpHost, smtpPort)
}

// servePprof serves the runtime's profiles on their own listener, never on a public one.
func servePprof(addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("profiles at http://" + ln.Addr().String() + "/debug/pprof/")
	go http.Serve(ln, mux)
	return nil
}
