package resttest

import (
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/koukan/koukan/engine/tx"
)

// Options configures a Receiver. The zero value answers 250 to everything at
// once over plain HTTP and does not ask for parsed messages.
type Options struct {
	// Respond picks the reply to each request (MAIL, each RCPT, DATA); nil
	// answers 250 "ok" at once.
	Respond func(Request) Reply
	// Parsing makes the receiver ask for the parsed message: read forms
	// carry body.message_builder.uri (rest_output's receive_parsing).
	Parsing bool
	// Middleware wraps the receiver's handler, to inject faults (a
	// redirect, a lost upload piece, a 500) in front of the real thing.
	Middleware func(http.Handler) http.Handler
	// TLS serves HTTPS, with HTTP/2, on a certificate from Certificate.
	TLS bool
}

// Receiver is a running REST receiver.
type Receiver struct {
	opts Options
	srv  *httptest.Server
	base string // srv.URL, which URIs in answers are built on

	mu      sync.Mutex
	txs     map[string]*rtx
	order   []*rtx // in creation order
	changed chan struct{}
	closed  chan struct{}
}

// rtx is one transaction as the receiver holds it; its fields are guarded
// by Receiver.mu.
type rtx struct {
	id string
	// version is the ETag. It moves on only once the transaction is
	// published (its 201 is being written), so a client's first view of it
	// is version 1 even if replies given at once are part of it.
	version   int
	published bool
	// state is what was received (body aside) and the responses given.
	state      *tx.Tx
	body       blob
	parts      map[string]*blob // message-builder part blobs, by id
	partIDs    []string         // in the order they were created
	parsed     json.RawMessage
	heartbeats int
	cancels    int
	// pending: a reply is being decided or waits out its delay in timer.
	pending bool
	timer   *time.Timer
}

// NewReceiver starts a receiver on 127.0.0.1; Close stops it.
func NewReceiver(opts Options) *Receiver {
	r := &Receiver{
		opts:    opts,
		txs:     map[string]*rtx{},
		changed: make(chan struct{}),
		closed:  make(chan struct{}),
	}
	var h http.Handler = r.routes()
	if opts.Middleware != nil {
		h = opts.Middleware(h)
	}
	r.srv = httptest.NewUnstartedServer(h)
	// The listener exists already, so the base URL is known before any
	// request can need it.
	r.base = "http://" + r.srv.Listener.Addr().String()
	if opts.TLS {
		r.base = "https://" + r.srv.Listener.Addr().String()
		r.srv.EnableHTTP2 = true
		r.srv.StartTLS()
	} else {
		r.srv.Start()
	}
	return r
}

// URL is the receiver's base URL, e.g. http://127.0.0.1:34567; POST to
// URL()+"/senders/{sender}/transactions".
func (r *Receiver) URL() string { return r.base }

// Certificate is the certificate a TLS receiver serves (nil without TLS),
// for a client's trusted roots.
func (r *Receiver) Certificate() *x509.Certificate { return r.srv.Certificate() }

// Close ends hanging GETs, drops pending scripted replies and stops the
// server.
func (r *Receiver) Close() {
	r.mu.Lock()
	select {
	case <-r.closed:
		r.mu.Unlock()
		return
	default:
	}
	close(r.closed)
	for _, t := range r.order {
		if t.timer != nil {
			t.timer.Stop()
		}
	}
	r.mu.Unlock()
	r.srv.Close()
}

func (r *Receiver) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /senders/{sender}/transactions", handle(r.create))
	mux.HandleFunc("GET /transactions/{id}", handle(r.get))
	mux.HandleFunc("PATCH /transactions/{id}", handle(r.patch))
	mux.HandleFunc("POST /transactions/{id}/cancel", handle(r.cancel))
	mux.HandleFunc("PUT /transactions/{id}/body", handle(r.putBody))
	mux.HandleFunc("PUT /transactions/{id}/blob/{blob}", handle(r.putPart))
	if r.opts.Parsing {
		mux.HandleFunc("POST /transactions/{id}/message_builder", handle(r.postMessageBuilder))
	}
	return mux
}

// apiError is a failed request: its status and the problem code and
// message of its body, in Koukan's shape ({"error": {"code", "message"}}),
// so clients see the same errors from a receiver as from the router.
type apiError struct {
	status        int
	code, message string
}

// handle adapts a handler that writes its success and returns its failure.
func handle(h func(http.ResponseWriter, *http.Request) *apiError) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if e := h(w, req); e != nil {
			body, _ := json.Marshal(map[string]map[string]string{"error": {"code": e.code, "message": e.message}})
			writeJSON(w, e.status, body)
		}
	}
}

// lookup finds the transaction of a request's path, under r.mu.
func (r *Receiver) lookup(req *http.Request) (*rtx, *apiError) {
	t := r.txs[req.PathValue("id")]
	if t == nil {
		return nil, &apiError{http.StatusNotFound, "unknown_transaction", "unknown transaction"}
	}
	return t, nil
}

// touch records a change of t's read form, under r.mu, and wakes everyone
// who waits for one.
func (r *Receiver) touch(t *rtx) {
	if t.published {
		t.version++
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *Receiver) uri(t *rtx, suffix string) string {
	return r.base + "/transactions/" + url.PathEscape(t.id) + suffix
}

// view is t's ETag and read form (placeholders for the request fields, the
// status of its blobs), under r.mu.
func (r *Receiver) view(t *rtx) (etag string, body []byte) {
	st := t.state.Copy()
	raw := tx.Blob{ID: tx.TxBodyBlobID, URI: r.uri(t, "/body"), Finalized: t.body.final}
	st.Body = &raw
	if r.opts.Parsing {
		mb := &tx.MessageBuilder{URI: r.uri(t, "/message_builder"), Raw: &raw}
		for _, id := range t.partIDs {
			mb.Blobs = append(mb.Blobs, tx.Blob{ID: id, URI: r.uri(t, "/blob/"+url.PathEscape(id)), Finalized: t.parts[id].final})
		}
		st.Body = mb
	}
	data, err := st.MarshalFor(tx.RestRead)
	if err != nil {
		panic("resttest: rendering a transaction: " + err.Error()) // our own state; cannot happen
	}
	return strconv.Itoa(t.version), data
}

func writeTx(w http.ResponseWriter, status int, etag string, body []byte) {
	w.Header().Set("ETag", etag)
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
