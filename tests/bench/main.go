// Command bench measures Koukan side by side with Postfix on one machine, in one run:
//
//	(a) smtp-source → smtp-sink                                  the ceiling
//	(b) smtp-source → Postfix (private instance) → smtp-sink
//	(c) smtp-source → koukan serve, SQLite → smtp-sink
//	(d) smtp-source → koukan serve, PostgreSQL → smtp-sink
//	(e) koukan bench rest --wait-final → koukan serve, SQLite → smtp-sink
//
// for each workload (message size × concurrent sessions), and prints a Markdown table of
// messages/s, drain time, CPU per message, peak RSS and the ratios to (b) and (a).
//
//	go run ./tests/bench [--quick] [--sizes 2k,100k] [--sessions 1,50] [--rows abcde] [--json]
//
// It needs Linux (/proc) and, for Postfix, root. See README.md.
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Envelope of every message.
const (
	mailFrom = "bench@example.com"
	rcptTo   = "sink@example.net"
)

// rowNames are the rows in table order, with what each one measures.
var rowNames = []struct{ id, name string }{
	{"a", "smtp-source → smtp-sink"},
	{"b", "smtp-source → Postfix → sink"},
	{"c", "smtp-source → koukan (SQLite) → sink"},
	{"d", "smtp-source → koukan (PostgreSQL) → sink"},
	{"e", "bench rest → koukan (SQLite) → sink"},
}

func rowName(id string) string {
	for _, r := range rowNames {
		if r.id == id {
			return r.name
		}
	}
	return id
}

// ---------------------------------------------------------------------------------------
// Options and workloads

type options struct {
	sizes     []int
	sessions  []int
	messages  int // 0: the default for the size
	quick     bool
	rows      string
	jsonOut   bool
	pgURL     string
	koukanBin string
	keep      bool
	stall     time.Duration
	dkim      string
}

