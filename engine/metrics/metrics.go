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
	// TxCreated counts transactions created, by sender: over the REST API, and inside the
	// router (exploder recipients, add_route copies, delivery status notifications).
	TxCreated = counter("koukan_transactions_created_total", "Transactions created, over the REST API or inside the router (exploder, add_route, DSNs).", "sender")
	// TxFinished counts transactions that reached a final reason, by sender and reason.
	TxFinished = counter("koukan_transactions_finished_total", "Transactions that reached a final reason.", "sender", "reason")
	// Attempts counts delivery attempts by sender and outcome: final, retry or failed (an
	// internal failure).
	Attempts = counter("koukan_attempts_total", "Delivery attempts by outcome.", "sender", "outcome")
	// AttemptSeconds is how long attempts take, from start to finish.
	AttemptSeconds = histogram("koukan_attempt_seconds", "Duration of delivery attempts.", []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}, "sender")
	// TxSeconds is how long transactions take from creation to their final reason, by
	// sender and outcome (delivered, failed or cancelled): observed once per transaction,
	// where TxFinished counts it. Retries make it span minutes to days.
	TxSeconds = histogram("koukan_transaction_seconds", "Time from a transaction's creation to its final reason, by outcome: delivered, failed or cancelled.",
		[]float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 5 * 24 * 3600}, "sender", "outcome")
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
	// WebhookEvents counts webhook event deliveries by sender and result: delivered, failed
	// (a POST that did not get a 2xx; tried again later) or dropped (given up on).
	WebhookEvents = counter("koukan_webhook_events_total", "Webhook event deliveries by result: delivered, failed (tried again later) or dropped.", "sender", "result")
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

// TopDomains is how many recipient domains koukan_queue_domain_transactions names; the
// others are summed under domain="other", so that the number of series stays bounded
// whatever the queue holds.
const TopDomains = 20

// otherDomain labels the queued transactions of the domains past TopDomains, and those
// without one recipient domain (exploder parents).
const otherDomain = "other"

// queueStates are the states of transactions not final yet, in label order.
var queueStates = []store.State{store.StateInFlight, store.StateDue, store.StateDeferred, store.StateHeld}

var (
	// queueDesc describes koukan_queue_transactions.
	queueDesc = prometheus.NewDesc("koukan_queue_transactions",
		"Transactions not final yet, by state: in_flight (leased), due (for an attempt now), deferred (a later attempt), held (its domain is suspended).",
		[]string{"state"}, nil)
	// queueDomainDesc describes koukan_queue_domain_transactions.
	queueDomainDesc = prometheus.NewDesc("koukan_queue_domain_transactions",
		"Transactions not final yet, by recipient domain and state, for the "+strconv.Itoa(TopDomains)+
			` domains with the most; domain="other" sums the rest and the transactions without one recipient domain (exploder parents).`,
		[]string{"domain", "state"}, nil)
)

// queueCollector reads the queue from the store at each scrape, in one query for both
// metrics, so that they agree.
type queueCollector struct {
	read func(ctx context.Context, top int) ([]store.DomainStats, error)
	top  int
}

func (queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDesc
	ch <- queueDomainDesc
}

func (q queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	stats, err := q.read(ctx, q.top)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(queueDesc, err)
		return
	}
	total, other := map[store.State]int{}, map[store.State]int{}
	for _, d := range stats {
		for st, n := range d.Counts {
			total[st] += n
		}
		// A domain really named "other" joins the rest: one series per label set.
		if d.Domain == "" || d.Domain == otherDomain {
			for st, n := range d.Counts {
				other[st] += n
			}
			continue
		}
		for _, st := range queueStates {
			ch <- prometheus.MustNewConstMetric(queueDomainDesc, prometheus.GaugeValue, float64(d.Counts[st]), d.Domain, string(st))
		}
	}
	for _, st := range queueStates {
		ch <- prometheus.MustNewConstMetric(queueDomainDesc, prometheus.GaugeValue, float64(other[st]), otherDomain, string(st))
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(total[st]), string(st))
	}
}

// WatchQueue exports the queue that read counts (the router's store.QueueDomains), once per
// process.
func WatchQueue(read func(ctx context.Context, top int) ([]store.DomainStats, error)) error {
	return Registry.Register(queueCollector{read, TopDomains})
}
