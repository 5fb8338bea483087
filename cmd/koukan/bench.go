package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/koukan/koukan/engine/loadgen"
)

var benchCmd = &command{
	name:    "bench",
	summary: "load generator for SMTP and REST: messages/s and latency percentiles",
	usage:   "smtp|rest|sink [flags]",
	help: `Generates SMTP or REST load against a running Koukan (or any MTA) and prints messages/s
and latency percentiles; "bench sink" is an SMTP sink for the far end.

  koukan bench smtp --target HOST:PORT [--messages N] [--concurrency C] [--size 2k|100k|1m]
                    [--auth USER:PASS] [--starttls] [--from A] [--to B] [--ehlo NAME] [--json]
      C SMTP sessions, each sending its share of the N messages over one connection
      (reconnecting after a 421 or a dropped connection). Latency is from MAIL to the
      final reply to the data.

  koukan bench rest --router URL --sender S [--messages N] [--concurrency C] [--size ...]
                    [--wait-final] [--api-key-file FILE] [--json]
      C workers posting one-recipient transactions, the message inline (or PUT to the
      body's URI above --inline-max). Latency is to the 201 (or the body PUT's answer),
      or with --wait-final to the final data_response, followed with hanging GETs.
      A router with an api_keys_file wants a key for S: --api-key-file names the file
      holding it; without the flag, the file named by $KOUKAN_API_KEY_FILE is used.

  koukan bench sink --listen ADDR [--tempfail-rate X] [--permfail-rate Y] [--delay D] [--lmtp]
      An SMTP (or LMTP) server that accepts mail and discards it, failing the given
      fractions of recipients with 451 4.3.0 and 550 5.7.1 (at RCPT or after the data),
      each final answer after the delay. SIGINT or SIGTERM prints the counts and exits 0.

Every message of a run has the same size and its own Message-ID. While a run goes on, a
progress bar is drawn on stderr if stderr is a terminal. At the end it prints messages
sent, OK and failed, the duration, messages/s, latency p50/p90/p99/max over the messages
that succeeded (every one of them, sorted, not sampled), and the failures grouped by
reply code ("451 4.3.0 ×12"), or with --json the same as one JSON object. SIGINT stops a
run early and prints what it measured so far.

Exit status: 0 when some message succeeded, 1 when none did (or the sink could not
start), 2 usage error. "koukan bench MODE --help" lists a mode's flags.

Examples:
  koukan bench sink --listen 127.0.0.1:2525 --tempfail-rate 0.01 &
  koukan bench smtp --target 127.0.0.1:2525 --messages 100000 --concurrency 32 --size 100k
  koukan bench rest --router http://127.0.0.1:8000 --sender submission --wait-final --json`,
	flags: func(fs *flag.FlagSet, out *output) func() int {
		return func() int { return out.bench(fs.Args()) }
	},
}

// benchSignals is what stops a run or a sink; tests replace it.
var benchSignals = func() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// benchMode is one of bench's modes, with flags of its own.
type benchMode struct {
	usage string
	help  string
	flags func(fs *flag.FlagSet, out *output) func() int
}

