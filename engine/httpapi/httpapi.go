// Package httpapi is the plumbing the HTTP APIs (the router's, the admin's, the gateway's)
// share, so that clients see one shape of answer from all of them: the problem body
// {"error": {"code": "...", "message": "...", "field": "..."}} whose code is stable for
// programs and whose message is for people, and a route table whose unknown paths are 404
// and whose known paths with another method are 405 with Allow.
//
// Each API keeps its own fail function, the one place where its errors become responses:
// only it knows which of its errors are client mistakes.
package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
)

// Error is a client-facing failure: an HTTP status and the problem body it is answered with.
type Error struct {
	Status  int
	Code    string
	Message string
	// Field is the request field or parameter at fault; empty leaves it out of the body.
	Field string
}

func (e *Error) Error() string { return e.Message }

// MarshalJSON is the problem body, so that WriteJSON(w, e.Status, e) answers with it.
func (e *Error) MarshalJSON() ([]byte, error) {
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	}
	return json.Marshal(struct {
		Error body `json:"error"`
	}{body{e.Code, e.Message, e.Field}})
}

// Problem is an Error without a field, its message formatted.
func Problem(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// WriteProblem answers with e's status and problem body.
func WriteProblem(w http.ResponseWriter, e *Error) { WriteJSON(w, e.Status, e) }

// WriteJSON answers with status and v in JSON, as json.Marshal encodes it. A v that does not
// encode is a bug of ours: it is logged and answered with a 500 problem.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v, "") }

// WriteJSONLine is WriteJSON with a newline after the value, as json.Encoder writes it: the
// admin API and the health probes have always ended their bodies so.
func WriteJSONLine(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v, "\n") }

func writeJSON(w http.ResponseWriter, status int, v any, end string) {
	body, err := json.Marshal(v)
	if err != nil {
		slog.Error("encoding a response", "err", err)
		status, body = http.StatusInternalServerError, []byte(`{"error":{"code":"internal_error","message":"internal error"}}`)
	}
	WriteBody(w, status, append(body, end...))
}

// WriteBody answers with status and a body already encoded in JSON, byte for byte.
func WriteBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// ErrorRef ties a 500 a client saw to the log line with its cause.
func ErrorRef() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Route is one entry of an API's route table. Handle is a method of the API (T); the error
// it returns goes to the API's fail function.
type Route[T any] struct {
	Method, Pattern string
	Handle          func(T, http.ResponseWriter, *http.Request) error
}

// Unrouted are the problem codes of the requests no route takes.
type Unrouted struct {
	// NotFound is the code of the 404 for a path that no route has.
	NotFound string
	// MethodNotAllowed is the code of the 405 for a path that routes have, but with other
	// methods; the Allow header lists those.
	MethodNotAllowed string
}

// NewMux serves routes on api. A handler's error, and the problem of a request that no
// route takes, go to fail.
func NewMux[T any](api T, routes []Route[T], fail func(http.ResponseWriter, *http.Request, error), unrouted Unrouted) *http.ServeMux {
	mux := http.NewServeMux()
	// Paths without methods tell a wrong method (405) from an unknown path (404).
	paths := http.NewServeMux()
	allowed := map[string][]string{}
	for _, rt := range routes {
		handle := rt.Handle
		mux.HandleFunc(rt.Method+" "+rt.Pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := handle(api, w, r); err != nil {
				fail(w, r, err)
			}
		})
		if allowed[rt.Pattern] == nil {
			paths.Handle(rt.Pattern, http.NotFoundHandler())
		}
		allowed[rt.Pattern] = append(allowed[rt.Pattern], rt.Method)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := paths.Handler(r); pattern != "" {
			w.Header().Set("Allow", strings.Join(allowed[pattern], ", "))
			fail(w, r, Problem(http.StatusMethodNotAllowed, unrouted.MethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path))
			return
		}
		fail(w, r, Problem(http.StatusNotFound, unrouted.NotFound, "no route %s %s", r.Method, r.URL.Path))
	})
	return mux
}
