package loadgen

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// outcome is what became of one message.
type outcome struct {
	ok      bool
	latency time.Duration // until the final answer; meaningful when ok
	code    string        // the failure's group, such as "451 4.3.0" or "connect: connection refused"
}

// Result is the summary of a run; its JSON form is what "koukan bench --json" prints.
type Result struct {
	Mode        string `json:"mode"`   // "smtp" or "rest"
	Target      string `json:"target"` // the SMTP server's address, or the URL transactions are posted to
	Size        int    `json:"size_bytes"`
	Concurrency int    `json:"concurrency"`
	// Sent counts the messages that got an answer (or failed): OK + Failed.
	Sent   int `json:"sent"`
	OK     int `json:"ok"`
	Failed int `json:"failed"`
	// Duration is from the start of the run to its last answer.
	Duration   float64 `json:"duration_seconds"`
	Rate       float64 `json:"messages_per_second"` // Sent / Duration
	OKRate     float64 `json:"ok_per_second"`       // OK / Duration
	Latency    Latency `json:"latency_ms"`
	Errors     []Group `json:"errors"`
	Incomplete bool    `json:"incomplete,omitempty"` // stopped before every message was sent
}

// Latency is the distribution of the successful messages' latencies, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Group is a kind of failure and how many messages had it.
type Group struct {
	Code  string `json:"code"` // a reply ("451 4.3.0") or a failure without one ("rcpt: connection closed")
	Count int    `json:"count"`
}

// Percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of sorted, which must be
// in ascending order: the smallest value at least p% of the values are less than or
// equal to. It is 0 for no values.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// collector gathers the outcomes of a run's messages.
type collector struct {
	mu        sync.Mutex
	start     time.Time
	last      time.Time
	ok        int
	latencies []time.Duration // of the successful messages
	failures  map[string]int
}

func newCollector(start time.Time, n int) *collector {
	return &collector{start: start, last: start, latencies: make([]time.Duration, 0, min(n, 1<<20)), failures: map[string]int{}}
}

func (c *collector) record(o outcome) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = now
	if o.ok {
		c.ok++
		c.latencies = append(c.latencies, o.latency)
	} else {
		c.failures[o.code]++
	}
}

// Progress is a snapshot of a run in progress.
type Progress struct {
	Total   int // messages the run is to send
	Done    int // messages that got an answer so far
	OK      int
	Failed  int
	Elapsed time.Duration
}

func (c *collector) progress(total int) Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	failed := 0
	for _, n := range c.failures {
		failed += n
	}
	return Progress{Total: total, Done: c.ok + failed, OK: c.ok, Failed: failed, Elapsed: time.Since(c.start)}
}

// result summarizes the run; no record may come after it.
func (c *collector) result() *Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &Result{OK: c.ok, Errors: []Group{}}
	for code, n := range c.failures {
		r.Failed += n
		r.Errors = append(r.Errors, Group{code, n})
	}
	slices.SortFunc(r.Errors, func(a, b Group) int { return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Code, b.Code)) })
	r.Sent = r.OK + r.Failed
	d := c.last.Sub(c.start)
	r.Duration = d.Seconds()
	if d > 0 {
		r.Rate = float64(r.Sent) / d.Seconds()
		r.OKRate = float64(r.OK) / d.Seconds()
	}
	lat := slices.Clone(c.latencies)
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	r.Latency = Latency{ms(Percentile(lat, 50)), ms(Percentile(lat, 90)), ms(Percentile(lat, 99)), ms(Percentile(lat, 100))}
	return r
}

// WriteText prints r for a person, e.g.
//
//	smtp 127.0.0.1:1025: 2048-byte messages, concurrency 4
//	sent      300
//	ok        288
//	failed    12
//	duration  1.204s
//	rate      249.2 messages/s (239.2 ok/s)
//	latency   p50 12.1ms  p90 20.4ms  p99 31.0ms  max 40.2ms
//	errors    451 4.3.0 ×12
func (r *Result) WriteText(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d-byte messages, concurrency %d", r.Mode, r.Target, r.Size, r.Concurrency)
	if r.Incomplete {
		b.WriteString(" (interrupted)")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "sent      %d\n", r.Sent)
	fmt.Fprintf(&b, "ok        %d\n", r.OK)
	fmt.Fprintf(&b, "failed    %d\n", r.Failed)
	fmt.Fprintf(&b, "duration  %s\n", time.Duration(r.Duration*float64(time.Second)).Round(time.Millisecond))
	fmt.Fprintf(&b, "rate      %.1f messages/s (%.1f ok/s)\n", r.Rate, r.OKRate)
	if r.OK > 0 {
		fmt.Fprintf(&b, "latency   p50 %s  p90 %s  p99 %s  max %s\n", fmtMS(r.Latency.P50), fmtMS(r.Latency.P90), fmtMS(r.Latency.P99), fmtMS(r.Latency.Max))
	} else {
		b.WriteString("latency   - (no message succeeded)\n")
	}
	for i, g := range r.Errors {
		label := "          "
		if i == 0 {
			label = "errors    "
		}
		fmt.Fprintf(&b, "%s%s ×%d\n", label, g.Code, g.Count)
	}
	io.WriteString(w, b.String())
}

func fmtMS(ms float64) string {
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0fms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1fms", ms)
	default:
		return fmt.Sprintf("%.2fms", ms)
	}
}