var benchModes = map[string]*benchMode{
	"smtp": {
		usage: "--target HOST:PORT [flags]",
		help:  "Sends messages over SMTP sessions and measures each one to the final reply to its data.",
		flags: func(fs *flag.FlagSet, out *output) func() int {
			load, size, asJSON := benchLoadFlags(fs)
			var o loadgen.SMTPOptions
			fs.StringVar(&o.Target, "target", "127.0.0.1:1025", "SMTP server `host:port`")
			fs.StringVar(&o.EHLO, "ehlo", "localhost", "`name` to greet the server with")
			fs.StringVar(&o.Auth, "auth", "", "authenticate with AUTH PLAIN as `user:pass`")
			fs.BoolVar(&o.StartTLS, "starttls", false, "upgrade each connection with STARTTLS")
			fs.BoolVar(&o.Insecure, "insecure", false, "with --starttls, accept any certificate")
			return func() int {
				return out.benchRun("smtp", load, *size, *asJSON, func(ctx context.Context, l loadgen.Load) (*loadgen.Run, error) {
					return loadgen.StartSMTP(ctx, l, o)
				})
			}
		},
	},
	"rest": {
		usage: "--router URL --sender NAME [flags]",
		help: `Posts transactions to Koukan's REST API (or any receiver of it) and measures each one.
A router whose rest_listener has an api_keys_file (docs/security.md) wants a key for the
sender: --api-key-file names the file holding it (koukan apikey new --sender NAME --key-out
FILE makes one). Without the flag, the file named by $KOUKAN_API_KEY_FILE is used.`,
		flags: func(fs *flag.FlagSet, out *output) func() int {
			load, size, asJSON := benchLoadFlags(fs)
			var o loadgen.RESTOptions
			fs.StringVar(&o.Router, "router", "http://127.0.0.1:8000", "router base `url` (or a URL ending in /transactions)")
			fs.StringVar(&o.Sender, "sender", "submission", "sender `name` in /senders/NAME/transactions")
			fs.StringVar(&o.Tag, "tag", "", "sender `tag` that picks the output chain")
			fs.BoolVar(&o.WaitFinal, "wait-final", false, "wait for each transaction's final data_response")
			inlineMax := fs.String("inline-max", "64k", "largest message `size` sent inline; larger ones are PUT")
			fs.BoolVar(&o.Insecure, "insecure", false, "accept any TLS certificate")
			apiKeyFileFlag(fs, &o.APIKeyFile)
			return func() int {
				n, err := loadgen.ParseSize(*inlineMax)
				if err != nil {
					fmt.Fprintf(out.stderr, "koukan bench rest: --inline-max: %v\n", err)
					return 2
				}
				o.InlineMax = n
				return out.benchRun("rest", load, *size, *asJSON, func(ctx context.Context, l loadgen.Load) (*loadgen.Run, error) {
					return loadgen.StartREST(ctx, l, o)
				})
			}
		},
	},
	"sink": {
		usage: "--listen ADDR [flags]",
		help: `Accepts mail over SMTP (or LMTP) and discards it, counting; fails the given fractions of
recipients. SIGINT or SIGTERM prints the counts and exits 0.`,
		flags: func(fs *flag.FlagSet, out *output) func() int {
			var o loadgen.SinkOptions
			listen := fs.String("listen", "127.0.0.1:2525", "`address` to listen on (port 0: any free port)")
			fs.Float64Var(&o.TempfailRate, "tempfail-rate", 0, "fraction of recipients to fail with 451 4.3.0")
			fs.Float64Var(&o.PermfailRate, "permfail-rate", 0, "fraction of recipients to fail with 550 5.7.1")
			fs.DurationVar(&o.Delay, "delay", 0, "wait this long before each message's final answer")
			fs.BoolVar(&o.LMTP, "lmtp", false, "speak LMTP instead of SMTP")
			fs.BoolVar(&o.StartTLS, "starttls", false, "offer STARTTLS with a self-signed certificate")
			fs.StringVar(&o.Auth, "auth", "", "offer AUTH PLAIN and require it, for `user:pass`")
			asJSON := fs.Bool("json", false, "print the counts as one JSON object")
			return func() int { return out.benchSink(*listen, o, *asJSON) }
		},
	},
}

// benchLoadFlags declares the flags smtp and rest share.
func benchLoadFlags(fs *flag.FlagSet) (load *loadgen.Load, size *string, asJSON *bool) {
	load = &loadgen.Load{}
	fs.IntVar(&load.Messages, "messages", 1000, "how many messages to send")
	fs.IntVar(&load.Concurrency, "concurrency", 8, "how many sessions (or REST workers) send at once")
	size = fs.String("size", "2k", "message `size`: bytes, or with a k or m suffix (2k, 100k, 1m)")
	fs.StringVar(&load.From, "from", "bench@example.com", "envelope and header sender `address`")
	fs.StringVar(&load.To, "to", "sink@example.net", "envelope and header recipient `address`")
	fs.DurationVar(&load.Timeout, "timeout", time.Minute, "the most one message may take")
	asJSON = fs.Bool("json", false, "print the result as one JSON object")
	return
}