func parseOptions() (*options, error) {
	o := &options{}
	sizes := flag.String("sizes", "2k,100k", "message sizes, comma-separated: bytes or with a k suffix")
	sessions := flag.String("sessions", "1,50", "concurrent sessions, comma-separated")
	flag.IntVar(&o.messages, "messages", 0, "messages per row (default 5000 for sizes up to 10k, 2000 above; --quick: 500/200)")
	flag.BoolVar(&o.quick, "quick", false, "a tenth of the default messages")
	flag.StringVar(&o.rows, "rows", "abcde", "which rows to run (letters a to e)")
	flag.BoolVar(&o.jsonOut, "json", false, "print the results as JSON instead of a Markdown table")
	flag.StringVar(&o.pgURL, "postgres", "postgresql://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"PostgreSQL server for row (d), as a URL to a database psql can create databases from; empty: skip (d)")
	flag.StringVar(&o.koukanBin, "koukan", "", "koukan binary to use (default: go build ./cmd/koukan)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (configs, logs, queues)")
	flag.DurationVar(&o.stall, "stall-timeout", 60*time.Second, "give up waiting for the sink after this long without progress")
	flag.StringVar(&o.dkim, "dkim", "rsa", "dkim_sign key of Koukan's chain: rsa (2048 bits) or ed25519")
	flag.Parse()
	var err error
	if o.sizes, err = parseList(*sizes, parseSize); err != nil {
		return nil, fmt.Errorf("--sizes: %w", err)
	}
	if o.sessions, err = parseList(*sessions, strconv.Atoi); err != nil {
		return nil, fmt.Errorf("--sessions: %w", err)
	}
	if o.dkim != "rsa" && o.dkim != "ed25519" {
		return nil, fmt.Errorf("--dkim: %q is neither rsa nor ed25519", o.dkim)
	}
	for _, c := range o.rows {
		if c < 'a' || c > 'e' {
			return nil, fmt.Errorf("--rows: %q is not a row (a to e)", c)
		}
	}
	return o, nil
}

func parseList(s string, parse func(string) (int, error)) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := parse(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad value %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseSize reads "2048", "2k" or "1m" (k = 1024 bytes, as koukan bench does).
func parseSize(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(strings.ToLower(s), "k"):
		mult, s = 1024, s[:len(s)-1]
	case strings.HasSuffix(strings.ToLower(s), "m"):
		mult, s = 1024*1024, s[:len(s)-1]
	}
	n, err := strconv.Atoi(s)
	return n * mult, err
}

func (o *options) want(row string) bool { return strings.Contains(o.rows, row) }

// workload is one column of the comparison: a message size, sessions and a count.
type workload struct {
	Size     int `json:"size_bytes"`
	Sessions int `json:"sessions"`
	Messages int `json:"messages"`
}

func (w workload) String() string {
	return fmt.Sprintf("%s × %d", humanSize(w.Size), w.Sessions)
}

func humanSize(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

func (o *options) workloads() []workload {
	var ws []workload
	for _, size := range o.sizes {
		for _, s := range o.sessions {
			ws = append(ws, workload{Size: size, Sessions: s, Messages: o.messagesFor(size)})
		}
	}
	return ws
}

func (o *options) messagesFor(size int) int {
	if o.messages > 0 {
		return o.messages
	}
	n := 2000
	if size <= 10*1024 {
		n = 5000
	}
	if o.quick {
		n /= 10
	}
	return n
}

// ---------------------------------------------------------------------------------------
// Results

type result struct {
	Workload   workload `json:"workload"`
	Row        string   `json:"row"`
	Name       string   `json:"name"`
	Skipped    bool     `json:"skipped,omitempty"`
	Accepted   int      `json:"accepted"`  // messages the load generator got a 250 (or a final 2xx) for
	Delivered  int      `json:"delivered"` // messages the sink received
	AcceptSec  float64  `json:"accept_seconds"`
	DrainSec   float64  `json:"drain_seconds"`
	AcceptRate float64  `json:"accept_per_second"`
	E2ERate    float64  `json:"end_to_end_per_second"`
	CPUms      float64  `json:"cpu_ms_per_message"`
	PeakRSSMB  float64  `json:"peak_rss_mb"`
	VsB        float64  `json:"vs_b,omitempty"` // E2ERate / (b)'s
	VsA        float64  `json:"vs_a,omitempty"` // E2ERate / (a)'s
	Note       string   `json:"note,omitempty"`
}

func newResult(row string, w workload) result {
	return result{Workload: w, Row: row, Name: rowName(row)}
}

func skipped(row string, w workload, why string) result {
	r := newResult(row, w)
	r.Skipped, r.Note = true, why
	return r
}

func failed(row string, w workload, err error) result {
	r := newResult(row, w)
	r.Note = "failed: " + err.Error()
	return r
}

// fill derives the rates and per-message figures from the raw measurements.
func (r *result) fill(cpuTicks int64, peakKB int64, clkTck int64) {
	if r.AcceptSec > 0 {
		r.AcceptRate = float64(r.Accepted) / r.AcceptSec
	}
	if total := r.AcceptSec + r.DrainSec; total > 0 {
		r.E2ERate = float64(r.Delivered) / total
	}
	if r.Delivered > 0 {
		r.CPUms = float64(cpuTicks) * 1000 / float64(clkTck) / float64(r.Delivered)
	}
	r.PeakRSSMB = float64(peakKB) / 1024
}

// addRatios fills VsB and VsA of each workload's rows.
func addRatios(rs []result) {
	base := map[string]float64{}
	for _, r := range rs {
		if r.Row == "a" || r.Row == "b" {
			base[r.Workload.String()+r.Row] = r.E2ERate
		}
	}
	for i := range rs {
		if rs[i].E2ERate == 0 {
			continue
		}
		if b := base[rs[i].Workload.String()+"b"]; b > 0 {
			rs[i].VsB = rs[i].E2ERate / b
		}
		if a := base[rs[i].Workload.String()+"a"]; a > 0 {
			rs[i].VsA = rs[i].E2ERate / a
		}
	}
}

func printTable(w io.Writer, rs []result) {
	fmt.Fprintln(w, "| workload | row | path | accepted | delivered | accept msg/s | drain s | end-to-end msg/s | CPU ms/msg | peak RSS MB | vs (b) | vs (a) | note |")
	fmt.Fprintln(w, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	for _, r := range rs {
		if r.Skipped {
			fmt.Fprintf(w, "| %s | (%s) | %s | | | | | | | | | | skipped: %s |\n", r.Workload, r.Row, r.Name, cell(r.Note))
			continue
		}
		fmt.Fprintf(w, "| %s | (%s) | %s | %d/%d | %d | %.0f | %.2f | %.0f | %.2f | %.1f | %s | %s | %s |\n",
			r.Workload, r.Row, r.Name, r.Accepted, r.Workload.Messages, r.Delivered, r.AcceptRate, r.DrainSec,
			r.E2ERate, r.CPUms, r.PeakRSSMB, ratio(r.VsB), ratio(r.VsA), cell(r.Note))
	}
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func ratio(x float64) string {
	if x == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", x)
}

// ---------------------------------------------------------------------------------------
// The run

func main() {
	os.Exit(run())
}

func run() int {
	opts, err := parseOptions()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := newBench(ctx, opts)
	if b != nil {
		defer b.close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	var results []result
	for _, w := range opts.workloads() {
		results = append(results, b.runWorkload(w)...)
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "bench: interrupted")
			break
		}
	}
	addRatios(results)
	if opts.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(results)
	} else {
		printTable(os.Stdout, results)
	}
	if ctx.Err() != nil {
		return 1
	}
	return 0
}

// bench is one run: its work directory, tools and everything it must stop at the end.
type bench struct {
	ctx    context.Context
	opts   *options
	dir    string
	koukan string
	clkTck int64
	seq    int

	mu       sync.Mutex
	cleanups []func()
}

func newBench(ctx context.Context, opts *options) (*bench, error) {
	dir, err := os.MkdirTemp("", "koukan-bench-")
	if err != nil {
		return nil, err
	}
	// Postfix's user and smtp-sink's (nobody) walk through it.
	os.Chmod(dir, 0o755)
	b := &bench{ctx: ctx, opts: opts, dir: dir, clkTck: clockTicks()}
	b.atExit(func() {
		if opts.keep {
			fmt.Fprintln(os.Stderr, "bench: kept", dir)
			return
		}
		os.RemoveAll(dir)
	})
	if err := ensurePostfixTools(ctx, opts.want("b")); err != nil {
		return b, err
	}
	if b.koukan, err = b.buildKoukan(); err != nil {
		return b, err
	}
	return b, nil
}

// atExit registers f to run when the bench ends, in reverse order of registration.
func (b *bench) atExit(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cleanups = append(b.cleanups, f)
}

func (b *bench) close() {
	b.mu.Lock()
	fs := b.cleanups
	b.cleanups = nil
	b.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// subdir makes a fresh directory for one instance.
func (b *bench) subdir(name string) string {
	b.seq++
	d := filepath.Join(b.dir, fmt.Sprintf("%02d-%s", b.seq, name))
	os.MkdirAll(d, 0o755)
	return d
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// runWorkload runs every chosen row for w, in table order.
func (b *bench) runWorkload(w workload) []result {
	logf("workload %s, %d messages", w, w.Messages)
	byRow := map[string]result{}
	step := func(row string, f func() result) {
		if b.opts.want(row) && b.ctx.Err() == nil {
			logf("  (%s) %s", row, rowName(row))
			byRow[row] = f()
		}
	}
	step("a", func() result { return b.rowDirect(w) })
	step("b", func() result { return b.rowPostfix(w) })
	if b.opts.want("c") || b.opts.want("e") {
		c, e := b.rowsKoukanSQLite(w)
		byRow["c"], byRow["e"] = c, e
	}
	step("d", func() result { return b.rowKoukanPostgres(w) })
	var out []result
	for _, r := range rowNames {
		if res, ok := byRow[r.id]; ok && b.opts.want(r.id) {
			out = append(out, res)
		}
	}
	return out
}

// ---------------------------------------------------------------------------------------
// The rows

// rowDirect is (a): smtp-source straight into smtp-sink; the "system" measured is the sink.
func (b *bench) rowDirect(w workload) result {
	s, err := b.startSink()
	if err != nil {
		return failed("a", w, err)
	}
	defer s.stop()
	return b.smtpSourceRow("a", w, s.port, s, s.pid())
}

// rowPostfix is (b): a private Postfix, default durable queue, relaying to the sink.
func (b *bench) rowPostfix(w workload) result {
	if os.Geteuid() != 0 {
		return skipped("b", w, "a private Postfix instance needs root")
	}
	s, err := b.startSink()
	if err != nil {
		return failed("b", w, err)
	}
	defer s.stop()
	pf, err := b.startPostfix(s.port)
	if err != nil {
		return failed("b", w, err)
	}
	defer pf.stop()
	return b.smtpSourceRow("b", w, pf.port, s, pf.masterPID)
}

// rowsKoukanSQLite are (c) and (e): one koukan serve on SQLite, first fed over SMTP
// submission, then over REST.
func (b *bench) rowsKoukanSQLite(w workload) (c, e result) {
	if b.ctx.Err() != nil {
		return failed("c", w, b.ctx.Err()), failed("e", w, b.ctx.Err())
	}
	s, err := b.startSink()
	if err != nil {
		return failed("c", w, err), failed("e", w, err)
	}
	defer s.stop()
	dir := b.subdir("koukan-sqlite")
	k, err := b.startKoukan(dir, "sqlite:///"+filepath.Join(dir, "router.db"), s.port)
	if err != nil {
		return failed("c", w, err), failed("e", w, err)
	}
	defer k.stop()
	if b.opts.want("c") {
		logf("  (c) %s", rowName("c"))
		c = b.rowKoukanSMTP("c", w, k, s)
	}
	if b.opts.want("e") && b.ctx.Err() == nil {
		logf("  (e) %s", rowName("e"))
		e = b.rowKoukanREST(w, k, s)
	}
	return c, e
}

// rowKoukanPostgres is (d): koukan serve on a fresh PostgreSQL database, over SMTP.
func (b *bench) rowKoukanPostgres(w workload) result {
	if b.opts.pgURL == "" {
		return skipped("d", w, "no --postgres")
	}
	storage, drop, err := b.createDatabase()
	if err != nil {
		return skipped("d", w, "PostgreSQL not reachable: "+err.Error())
	}
	defer drop()
	s, err := b.startSink()
	if err != nil {
		return failed("d", w, err)
	}
	defer s.stop()
	k, err := b.startKoukan(b.subdir("koukan-postgres"), storage, s.port)
	if err != nil {
		return failed("d", w, err)
	}
	defer k.stop()
	return b.rowKoukanSMTP("d", w, k, s)
}

// rowKoukanSMTP is smtp-source into koukan's submission port.
func (b *bench) rowKoukanSMTP(row string, w workload, k *koukanServe, s *sink) result {
	return b.smtpSourceRow(row, w, k.submission, s, k.pid())
}

// rowKoukanREST is (e): koukan bench rest posting to the router, each worker waiting for the
// transaction's final data_response (the sink's own reply, passed back in-band).
func (b *bench) rowKoukanREST(w workload, k *koukanServe, s *sink) result {
	r := newResult("e", w)
	base := s.count.Load()
	m := b.startMeter(k.pid())
	start := time.Now()
	out, err := b.command("koukan bench rest", b.koukan, "bench", "rest",
		"--router", k.routerURL, "--sender", "submission", "--from", mailFrom, "--to", rcptTo,
		"--messages", strconv.Itoa(w.Messages), "--concurrency", strconv.Itoa(w.Sessions),
		"--size", strconv.Itoa(w.Size), "--wait-final", "--json")
	r.AcceptSec = time.Since(start).Seconds()
	var res struct {
		OK     int `json:"ok"`
		Failed int `json:"failed"`
		Errors []struct {
			Code  string `json:"code"`
			Count int    `json:"count"`
		} `json:"errors"`
	}
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		m.finish()
		return failed("e", w, fmt.Errorf("koukan bench rest: %v: %s", err, tail(out)))
	}
	r.Accepted = res.OK
	if res.Failed > 0 {
		r.Note = fmt.Sprintf("%d failed %v", res.Failed, res.Errors)
	}
	b.finishRow(&r, s, base, start, m)
	return r
}

// smtpSourceRow sends the workload with smtp-source to port and waits for the sink to have
// every message; the system measured is the process tree under root.
func (b *bench) smtpSourceRow(row string, w workload, port int, s *sink, root int) result {
	r := newResult(row, w)
	base := s.count.Load()
	m := b.startMeter(root)
	start := time.Now()
	out, err := b.command("smtp-source", tool("smtp-source"), "-d",
		"-s", strconv.Itoa(w.Sessions), "-m", strconv.Itoa(w.Messages), "-l", strconv.Itoa(w.Size),
		"-f", mailFrom, "-t", rcptTo, fmt.Sprintf("127.0.0.1:%d", port))
	r.AcceptSec = time.Since(start).Seconds()
	if err != nil {
		// smtp-source stops at the first reply it did not expect: we do not know how many
		// were accepted.
		r.Note = fmt.Sprintf("%v: %s", err, tail(out))
	} else {
		r.Accepted = w.Messages
	}
	b.finishRow(&r, s, base, start, m)
	return r
}

// finishRow waits until the sink has every message of the row (counted from base), records
// how many arrived and how long after the load generator finished, and reads the meter.
func (b *bench) finishRow(r *result, s *sink, base int64, start time.Time, m *meter) {
	got, err := s.waitFor(b.ctx, base+int64(r.Workload.Messages), b.opts.stall)
	r.Delivered = int(got - base)
	r.DrainSec = max(0, time.Since(start).Seconds()-r.AcceptSec)
	cpu, peak := m.finish()
	r.fill(cpu, peak, b.clkTck)
	switch {
	case b.ctx.Err() != nil:
		r.Note = "interrupted"
	case err != nil:
		r.Note = strings.TrimPrefix(r.Note+"; "+err.Error(), "; ")
	}
}

// ---------------------------------------------------------------------------------------
// Processes

// proc is a long-running child process: its own process group, killed if the bench dies.
type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	once   sync.Once
}

func (b *bench) startProc(name string, cmd *exec.Cmd) (*proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	b.atExit(p.stop)
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop asks the process to end (SIGTERM), then kills it after 10 s.
func (p *proc) stop() {
	p.once.Do(func() {
		if !p.running() {
			return
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			logf("%s did not stop; killing it", p.name)
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// command runs a short-lived program to its end (or until the bench is interrupted) and
// returns its standard output (with standard error after it on failure).
func (b *bench) command(name, bin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(b.ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return append(stdout.Bytes(), stderr.Bytes()...), fmt.Errorf("%s: %w", name, err)
	}
	return stdout.Bytes(), nil
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = "…" + s[len(s)-300:]
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " / ")), " ")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits until something accepts connections on port, or alive says the
// server is gone.
func (b *bench) waitListening(port int, timeout time.Duration, alive func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		switch {
		case b.ctx.Err() != nil:
			return b.ctx.Err()
		case !alive():
			return errors.New("exited before listening")
		case time.Now().After(deadline):
			return fmt.Errorf("nothing listens on %d after %v", port, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tool finds a program that may live in /usr/sbin, outside a user's PATH.
func tool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/usr/lib/postfix/sbin", "/usr/local/sbin"} {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p
		}
	}
	return name
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func haveTool(name string) bool {
	_, err := exec.LookPath(tool(name))
	return err == nil
}

// ---------------------------------------------------------------------------------------
// Setup: Postfix's tools and the koukan binary

// ensurePostfixTools installs Postfix (which brings smtp-source and smtp-sink) and swaks
// with apt-get when they are missing.
func ensurePostfixTools(ctx context.Context, needPostfix bool) error {
	missing := !haveTool("smtp-source") || !haveTool("smtp-sink") || (needPostfix && !haveTool("postfix"))
	if !missing {
		return nil
	}
	if os.Geteuid() != 0 {
		return errors.New("smtp-source, smtp-sink or postfix is missing; install postfix (needs root)")
	}
	logf("installing postfix and swaks")
	preseed := "postfix postfix/main_mailer_type select No configuration\n" +
		"postfix postfix/mailname string localhost\n"
	sel := exec.CommandContext(ctx, "debconf-set-selections")
	sel.Stdin = strings.NewReader(preseed)
	if out, err := sel.CombinedOutput(); err != nil {
		return fmt.Errorf("debconf-set-selections: %v: %s", err, out)
	}
	install := func() error {
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "postfix", "swaks")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get install: %v: %s", err, tail(out))
		}
		return nil
	}
	if err := install(); err != nil {
		// The package lists may be stale or absent.
		if out, uerr := exec.CommandContext(ctx, "apt-get", "update").CombinedOutput(); uerr != nil {
			return fmt.Errorf("apt-get update: %v: %s", uerr, tail(out))
		}
		return install()
	}
	return nil
}

// buildKoukan builds the binary from this module into the work directory, unless --koukan
// names one.
func (b *bench) buildKoukan() (string, error) {
	if b.opts.koukanBin != "" {
		return filepath.Abs(b.opts.koukanBin)
	}
	gomod, err := exec.CommandContext(b.ctx, "go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
		return "", fmt.Errorf("run from inside the koukan module (go env GOMOD: %v)", err)
	}
	bin := filepath.Join(b.dir, "koukan")
	logf("building %s", bin)
	cmd := exec.CommandContext(b.ctx, "go", "build", "-o", bin, "./cmd/koukan")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v: %s", err, out)
	}
	return bin, nil
}

// ---------------------------------------------------------------------------------------
// smtp-sink, with a live count of the messages it received

type sink struct {
	*proc
	port  int
	count atomic.Int64
}

// startSink runs smtp-sink -c on a free port; it counts without storing, the fastest sink.
func (b *bench) startSink() (*sink, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &sink{port: port}
	args := []string{"-c"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody") // it refuses to run as root
	}
	args = append(args, fmt.Sprintf("127.0.0.1:%d", port), "256")
	cmd := exec.Command(tool("smtp-sink"), args...)
	cmd.Stdout = &counterWriter{count: &s.count}
	cmd.Stderr = os.Stderr
	if s.proc, err = b.startProc("smtp-sink", cmd); err != nil {
		return nil, err
	}
	if err := b.waitListening(port, 5*time.Second, s.running); err != nil {
		s.stop()
		return nil, fmt.Errorf("smtp-sink: %w", err)
	}
	return s, nil
}

// waitFor waits until the sink has received n messages in all, or until it made no progress
// for stall; it returns the count it saw last.
func (s *sink) waitFor(ctx context.Context, n int64, stall time.Duration) (int64, error) {
	last, lastChange := s.count.Load(), time.Now()
	for {
		got := s.count.Load()
		switch {
		case got >= n:
			return got, nil
		case got != last:
			last, lastChange = got, time.Now()
		case time.Since(lastChange) > stall:
			return got, fmt.Errorf("the sink stalled at %d messages for %v", got, stall)
		case ctx.Err() != nil:
			return got, ctx.Err()
		case !s.running():
			return got, errors.New("smtp-sink exited")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// counterWriter reads smtp-sink -c's counter line ("sess=2 quit=2 mesg=30", redrawn after
// a \r each time a message's "." arrives) and keeps the mesg count.
type counterWriter struct {
	mu    sync.Mutex
	buf   []byte
	count *atomic.Int64
}

func (c *counterWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	for {
		i := bytes.IndexAny(c.buf, "\r\n")
		if i < 0 {
			break
		}
		if n, ok := mesgCount(c.buf[:i]); ok {
			c.count.Store(n)
		}
		c.buf = c.buf[i+1:]
	}
	return len(p), nil
}

func mesgCount(line []byte) (int64, bool) {
	_, after, ok := bytes.Cut(line, []byte("mesg="))
	if !ok {
		return 0, false
	}
	end := bytes.IndexFunc(after, func(r rune) bool { return r < '0' || r > '9' })
	if end >= 0 {
		after = after[:end]
	}
	n, err := strconv.ParseInt(string(after), 10, 64)
	return n, err == nil
}

// ---------------------------------------------------------------------------------------
// Postfix: a private instance on loopback

type postfix struct {
	confDir   string
	port      int
	masterPID int
	once      sync.Once
}

// postfixMain is main.cf: the package defaults (durable queue, connection cache on demand,
// default concurrency) but for what a private instance relaying to the sink needs.
const postfixMain = `compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
daemon_directory = %[2]s
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.test
mydestination =
mynetworks = 127.0.0.0/8
inet_interfaces = loopback-only
inet_protocols = ipv4
relayhost = [127.0.0.1]:%[3]d
smtp_tls_security_level = none
smtpd_tls_security_level = none
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
alias_maps =
alias_database =
biff = no
`

// postfixMaster is master.cf: an smtpd on the bench's port and the usual services.
const postfixMaster = `127.0.0.1:%d inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

func (b *bench) startPostfix(sinkPort int) (*postfix, error) {
	daemonDir, err := exec.CommandContext(b.ctx, tool("postconf"), "-d", "-h", "daemon_directory").Output()
	if err != nil {
		return nil, fmt.Errorf("postconf: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := b.subdir("postfix")
	pf := &postfix{confDir: filepath.Join(dir, "conf"), port: port}
	for _, d := range []string{"conf", "queue", "data"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	if err := chownToUser(filepath.Join(dir, "data"), "postfix"); err != nil {
		return nil, err
	}
	files := map[string]string{
		"main.cf":   fmt.Sprintf(postfixMain, dir, strings.TrimSpace(string(daemonDir)), sinkPort),
		"master.cf": fmt.Sprintf(postfixMaster, port),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(pf.confDir, name), []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	b.atExit(pf.stop) // registered first: a half-started instance is stopped too
	if out, err := exec.CommandContext(b.ctx, tool("postfix"), "-c", pf.confDir, "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "maillog"))
		return nil, fmt.Errorf("postfix start: %v: %s %s", err, tail(out), tail(log))
	}
	if pf.masterPID, err = readPIDFile(filepath.Join(dir, "queue", "pid", "master.pid"), 10*time.Second); err != nil {
		return nil, err
	}
	if err := b.waitListening(port, 10*time.Second, func() bool { return processAlive(pf.masterPID) }); err != nil {
		return nil, fmt.Errorf("postfix: %w", err)
	}
	return pf, nil
}

// stop stops the instance (postfix stop), and kills its master if it lingers.
func (p *postfix) stop() {
	p.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		exec.CommandContext(ctx, tool("postfix"), "-c", p.confDir, "stop").Run()
		for deadline := time.Now().Add(10 * time.Second); p.masterPID > 0 && processAlive(p.masterPID); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				syscall.Kill(p.masterPID, syscall.SIGKILL)
				break
			}
		}
	})
}

func chownToUser(path, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(path, uid, gid)
}

func readPIDFile(path string, timeout time.Duration) (int, error) {
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		b, err := os.ReadFile(path)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && pid > 0 {
			return pid, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no pid in %s", path)
		}
	}
}

func processAlive(pid int) bool {
	// A zombie still answers kill 0; its stat state is Z.
	st, err := readStat(pid)
	return err == nil && st.state != 'Z'
}

// ---------------------------------------------------------------------------------------
// koukan serve: SMTP submission and REST in, rest_output through the gateway to the sink

type koukanServe struct {
	*proc
	routerURL  string
	submission int
}

// koukanConfig is the all-in-one config: the shipped default's submission flow (SMTP through
// the exploder, REST straight into the chain), with received_header and dkim_sign, routed to
// the gateway with the sink as the only host.
const koukanConfig = `router:
  global:
    mailer_daemon_mailbox: mailer-daemon@bench.test
  rest_listener:
    addr: [127.0.0.1, {{router}}]
    session_uri: http://127.0.0.1:{{router}}
  storage:
    url: {{storage}}
  sender:
    - name: submission
      output_chain: submission
      retry: output_chain
      notification: output_chain
      tag:
        - name: smtp-msa
          output_chain: submission_exploder
          upstream_tag: smtp-msa-upstream
          retry: null
          notification: null
        - name: smtp-msa-upstream
          retry: null
          notification: null
        - name: notification
  rest_endpoint:
    - {name: gateway, endpoint: "http://127.0.0.1:{{gateway}}", sender: router, tag: outbound}
  endpoint:
    - name: submission_exploder
      chain:
        - {filter: exploder, msa: true}
    - name: submission
      output_handler:
        retry_params: {max_attempts: 10, min_attempt_time: 60, max_attempt_time: 3600, backoff_factor: 2}
        notification: {sender: submission, tag: notification}
      chain:
        - {filter: received_header, received_hostname: koukan.bench.test}
        - {filter: dkim_sign, domain: example.com, selector: bench, key: "{{key}}"}
        - filter: router
          policy:
            name: address_list
            destination:
              endpoint: gateway
              host_list: [{host: 127.0.0.1, port: {{sink}}}]
        - {filter: rest_output}
gateway:
  rest_listener:
    addr: [127.0.0.1, {{gateway}}]
    session_uri: http://127.0.0.1:{{gateway}}
  smtp_output:
    hosts:
      outbound: {ehlo_host: koukan.bench.test}
  smtp_listener:
    services:
      # Submission without AUTH: loopback only, as in koukan serve's built-in config.
      - addr: [127.0.0.1, {{submission}}]
        endpoint: submission
        sender: submission
        tag: smtp-msa
        hostname: koukan.bench.test
        max_connections_per_ip: 500
  rest_output:
    - {name: submission, endpoint: "http://127.0.0.1:{{router}}/senders/submission/transactions"}
`

// startKoukan writes a DKIM key and the config into dir and runs koukan serve with it.
func (b *bench) startKoukan(dir, storage string, sinkPort int) (*koukanServe, error) {
	key := filepath.Join(dir, "dkim.pem")
	if err := writeDKIMKey(key, b.opts.dkim); err != nil {
		return nil, err
	}
	ports := map[string]int{}
	for _, name := range []string{"router", "gateway", "submission"} {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[name] = p
	}
	cfg := strings.NewReplacer(
		"{{router}}", strconv.Itoa(ports["router"]), "{{gateway}}", strconv.Itoa(ports["gateway"]),
		"{{submission}}", strconv.Itoa(ports["submission"]), "{{sink}}", strconv.Itoa(sinkPort),
		"{{storage}}", storage, "{{key}}", key,
	).Replace(koukanConfig)
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(b.koukan, "serve", "--config", cfgPath)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logFile, logFile
	p, err := b.startProc("koukan serve", cmd)
	if err != nil {
		return nil, err
	}
	k := &koukanServe{proc: p, routerURL: fmt.Sprintf("http://127.0.0.1:%d", ports["router"]), submission: ports["submission"]}
	for _, port := range []int{ports["router"], ports["gateway"], ports["submission"]} {
		if err := b.waitListening(port, 30*time.Second, k.running); err != nil {
			k.stop()
			log, _ := os.ReadFile(logFile.Name())
			return nil, fmt.Errorf("koukan serve: %w: %s", err, tail(log))
		}
	}
	return k, nil
}

// writeDKIMKey writes a fresh private key for dkim_sign (PKCS #8 PEM): RSA-2048, whose
// signature alone costs about a millisecond of CPU per message, or Ed25519 (RFC 8463).
func writeDKIMKey(path, kind string) error {
	var key any
	var err error
	if kind == "ed25519" {
		_, key, err = ed25519.GenerateKey(rand.Reader)
	} else {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// createDatabase makes a fresh database on the --postgres server with psql and returns its
// storage URL and a function that drops it.
func (b *bench) createDatabase() (string, func(), error) {
	if !haveTool("psql") {
		return "", nil, errors.New("psql is not installed")
	}
	admin, err := url.Parse(b.opts.pgURL)
	if err != nil {
		return "", nil, err
	}
	b.seq++
	name := fmt.Sprintf("koukan_bench_%d_%d", os.Getpid(), b.seq)
	psql := func(ctx context.Context, sql string) error {
		cmd := exec.CommandContext(ctx, "psql", b.opts.pgURL, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql)
		cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=5")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, tail(out))
		}
		return nil
	}
	if err := psql(b.ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	var once sync.Once
	drop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := psql(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
				logf("dropping database %s: %v", name, err)
			}
		})
	}
	b.atExit(drop)
	storage := *admin
	storage.Path = "/" + name
	return storage.String(), drop, nil
}

// ---------------------------------------------------------------------------------------
// Measuring a process tree through /proc

type procStat struct {
	ppid  int
	state byte
	ticks int64 // utime + stime + cutime + cstime
}

// readStat parses /proc/PID/stat; the command name may hold spaces and parentheses, so the
// fields are counted from the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("bad stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime..cstime are fields 14..17.
	if len(f) < 15 {
		return procStat{}, errors.New("short stat")
	}
	st := procStat{state: f[0][0]}
	st.ppid, _ = strconv.Atoi(f[1])
	for _, s := range f[11:15] {
		n, _ := strconv.ParseInt(s, 10, 64)
		st.ticks += n
	}
	return st, nil
}

// tree lists root and its live descendants.
func tree(root int) []int {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil {
			children[st.ppid] = append(children[st.ppid], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// treeCPU is the tree's CPU time in clock ticks: each live process's own and its reaped
// children's.
func treeCPU(root int) int64 {
	var sum int64
	for _, pid := range tree(root) {
		if st, err := readStat(pid); err == nil {
			sum += st.ticks
		}
	}
	return sum
}

// treeHWM sums VmHWM (peak resident set) over the tree, in kB.
func treeHWM(root int) int64 {
	var sum int64
	for _, pid := range tree(root) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				sum += n
			}
		}
	}
	return sum
}

// resetHWM sets each process's VmHWM back to its current RSS (clear_refs 5), so that a
// row's peak is its own even on an instance an earlier row used.
func resetHWM(root int) {
	for _, pid := range tree(root) {
		os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
	}
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times.
func clockTicks() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if n, perr := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && perr == nil && n > 0 {
		return n
	}
	return 100
}

// meter measures one row: CPU from start to finish, and the peak of the summed VmHWM,
// sampled every 200 ms (processes that come and go, as Postfix's do, are caught alive).
type meter struct {
	root int
	cpu0 int64
	stop chan struct{}
	done chan int64
}

func (b *bench) startMeter(root int) *meter {
	resetHWM(root)
	m := &meter{root: root, cpu0: treeCPU(root), stop: make(chan struct{}), done: make(chan int64)}
	go func() {
		peak := treeHWM(root)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				peak = max(peak, treeHWM(root))
			case <-m.stop:
				m.done <- max(peak, treeHWM(root))
				return
			}
		}
	}()
	return m
}

// finish waits for the tree to go quiet (the queue's last bookkeeping after the sink's 250,
// at most 3 s), then returns the CPU ticks spent and the peak RSS in kB.
func (m *meter) finish() (cpuTicks, peakKB int64) {
	prev := treeCPU(m.root)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		now := treeCPU(m.root)
		if now-prev <= 1 {
			prev = now
			break
		}
		prev = now
	}
	close(m.stop)
	return prev - m.cpu0, <-m.done
}
