// Package metrics holds the Prometheus metrics of the router and the gateway, on a registry
// of their own that `/metrics` serves. The packages that do the work record into them; this
// package only names and describes them, so that an operator reads one list.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/koukan/koukan/engine/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry holds every Koukan metric and the Go runtime's.
var Registry = prometheus.NewRegistry()

var (
	// TxCreated counts transactions created over the REST API, by sender.
	TxCreated = counter("koukan_transactions_created_total", "Transactions created over the REST API.", "sender")
	// TxFinished counts transactions that reached a final reason, by sender and reason.
	TxFinished = counter("koukan_transactions_finished_total", "Transactions that reached a final reason.", "sender", "reason")
	// Attempts counts delivery attempts by sender and outcome: final, retry or failed (an
	// internal failure).
	Attempts = counter("koukan_attempts_total", "Delivery attempts by outcome.", "sender", "outcome")
	// AttemptSeconds is how long attempts take, from start to finish.
	AttemptSeconds = histogram("koukan_attempt_seconds", "Duration of delivery attempts.", []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}, "sender")
	// HTTPRequests counts REST requests by route and status.
	HTTPRequests = counter("koukan_http_requests_total", "REST requests by route pattern and status.", "route", "status")
	// SMTPSessions is the number of inbound SMTP sessions open, by service (its sender/tag).
	SMTPSessions = gauge("koukan_smtp_sessions_open", "Inbound SMTP sessions open.", "service")
	// SMTPReplies counts SMTP replies by side (inbound: the router's answers relayed to
	// clients; outbound: what peers and the gateway made of each command) and code class
	// (2xx, 4xx, 5xx).
	SMTPReplies = counter("koukan_smtp_replies_total", "SMTP replies by side and code class.", "side", "class")
	// ScriptCalls counts calls into Lua scripts by script and result: ok, error or timeout;
	// ScriptSeconds is their duration.
	ScriptCalls   = counter("koukan_script_calls_total", "Calls into Lua scripts by result.", "script", "result")
	ScriptSeconds = histogram("koukan_script_call_seconds", "Duration of calls into Lua scripts.", []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}, "script")
	// ScriptReloads counts reloads of the scripts by result: ok or failed.
	ScriptReloads = counter("koukan_script_reloads_total", "Reloads of the Lua scripts by result.", "result")
)

func init() {
	Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

func counter(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	Registry.MustRegister(c)
	return c
}

func gauge(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	Registry.MustRegister(g)
	return g
}

func histogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	Registry.MustRegister(h)
	return h
}

// Handler serves the metrics in Prometheus' text format.
func Handler() http.Handler { return promhttp.HandlerFor(Registry, promhttp.HandlerOpts{}) }

// Class is an SMTP reply code's class label: "2xx", "4xx" or "5xx".
func Class(code int) string { return strconv.Itoa(code/100) + "xx" }

// Since is the seconds since start, for histograms.
func Since(start time.Time) float64 { return time.Since(start).Seconds() }

// CountRequests wraps an HTTP handler to count its requests by the route pattern the
// standard mux matched (or "unmatched") and the status written.
func CountRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		HTTPRequests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Flush passes on to the writer beneath: hanging GETs and streamed bodies need it.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the writer beneath.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// queueDesc describes koukan_queue_transactions.
var queueDesc = prometheus.NewDesc("koukan_queue_transactions",
	"Transactions not final yet, by state: in_flight (leased), due (for an attempt now), deferred (a later attempt).",
	[]string{"state"}, nil)

// queueCollector reads the queue from the store at each scrape.
type queueCollector struct {
	count func(ctx context.Context) (store.QueueStats, error)
}

func (queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- queueDesc }

func (q queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := q.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueDesc, err)
		return
	}
	for state, n := range map[string]int{"in_flight": st.InFlight, "due": st.Due, "deferred": st.Deferred} {
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(n), state)
	}
}

// WatchQueue exports the queue of the store count reads from (the router's), once per
// process.
func WatchQueue(count func(ctx context.Context) (store.QueueStats, error)) error {
	return Registry.Register(queueCollector{count})
}
