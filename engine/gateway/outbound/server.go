package outbound

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/koukan/koukan/engine/httpapi"
	"github.com/koukan/koukan/engine/tx"
)

const (
	// maxJSON bounds a POST or PATCH body; a transaction's envelope is small.
	maxJSON = 1 << 20
	// maxWait is the longest hanging GET, as on the router (reference §2.2).
	maxWait = 30 * time.Second
)

// Server is the gateway's REST listener and the SMTP client behind it. Its transactions live
// in memory. It is safe for concurrent use.
type Server struct {
	o     Options
	log   *slog.Logger
	mux   *http.ServeMux
	pool  *pool
	ctx   context.Context // ended by Close: stops workers and interrupts their SMTP I/O
	stop  context.CancelFunc
	wg    sync.WaitGroup // workers
	mu    sync.Mutex
	txs   map[string]*txn
	panic atomic.Int64
}

// New makes a Server; serve Handler() and run Run for garbage collection.
func New(o Options) *Server {
	o = o.withDefaults()
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{o: o, log: o.Log, ctx: ctx, stop: stop, txs: map[string]*txn{}}
	s.pool = newPool(s.recovered)
	s.mux = httpapi.NewMux(s, routes, s.fail, httpapi.Unrouted{NotFound: "unknown_route", MethodNotAllowed: "method_not_allowed"})
	return s
}

// Handler serves the transaction API (reference §2.1).
func (s *Server) Handler() http.Handler { return s.mux }

// Run drops finished and idle transactions every GCInterval until ctx ends or the server
// is closed (reference §3.10).
func (s *Server) Run(ctx context.Context) error {
	tick := time.NewTicker(s.o.GCInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.ctx.Done():
			return nil
		case now := <-tick.C:
			s.gc(now)
		}
	}
}

// Close ends every transaction in flight with 451 4.3.2, closes their connections, sends
// QUIT on idle ones, and waits for the workers. A worker whose message is still streaming in
// from a PUT ends when that request does, so shut the HTTP server down first.
func (s *Server) Close() {
	// Under s.mu, so that no create starts a worker once the WaitGroup is being waited on.
	s.mu.Lock()
	s.stop()
	s.mu.Unlock()
	s.pool.close()
	s.wg.Wait()
}

// Panics is the number of panics recovered in the server's goroutines.
func (s *Server) Panics() int64 { return s.panic.Load() }

func (s *Server) recovered(p any) {
	s.panic.Add(1)
	s.log.Error("panic recovered", "panic", p)
}

// gc drops transactions whose worker ended DoneTTL ago, and cancels and drops those nobody
// has touched for IdleTTL.
func (s *Server) gc(now time.Time) {
	defer func() {
		if p := recover(); p != nil {
			s.recovered(p)
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range s.txs {
		if drop, idle := t.expire(now, s.o.DoneTTL, s.o.IdleTTL); drop {
			if idle {
				s.log.Info("transaction idle; cancelled and dropped", "tx", id)
			}
			delete(s.txs, id)
		}
	}
}

// expire marks t dropped if its worker ended doneTTL ago, or, cancelling it first, if it has
// been idle for idleTTL.
func (t *txn) expire(now time.Time, doneTTL, idleTTL time.Duration) (drop, idle bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.ended && now.Sub(t.doneAt) >= doneTTL:
	case now.Sub(t.idleSince()) >= idleTTL:
		idle = !t.ended
		if idle && !t.state.Cancelled {
			t.state.Cancelled = true // the worker ends the SMTP session
		}
	default:
		return false, false
	}
	t.dropped = true
	t.bumpLocked()
	return true, idle
}

// size is the number of transactions held, for tests.
func (s *Server) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.txs)
}

// routes are the API.
var routes = []httpapi.Route[*Server]{
	{Method: "POST", Pattern: "/senders/{sender}/transactions", Handle: (*Server).create},
	{Method: "GET", Pattern: "/transactions/{tx}", Handle: (*Server).get},
	{Method: "PATCH", Pattern: "/transactions/{tx}", Handle: (*Server).patch},
	{Method: "PUT", Pattern: "/transactions/{tx}/body", Handle: (*Server).putBody},
	{Method: "PUT", Pattern: "/transactions/{tx}/blob/{blob}", Handle: (*Server).putBlob},
	{Method: "POST", Pattern: "/transactions/{tx}/cancel", Handle: (*Server).cancel},
}

