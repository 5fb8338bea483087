package rest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// A router and a gateway in one process (koukan serve) talk REST to each other on every
// message. Requests a Client sends over plain HTTP to an address this process itself serves
// go straight to that handler instead of through the loopback TCP stack: same handlers,
// same middleware and the same streaming, without the system calls and the HTTP/1.1
// framing on both ends.

var (
	localMu       sync.RWMutex
	localHandlers = map[string]*localEntry{}
)

type localEntry struct{ h http.Handler }

// ServeLocally routes this process's Client requests for http://hostPort to h until the
// returned function is called. Only plain-HTTP listeners belong here: a TLS listener's
// clients expect its certificate checks, and its handler may expect r.TLS.
func ServeLocally(hostPort string, h http.Handler) (unregister func()) {
	localMu.Lock()
	defer localMu.Unlock()
	e := &localEntry{h}
	localHandlers[hostPort] = e
	return func() {
		localMu.Lock()
		defer localMu.Unlock()
		if localHandlers[hostPort] == e {
			delete(localHandlers, hostPort)
		}
	}
}

func localHandler(req *http.Request) http.Handler {
	if req.URL.Scheme != "http" {
		return nil
	}
	localMu.RLock()
	defer localMu.RUnlock()
	if e := localHandlers[req.URL.Host]; e != nil {
		return e.h
	}
	return nil
}

// localTransport hands requests for addresses served in this process to their handler, and
// the rest to next.
type localTransport struct{ next http.RoundTripper }

func (t localTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h := localHandler(req)
	if h == nil {
		return t.next.RoundTrip(req)
	}
	return serveLocal(h, req)
}

// serveLocal runs h on a server-side copy of req in its own goroutine, as net/http's server
// would, and returns the response as soon as its header is written; the body streams
// through a pipe while the handler writes it.
func serveLocal(h http.Handler, req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	in := req.Clone(ctx)
	in.RequestURI = req.URL.RequestURI()
	in.RemoteAddr = "127.0.0.1:0" // loopback, as the TCP peer would be
	in.Proto, in.ProtoMajor, in.ProtoMinor = "HTTP/1.1", 1, 1
	if in.Host == "" {
		in.Host = req.URL.Host
	}
	if in.Body == nil {
		in.Body = http.NoBody
	}
	if req.ContentLength > 0 || (req.ContentLength == 0 && (req.Body == nil || req.Body == http.NoBody)) {
		in.Header.Set("Content-Length", strconv.FormatInt(req.ContentLength, 10))
	}
	pr, pw := io.Pipe()
	w := &localWriter{header: http.Header{}, body: pw, ready: make(chan struct{}), req: req}
	go func() {
		defer cancel()
		defer func() {
			if p := recover(); p != nil && p != http.ErrAbortHandler {
				w.fail(fmt.Errorf("rest: handler for %s panicked: %v", req.URL.Redacted(), p))
				return
			}
			w.WriteHeader(http.StatusOK) // a handler that wrote nothing answered 200
			pw.Close()
		}()
		defer in.Body.Close()
		h.ServeHTTP(w, in)
	}()
	select {
	case <-w.ready:
	case <-req.Context().Done():
		cancel()
		pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	if w.err != nil {
		return nil, w.err
	}
	return w.resp(&localBody{pr, cancel}), nil
}

// localWriter is the handler's ResponseWriter; ready closes when the header is written.
type localWriter struct {
	header  http.Header
	sent    http.Header
	status  int
	body    *io.PipeWriter
	ready   chan struct{}
	once    sync.Once
	err     error
	req     *http.Request
	written bool
}

func (w *localWriter) Header() http.Header { return w.header }

func (w *localWriter) WriteHeader(code int) {
	if w.written {
		return
	}
	w.written = true
	w.status, w.sent = code, w.header.Clone()
	w.once.Do(func() { close(w.ready) })
}

func (w *localWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// Flush is a no-op: every Write reaches the reader at once.
func (w *localWriter) Flush() {}

// fail ends a handler that panicked: before its header, the round trip fails; after it,
// the body breaks, as a connection the server closes would.
func (w *localWriter) fail(err error) {
	if !w.written {
		w.err = err
		w.once.Do(func() { close(w.ready) })
	}
	w.body.CloseWithError(err)
}

func (w *localWriter) resp(body io.ReadCloser) *http.Response {
	length := int64(-1)
	if v := w.sent.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			length = n
		}
	}
	if w.req.Method == http.MethodHead || w.status == http.StatusNoContent || w.status == http.StatusNotModified {
		length = 0
	}
	return &http.Response{
		Status: strconv.Itoa(w.status) + " " + http.StatusText(w.status), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.sent, Body: body, ContentLength: length, Request: w.req,
	}
}

// localBody ends the handler's context when the client closes the body early, as closing
// a connection would.
type localBody struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (b *localBody) Close() error {
	b.cancel()
	return b.PipeReader.CloseWithError(errors.New("rest: response body closed"))
}
