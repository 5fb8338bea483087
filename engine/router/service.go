// Package router is the router's REST API over durable storage: transactions are created,
// read (with hanging GETs that wake when a writer commits), extended, uploaded into and
// cancelled here, and a replica's session is kept alive and its garbage collected.
//
// Every transaction a replica creates is leased to it; requests that reach another replica
// are redirected to the owner (308). Client mistakes are 4xx with a JSON problem body
// (problem.go); a 5xx means a fault of ours.
package router

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/httpapi"
	"github.com/koukan/koukan/engine/metrics"
	"github.com/koukan/koukan/engine/store"
)

// Service is one router replica's HTTP API, output handlers and background loops.
type Service struct {
	cfg   *config.Router
	store store.Store
	steps chain.Factory
	hub   *hub
	log   *slog.Logger
	mux   *http.ServeMux
	// maxWait caps a hanging GET (30 s, as the reference).
	maxWait time.Duration
	// classify tells the store's errors that mean it is unavailable or full (nil: the
	// store cannot tell).
	classify func(error) error

	// ctx bounds the output handlers; Shutdown stops it and waits for them (work). spawn
	// starts no goroutine once closing is set.
	ctx     context.Context
	stop    context.CancelFunc
	work    sync.WaitGroup
	workMu  sync.Mutex
	closing bool
	// running counts the attempts under way. The dequeue loop waits while it is at
	// global.executor.output.max_inflight, so a replica leases no more work than it runs
	// and leaves the rest to other replicas. Cut-through hand-offs are not held back: their
	// number follows the clients', and an exploder's children must not wait for a slot
	// their parent holds. released wakes the dequeue loop when an attempt ends.
	running  atomic.Int64
	released chan struct{}
}

// New builds the service on an open store whose session URI is the config's. steps makes the
// chain steps that output handlers run.
func New(cfg *config.Router, st store.Store, steps chain.Factory, log *slog.Logger) *Service {
	h := newHub()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, store: notifyingStore{newCachingStore(metrics.ObserveStore(st)), h}, steps: steps, hub: h, log: log,
		maxWait: 30 * time.Second, ctx: ctx, stop: cancel, released: make(chan struct{}, 1)}
	if c, ok := st.(store.Classifier); ok {
		s.classify = c.Classify
	}
	s.mux = httpapi.NewMux(s, routes, s.fail, httpapi.Unrouted{NotFound: "unknown_route", MethodNotAllowed: "method_not_allowed"})
	return s
}

// routes are the API; openapi.json documents exactly these.
var routes = []httpapi.Route[*Service]{
	{Method: "POST", Pattern: "/senders/{sender}/transactions", Handle: (*Service).create},
	{Method: "GET", Pattern: "/transactions/{tx}", Handle: (*Service).get},
	{Method: "PATCH", Pattern: "/transactions/{tx}", Handle: (*Service).patch},
	{Method: "PUT", Pattern: "/transactions/{tx}/body", Handle: (*Service).putBody},
	{Method: "PUT", Pattern: "/transactions/{tx}/blob/{blob}", Handle: (*Service).putBlob},
	{Method: "POST", Pattern: "/transactions/{tx}/cancel", Handle: (*Service).cancel},
	{Method: "GET", Pattern: "/openapi.json", Handle: (*Service).openAPI},
}

// Handler is the HTTP API.
func (s *Service) Handler() http.Handler { return s.mux }

// Run keeps the session alive, reaps dead replicas' sessions and collects garbage until ctx
// ends. It fails if the session is lost: another replica declared this one dead and may be
// working its transactions, so it must stop.
func (s *Service) Run(ctx context.Context) error {
	refresh := s.cfg.Storage.SessionRefreshInterval
	heartbeat := time.NewTicker(refresh)
	defer heartbeat.Stop()
	var gc <-chan time.Time
	if s.cfg.Storage.GCInterval > 0 {
		t := time.NewTicker(s.cfg.Storage.GCInterval)
		defer t.Stop()
		gc = t.C
	}
	if s.cfg.Global.Dequeue {
		s.spawn(func() { s.dequeue(ctx) })
	}
	s.spawn(func() { s.runWebhooks(ctx) })
	lastRefresh := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-heartbeat.C:
			err := s.store.Refresh(ctx)
			switch {
			case errors.Is(err, store.ErrSessionLost):
				return err
			case err != nil && time.Since(lastRefresh) > 5*refresh:
				return fmt.Errorf("storage session not refreshed for %v: %w", time.Since(lastRefresh).Round(time.Second), err)
			case err != nil:
				s.log.Warn("session refresh failed", "err", err)
				continue
			}
			lastRefresh = time.Now()
			if n, err := s.store.ReapSessions(ctx, 10*refresh); err != nil {
				s.log.Warn("reaping dead sessions failed", "err", err)
			} else if n > 0 {
				s.log.Info("released the leases of dead router sessions", "sessions", n)
			}
		case <-gc:
			st, err := s.store.GC(ctx, s.cfg.Storage.GCTTL)
			if err != nil {
				s.log.Warn("garbage collection failed", "err", err)
			} else if st != (store.GCStats{}) {
				s.log.Info("garbage collected", "transactions", st.Transactions, "blobs", st.Blobs)
			}
		}
	}
}

// dequeue starts an output handler for each transaction that is due (a retry, work a dead
// replica left, an owed notification), as long as there are some, then looks again every
// second.
func (s *Service) dequeue(ctx context.Context) {
	for ctx.Err() == nil && s.ctx.Err() == nil {
		if !s.acquireAttempt(ctx) {
			return
		}
		t, err := s.store.Dequeue(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("dequeue failed", "err", err)
		}
		if t != nil {
			s.spawn(func() {
				defer s.releaseAttempt()
				s.deliver(t.RestID, t.NotificationOnly)
			})
			continue
		}
		s.releaseAttempt()
		select {
		case <-ctx.Done():
		case <-s.ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// acquireAttempt waits for room for one more attempt; false if ctx or the service ended.
func (s *Service) acquireAttempt(ctx context.Context) bool {
	limit := int64(s.cfg.Global.Executor.Output.MaxInflight)
	for s.running.Load() >= limit {
		select {
		case <-s.released:
		case <-ctx.Done():
			return false
		case <-s.ctx.Done():
			return false
		}
	}
	s.running.Add(1)
	return true
}

// startAttempt counts an attempt that does not wait for room (a cut-through hand-off).
func (s *Service) startAttempt() { s.running.Add(1) }

func (s *Service) releaseAttempt() {
	s.running.Add(-1)
	select {
	case s.released <- struct{}{}:
	default:
	}
}

// Shutdown stops the output handlers and releases hanging GETs so that the HTTP server can
// drain; it returns once the handlers have stopped or ctx ends. Attempts cut short this way
// are picked up again once the lease goes with the session.
func (s *Service) Shutdown(ctx context.Context) {
	s.workMu.Lock()
	s.closing = true
	s.workMu.Unlock()
	s.stop()
	s.hub.shutdown()
	done := make(chan struct{})
	go func() {
		s.work.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// spawn runs f in a goroutine that Shutdown waits for, unless the service is shutting down:
// then a transaction is left for the dequeue of a later run.
func (s *Service) spawn(f func()) {
	s.workMu.Lock()
	defer s.workMu.Unlock()
	if s.closing {
		return
	}
	s.work.Add(1)
	go func() {
		defer s.work.Done()
		f()
	}()
}

// newRestID makes an unguessable transaction id of rest_id_entropy random bytes.
func (s *Service) newRestID() string {
	b := make([]byte, s.cfg.Global.RestIDEntropy)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