// fail is the one place where an error becomes an HTTP response. The problem bodies are in
// the router's shape, so clients see the same errors from the gateway as from the router.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	ae := httpapi.RequestError(err)
	switch {
	case ae != nil:
	case r.Context().Err() != nil:
		return // the client went away
	default:
		ref := httpapi.ErrorRef()
		s.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "ref", ref, "err", err)
		ae = httpapi.Problem(http.StatusInternalServerError, "internal_error", "internal error (reference %s)", ref)
	}
	httpapi.WriteProblem(w, ae)
}

// lookup finds the transaction of a request's path.
func (s *Server) lookup(r *http.Request) (*txn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.txs[r.PathValue("tx")]
	if t == nil {
		return nil, httpapi.Problem(http.StatusNotFound, "unknown_transaction", "unknown transaction")
	}
	return t, nil
}

// TxSender is the sender a transaction was created under, for the API key check
// (engine/httpauth); found is false for an unknown transaction.
func (s *Server) TxSender(_ context.Context, id string) (sender string, found bool, err error) {
	s.mu.Lock()
	t := s.txs[id]
	s.mu.Unlock()
	if t == nil {
		return "", false, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state.Sender.Name, true, nil
}

// respond writes t's read form with its ETag.
func (s *Server) respond(w http.ResponseWriter, status int, t *txn) error {
	t.mu.Lock()
	etag, body, err := t.viewLocked()
	t.mu.Unlock()
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag)
	httpapi.WriteBody(w, status, body)
	return nil
}

// base is the URI prefix of what the server hands out.
func (s *Server) base(r *http.Request) string {
	if s.o.SessionURI != "" {
		return strings.TrimSuffix(s.o.SessionURI, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) newID() string {
	b := make([]byte, s.o.RestIDEntropy)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// readJSON reads a JSON request body; no Content-Type is taken as JSON, as the router does.
func readJSON(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, httpapi.Problem(http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be application/json")
		}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSON))
	var tooBig *http.MaxBytesError
	if err != nil && !errors.As(err, &tooBig) {
		return nil, httpapi.Problem(http.StatusBadRequest, "incomplete_body", "the request body ended early")
	}
	return data, err
}

// noBody refuses a body given in JSON: the gateway takes the raw message by PUT only.
func noBody(t *tx.Tx) error {
	if t.Body != nil {
		return &httpapi.Error{Status: http.StatusBadRequest, Code: "invalid_field",
			Message: "the gateway takes the message by PUT to body.blob_status.uri, not in JSON", Field: "body"}
	}
	return nil
}

// create is POST /senders/{sender}/transactions. The worker starts at once.
func (s *Server) create(w http.ResponseWriter, r *http.Request) error {
	data, err := readJSON(w, r)
	if err != nil {
		return err
	}
	st, err := tx.Parse(data, tx.RestCreate)
	if err != nil {
		return err
	}
	if err := noBody(st); err != nil {
		return err
	}
	tag := ""
	if st.Sender != nil {
		tag = st.Sender.Tag
	}
	if tag == "" {
		return &httpapi.Error{Status: http.StatusBadRequest, Code: "invalid_field", Message: "sender.tag is required: it names the SMTP host settings", Field: "sender.tag"}
	}
	h, ok := s.o.Hosts[tag]
	if !ok {
		return &httpapi.Error{Status: http.StatusNotFound, Code: "unknown_tag", Message: fmt.Sprintf("no SMTP host settings for sender tag %q", tag), Field: "sender.tag"}
	}
	st.Sender = &tx.Sender{Name: r.PathValue("sender"), Tag: tag}

	id := s.newID()
	base := s.base(r)
	t := newTxn(id, tag, h, base+tx.BlobPath(id, tx.TxBodyBlobID), st)
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		return httpapi.Problem(http.StatusServiceUnavailable, "shutting_down", "the gateway is shutting down")
	}
	s.txs[id] = t
	s.wg.Add(1)
	s.mu.Unlock()
	go s.work(t)

	w.Header().Set("Location", base+"/transactions/"+id)
	return s.respond(w, http.StatusCreated, t)
}

