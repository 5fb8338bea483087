// Package admin is the router's operator interface: the queue admin API under /admin/
// (list and inspect transactions, retry one now, cancel one, suspend and resume destination
// domains) and the status page at /ui (queue depth over the last hour, recent
// transactions, delivery per destination domain, the loaded scripts).
//
// It lives apart from the transaction API so that a front proxy or API keys can protect it
// as a whole. It reads the store directly, but changes transactions only through the router
// service (Transactions), which wakes whoever waits on them. Client mistakes are 4xx with
// the router's JSON problem body; the status page escapes everything it shows.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/koukan/koukan/engine/httpapi"
	"github.com/koukan/koukan/engine/store"
)

// Store is what the admin reads, and the suspensions it writes: nobody waits on those.
type Store interface {
	List(ctx context.Context, q store.ListQuery) ([]store.Summary, error)
	Attempts(ctx context.Context, restID string) ([]store.AttemptRecord, error)
	SuspendDomain(ctx context.Context, domain string) (bool, error)
	ResumeDomain(ctx context.Context, domain string) (bool, error)
	SuspendedDomains(ctx context.Context) ([]store.SuspendedDomain, error)
	DomainStats(ctx context.Context, since time.Time) ([]store.DomainStats, error)
	Queue(ctx context.Context) (store.QueueStats, error)
}

// Transactions changes transactions the way the router service does (engine/router):
// Cancel gives a *store.LeasedError for a transaction another replica works on.
type Transactions interface {
	Cancel(ctx context.Context, id string) error
	RetryNow(ctx context.Context, id string) error
}

// Scripts is the loaded version of the Lua scripts and how the last reload went, as the
// status page shows them (cmd fills it in from luabind, which engine does not import).
type Scripts struct {
	Hash        string
	LoadedAt    time.Time
	LastAttempt time.Time
	// LastError is why the last reload was refused; empty if it was not.
	LastError string
	Scripts   []Script
}

// Script is one loaded script.
type Script struct{ Kind, Name, File string }

// Options configure the admin; Store and Transactions are required.
type Options struct {
	Store        Store
	Transactions Transactions
	// Scripts reports the loaded scripts; nil leaves them off the status page.
	Scripts func() Scripts
	// SampleEvery is how often Run samples the queue's depth for the chart (default 30 s);
	// the chart spans the last hour.
	SampleEvery time.Duration
	Log         *slog.Logger
}

// Admin serves the admin API and the status page.
type Admin struct {
	o       Options
	history *history
	mux     *http.ServeMux
}

// New builds the admin; call Run to sample the queue for the status page's chart.
func New(o Options) *Admin {
	if o.SampleEvery <= 0 {
		o.SampleEvery = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	a := &Admin{o: o, history: newHistory(int(time.Hour / o.SampleEvery))}
	a.mux = httpapi.NewMux(a, routes, a.fail, httpapi.Unrouted{NotFound: "unknown_route", MethodNotAllowed: "method_not_allowed"})
	return a
}

// routes are the admin API; docs/admin.md documents exactly these.
var routes = []httpapi.Route[*Admin]{
	{Method: "GET", Pattern: "/admin/transactions", Handle: (*Admin).list},
	{Method: "GET", Pattern: "/admin/transactions/{id}", Handle: (*Admin).show},
	{Method: "POST", Pattern: "/admin/transactions/{id}/retry", Handle: (*Admin).retry},
	{Method: "POST", Pattern: "/admin/transactions/{id}/cancel", Handle: (*Admin).cancel},
	{Method: "GET", Pattern: "/admin/domains", Handle: (*Admin).domains},
	{Method: "POST", Pattern: "/admin/domains/{domain}/suspend", Handle: (*Admin).suspend},
	{Method: "POST", Pattern: "/admin/domains/{domain}/resume", Handle: (*Admin).resume},
	{Method: "GET", Pattern: "/ui", Handle: (*Admin).page},
}

// Handler serves the routes above, and answers any other path under /admin/ with 404 (or
// 405 for a known path).
func (a *Admin) Handler() http.Handler { return a.mux }

// badParam is a query or path parameter the request got wrong.
func badParam(name, format string, args ...any) *httpapi.Error {
	return &httpapi.Error{Status: http.StatusBadRequest, Code: "invalid_parameter", Message: name + ": " + fmt.Sprintf(format, args...), Field: name}
}

// fail is the one place where an error becomes an HTTP response.
func (a *Admin) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		ae *httpapi.Error
		le *store.LeasedError
	)
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &le):
		// Its output handler runs there, and must hear of the change.
		w.Header().Set("Location", le.OwnerURI+r.URL.RequestURI())
		w.WriteHeader(http.StatusPermanentRedirect)
		return
	case errors.Is(err, store.ErrNotFound):
		ae = httpapi.Problem(http.StatusNotFound, "unknown_transaction", "unknown transaction")
	case errors.Is(err, store.ErrFinal):
		ae = httpapi.Problem(http.StatusConflict, "transaction_final", "the transaction is final: there is nothing to retry")
	case errors.Is(err, store.ErrInFlight):
		ae = httpapi.Problem(http.StatusConflict, "transaction_in_flight", "an attempt of the transaction is under way")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the client went away
	default:
		ref := httpapi.ErrorRef()
		a.o.Log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "ref", ref, "err", err)
		ae = httpapi.Problem(http.StatusInternalServerError, "internal_error", "internal error (reference %s)", ref)
	}
	httpapi.WriteJSONLine(w, ae.Status, ae)
}