func (o *output) bench(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(o.stderr, "koukan bench: name a mode: smtp, rest or sink (koukan bench --help)")
		return 2
	}
	name := args[0]
	m := benchModes[name]
	if m == nil {
		fmt.Fprintf(o.stderr, "koukan bench: unknown mode %q: smtp, rest or sink\n", name)
		return 2
	}
	fs := flag.NewFlagSet("koukan bench "+name, flag.ContinueOnError)
	fs.SetOutput(o.stderr)
	runFn := m.flags(fs, o)
	printHelp := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: koukan bench %s %s\n\n%s\n\nFlags:\n", name, m.usage, m.help)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(o.stderr)
	}
	fs.Usage = func() { printHelp(o.stderr) }
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			printHelp(o.stdout)
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(o.stderr, "koukan bench %s: unexpected argument %q\n", name, fs.Arg(0))
		return 2
	}
	return runFn()
}

// benchRun runs smtp or rest load and reports it.
func (o *output) benchRun(mode string, load *loadgen.Load, size string, asJSON bool,
	start func(context.Context, loadgen.Load) (*loadgen.Run, error)) int {
	n, err := loadgen.ParseSize(size)
	if err != nil {
		fmt.Fprintf(o.stderr, "koukan bench %s: --size: %v\n", mode, err)
		return 2
	}
	load.Size = n
	ctx, stop := benchSignals()
	defer stop()
	run, err := start(ctx, *load)
	if err != nil {
		fmt.Fprintf(o.stderr, "koukan bench %s: %v\n", mode, err)
		return 2
	}
	var bar chan struct{}
	if benchIsTerminal(o.stderr) {
		bar = make(chan struct{})
		go func() {
			defer close(bar)
			drawBenchProgress(ctx, o.stderr, run)
		}()
	}
	res := run.Wait()
	if bar != nil {
		stop() // ends the bar; the run is over anyway
		<-bar
	}
	if asJSON {
		json.NewEncoder(o.stdout).Encode(res)
	} else {
		res.WriteText(o.stdout)
	}
	if res.OK == 0 {
		return 1
	}
	return 0
}

// drawBenchProgress redraws a progress line on w until ctx ends or every message is done, then
// erases it.
func drawBenchProgress(ctx context.Context, w io.Writer, run *loadgen.Run) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		p := run.Progress()
		fmt.Fprintf(w, "\r%s\x1b[K", benchProgressLine(p, 30))
		if p.Done >= p.Total {
			break
		}
		select {
		case <-t.C:
			continue
		case <-ctx.Done():
		}
		break
	}
	fmt.Fprint(w, "\r\x1b[K")
}

// benchProgressLine is e.g. "[#########.....................]  3000/10000  30%  1234 msg/s  ok 2990  failed 10  eta 6s".
func benchProgressLine(p loadgen.Progress, width int) string {
	filled := 0
	if p.Total > 0 {
		filled = min(width*p.Done/p.Total, width)
	}
	rate, eta := 0.0, "?"
	if s := p.Elapsed.Seconds(); s > 0 {
		rate = float64(p.Done) / s
	}
	if rate > 0 {
		eta = (time.Duration(float64(p.Total-p.Done) / rate * float64(time.Second))).Round(time.Second).String()
	}
	pct := 0
	if p.Total > 0 {
		pct = 100 * p.Done / p.Total
	}
	return fmt.Sprintf("[%s%s] %d/%d %3d%%  %.0f msg/s  ok %d  failed %d  eta %s",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.Done, p.Total, pct, rate, p.OK, p.Failed, eta)
}

// benchIsTerminal reports whether w is a terminal (a character device, which is what a
// terminal is to stat; /dev/null is one too, where the bar is harmless).
func benchIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (o *output) benchSink(listen string, opts loadgen.SinkOptions, asJSON bool) int {
	ctx, stop := benchSignals()
	defer stop()
	if err := opts.Check(); err != nil {
		fmt.Fprintf(o.stderr, "koukan bench sink: %v\n", err)
		return 2
	}
	sink, err := loadgen.ListenSink(listen, opts)
	if err != nil {
		fmt.Fprintf(o.stderr, "koukan bench sink: %v\n", err)
		return 1
	}
	fmt.Fprintf(o.stderr, "koukan bench sink: listening on %s\n", sink.Addr())
	<-ctx.Done()
	sink.Close()
	counts := sink.Counts()
	if asJSON {
		json.NewEncoder(o.stdout).Encode(counts)
	} else {
		fmt.Fprintf(o.stdout, "koukan bench sink: %s\n", counts)
	}
	return 0
}
