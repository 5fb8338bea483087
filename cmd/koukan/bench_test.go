package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/loadgen"
	"github.com/koukan/koukan/engine/rest/resttest"

	"github.com/koukan/koukan/internal/syncbuf"
)

// runBenchSink runs "koukan bench sink" in-process on a free loopback port and returns its
// address and a stop function that delivers the "signal" and returns the exit status
// and stdout.
func runBenchSink(t *testing.T, flags ...string) (addr string, stop func() (int, string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	old := benchSignals
	benchSignals = func() (context.Context, context.CancelFunc) { return context.WithCancel(ctx) }
	var stdout, stderr syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(append([]string{"bench", "sink", "--listen", "127.0.0.1:0"}, flags...), &stdout, &stderr)
	}()
	re := regexp.MustCompile(`listening on (\S+)`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("sink exited %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink did not start: %q", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	stopped := false
	var code int
	stop = func() (int, string) {
		if !stopped {
			stopped = true
			cancel()
			code = <-done
			benchSignals = old
		}
		return code, stdout.String()
	}
	t.Cleanup(func() { stop() })
	return addr, stop
}

func benchJSON(t *testing.T, args ...string) loadgen.Result {
	t.Helper()
	code, out, errOut := runCapture(append([]string{"bench"}, append(args, "--json")...)...)
	var r loadgen.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench %v: exit %d, not JSON: %v\n%s%s", args, code, err, out, errOut)
	}
	if strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("--json printed more than one line:\n%s", out)
	}
	if errOut != "" { // stderr is no terminal here: no progress bar
		t.Errorf("stderr: %q", errOut)
	}
	want := 0
	if r.OK == 0 {
		want = 1
	}
	if code != want {
		t.Errorf("exit %d with %d messages through, want %d", code, r.OK, want)
	}
	return r
}

func checkBenchLatency(t *testing.T, r loadgen.Result) {
	t.Helper()
	l := r.Latency
	if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("percentiles out of order: %+v", l)
	}
	if r.Duration <= 0 || r.Rate <= 0 || r.OKRate > r.Rate {
		t.Errorf("duration %g, rate %g, ok rate %g", r.Duration, r.Rate, r.OKRate)
	}
}

func TestBenchSMTPAgainstSink(t *testing.T) {
	addr, stop := runBenchSink(t)
	r := benchJSON(t, "smtp", "--target", addr, "--messages", "300", "--concurrency", "4", "--size", "2k")
	if r.Mode != "smtp" || r.Target != addr || r.Size != 2048 || r.Concurrency != 4 ||
		r.Sent != 300 || r.OK != 300 || r.Failed != 0 || len(r.Errors) != 0 || r.Incomplete {
		t.Errorf("result %+v", r)
	}
	checkBenchLatency(t, r)

	// The text form says the same.
	code, out, _ := runCapture("bench", "smtp", "--target", addr, "--messages", "20", "--concurrency", "2", "--size", "100k", "--ehlo", "bench.test")
	for _, want := range []string{"smtp " + addr + ": 102400-byte messages, concurrency 2\n", "sent      20\n", "ok        20\n", "failed    0\n", "messages/s", "latency   p50 "} {
		if !strings.Contains(out, want) {
			t.Errorf("exit %d, text output lacks %q:\n%s", code, want, out)
		}
	}
	code, out = stop()
	if code != 0 || !strings.Contains(out, "320 messages accepted (320 recipients, 2662400 bytes), 0 tempfailed, 0 permfailed, 6 connections") {
		t.Errorf("sink: exit %d, %q", code, out)
	}
}

func TestBenchSMTPErrorsGroupedByCode(t *testing.T) {
	addr, stop := runBenchSink(t, "--tempfail-rate", "0.5", "--json")
	r := benchJSON(t, "smtp", "--target", addr, "--messages", "300", "--concurrency", "4")
	if r.Sent != 300 || r.OK+r.Failed != 300 || len(r.Errors) != 1 ||
		r.Errors[0].Code != "451 4.3.0" || r.Errors[0].Count != r.Failed {
		t.Fatalf("result %+v", r)
	}
	if r.Failed < 90 || r.Failed > 210 { // 150 expected; far more than 6 sigma either side
		t.Errorf("%d of 300 failed at rate 0.5", r.Failed)
	}
	checkBenchLatency(t, r)
	code, out := stop()
	var c loadgen.SinkCounts
	if err := json.Unmarshal([]byte(out), &c); code != 0 || err != nil || c.Tempfailed != int64(r.Failed) || c.Messages != int64(r.OK) {
		t.Errorf("sink: exit %d, %v, %q", code, err, out)
	}
}