// get is GET /transactions/{tx}; with If-None-Match, a hanging GET that answers when the
// version moves on, or with 304 after Request-Timeout seconds (at most 30).
func (s *Server) get(w http.ResponseWriter, r *http.Request) error {
	inm, hanging, err := httpapi.ETagHeader(r, "If-None-Match")
	if err != nil {
		return err
	}
	wait := maxWait
	if v := r.Header.Get("Request-Timeout"); v != "" && hanging {
		secs, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || secs < 0 {
			return httpapi.Problem(http.StatusBadRequest, "invalid_header", "request-timeout must be a whole number of seconds, not %q", v)
		}
		wait = min(wait, time.Duration(secs)*time.Second)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		t, err := s.lookup(r)
		if err != nil {
			return err
		}
		t.touch()
		t.mu.Lock()
		version, changed, dropped := t.version, t.changed, t.dropped
		t.mu.Unlock()
		if dropped {
			continue // lookup will say 404 now
		}
		if !hanging || version != inm {
			return s.respond(w, http.StatusOK, t)
		}
		select {
		case <-changed:
			continue
		case <-timer.C:
		case <-s.ctx.Done():
		case <-r.Context().Done():
			return r.Context().Err()
		}
		w.Header().Set("ETag", strconv.FormatInt(version, 10))
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
}

// patch is PATCH /transactions/{tx}: recipients (and filter_output) in the update form, or
// a heartbeat (no Content-Type, no body). It does not wait for the peer.
func (s *Server) patch(w http.ResponseWriter, r *http.Request) error {
	ifMatch, ok, err := httpapi.ETagHeader(r, "If-Match")
	switch {
	case err != nil:
		return err
	case !ok:
		return httpapi.Problem(http.StatusBadRequest, "if_match_required", "PATCH needs If-Match with the transaction's ETag")
	}
	ct := r.Header.Get("Content-Type")
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSON))
	if err != nil {
		return err
	}
	var delta *tx.Tx
	switch {
	case ct == "" && len(data) == 0: // a heartbeat
	case ct == "":
		return httpapi.Problem(http.StatusUnsupportedMediaType, "unsupported_media_type", "a PATCH body must be application/json; an empty one is a heartbeat")
	default:
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return httpapi.Problem(http.StatusUnsupportedMediaType, "unsupported_media_type", "a PATCH body must be application/json; an empty one is a heartbeat")
		}
		if delta, err = tx.Parse(data, tx.RestUpdate); err != nil {
			return err
		}
		if err := noBody(delta); err != nil {
			return err
		}
	}
	t, err := s.lookup(r)
	if err != nil {
		return err
	}
	t.mu.Lock()
	err = t.updateLocked(ifMatch, delta)
	t.mu.Unlock()
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, t)
}

// updateLocked applies a PATCH, under t.mu; a nil delta is a heartbeat.
func (t *txn) updateLocked(ifMatch int64, delta *tx.Tx) error {
	switch {
	case t.version != ifMatch:
		return httpapi.Problem(http.StatusPreconditionFailed, "version_conflict", "the transaction changed; read it again (its ETag) and retry")
	case delta == nil:
	case len(delta.RcptTo) > 0 && t.state.Body != nil:
		return &httpapi.Error{Status: http.StatusConflict, Code: "conflict", Message: "recipients cannot be added once the message is being sent", Field: "rcpt_to"}
	default:
		if err := t.state.Merge(delta); err != nil {
			return err
		}
		t.fillLocked()
	}
	t.bumpLocked()
	return nil
}

// cancel is POST /transactions/{tx}/cancel; it does nothing once the message is answered.
func (s *Server) cancel(w http.ResponseWriter, r *http.Request) error {
	t, err := s.lookup(r)
	if err != nil {
		return err
	}
	t.mu.Lock()
	if !t.state.Cancelled && t.state.DataResponse == nil {
		t.state.Cancelled = true
		t.bumpLocked()
	}
	t.mu.Unlock()
	return s.respond(w, http.StatusOK, t)
}

// putBlob is PUT /transactions/{tx}/blob/{blob}: the gateway has no message-builder parts.
func (s *Server) putBlob(w http.ResponseWriter, r *http.Request) error {
	return httpapi.Problem(http.StatusNotFound, "unknown_blob", "the gateway takes only the raw message, at body.blob_status.uri")
}