func TestBenchRESTWaitFinal(t *testing.T) {
	rcv := resttest.NewReceiver(resttest.Options{})
	defer rcv.Close()
	r := benchJSON(t, "rest", "--router", rcv.URL(), "--sender", "bench", "--messages", "200", "--concurrency", "4", "--size", "2k", "--wait-final")
	if r.Mode != "rest" || r.Target != rcv.URL()+"/senders/bench/transactions" ||
		r.Sent != 200 || r.OK != 200 || r.Failed != 0 || len(r.Errors) != 0 {
		t.Errorf("result %+v", r)
	}
	checkBenchLatency(t, r)
	txs := rcv.Transactions()
	ids := map[string]bool{}
	re := regexp.MustCompile(`\r\nMessage-ID: (<[^>]+>)\r\n`)
	for _, rc := range txs {
		if !rc.Finished() || rc.Tx.DataResponse == nil || len(rc.Body) != 2048 {
			t.Fatalf("transaction %s: finished %v, %d-byte body", rc.ID, rc.Finished(), len(rc.Body))
		}
		if m := re.FindSubmatch(rc.Body); m != nil {
			ids[string(m[1])] = true
		}
		if rc.Tx.MailFrom.Address != "bench@example.com" || len(rc.Tx.RcptTo) != 1 || rc.Tx.RcptTo[0].Address != "sink@example.net" {
			t.Fatalf("transaction %s: envelope %v %v", rc.ID, rc.Tx.MailFrom, rc.Tx.RcptTo)
		}
	}
	if len(txs) != 200 || len(ids) != 200 {
		t.Errorf("%d transactions with %d distinct Message-IDs, want 200", len(txs), len(ids))
	}
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench"},
		{"bench", "frob"},
		{"bench", "smtp", "--size", "0"},
		{"bench", "smtp", "--size", "huge"},
		{"bench", "smtp", "--messages", "0"},
		{"bench", "smtp", "--target", "nowhere"},
		{"bench", "smtp", "extra"},
		{"bench", "rest", "--router", "ftp://x"},
		{"bench", "rest", "--inline-max", "x"},
		{"bench", "sink", "--tempfail-rate", "0.7", "--permfail-rate", "0.7"},
		{"bench", "sink", "--nope"},
	} {
		if code, out, errOut := runCapture(args...); code != 2 || out != "" || errOut == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	for _, mode := range []string{"smtp", "rest", "sink"} {
		code, out, _ := runCapture("bench", mode, "--help")
		if code != 0 || !strings.HasPrefix(out, "Usage: koukan bench "+mode) || !strings.Contains(out, "-json") {
			t.Errorf("bench %s --help: exit %d\n%s", mode, code, out)
		}
	}
	code, out, _ := runCapture("bench", "--help")
	for _, want := range []string{"koukan bench smtp", "koukan bench rest", "koukan bench sink", "Examples:"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("bench --help lacks %q", want)
		}
	}
	// A target that refuses connections fails every message, and says so; no crash.
	addr, stop := runBenchSink(t)
	stop()
	r := benchJSON(t, "smtp", "--target", addr, "--messages", "5", "--concurrency", "2")
	if r.OK != 0 || r.Failed != 5 || !slices.Equal(r.Errors, []loadgen.Group{{Code: "connect: connection refused", Count: 5}}) {
		t.Errorf("refused: %+v", r)
	}
}

func TestBenchProgressLine(t *testing.T) {
	got := benchProgressLine(loadgen.Progress{Total: 200, Done: 50, OK: 48, Failed: 2, Elapsed: time.Second}, 20)
	if want := "[#####...............] 50/200  25%  50 msg/s  ok 48  failed 2  eta 3s"; got != want {
		t.Errorf("progress line\n got %q\nwant %q", got, want)
	}
	if benchIsTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is no terminal")
	}
}

// Behind API keys, koukan bench rest sends the key of --api-key-file or $KOUKAN_API_KEY_FILE;
// without one every message fails with the router's 401 and the run exits 1.
func TestBenchRESTAPIKey(t *testing.T) {
	t.Setenv(apiKeyFileEnv, "")
	base, appKey, _ := startKeyedRouter(t)
	args := []string{"rest", "--router", base, "--sender", "app", "--to", "bob@fast.example", "--messages", "3", "--concurrency", "2"}
	r := benchJSON(t, args...)
	if r.OK != 0 || !slices.Equal(r.Errors, []loadgen.Group{{Code: "create: http status 401 (unauthorized)", Count: 3}}) {
		t.Errorf("without a key: %+v", r)
	}
	if r := benchJSON(t, append(args, "--api-key-file", appKey, "--wait-final")...); r.OK != 3 || r.Failed != 0 {
		t.Errorf("with --api-key-file: %+v", r)
	}
	t.Setenv(apiKeyFileEnv, appKey)
	if r := benchJSON(t, append(args, "--wait-final")...); r.OK != 3 || r.Failed != 0 {
		t.Errorf("with $%s: %+v", apiKeyFileEnv, r)
	}
}
