package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/tx"
)

// apiError is a client-facing failure: an HTTP status and a problem body
// {"error": {"code": "...", "message": "...", "field": "..."}} whose code is stable for
// programs and whose message is for people. Handlers return these for client mistakes; any
// other error is ours and becomes a 500 that hides the cause.
type apiError struct {
	status  int
	code    string
	message string
	field   string
}

func (e *apiError) Error() string { return e.message }

func problem(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

type problemJSON struct {
	Error problemBody `json:"error"`
}

type problemBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// fail is the one place where an error becomes an HTTP response.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		ae      *apiError
		fe      *tx.FieldError
		se      *tx.SyntaxError
		ce      *tx.ConflictError
		re      *store.RangeError
		le      *store.LeasedError
		ue      *store.ReuseError
		tooBig  *http.MaxBytesError
		leaseTo string
	)
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &fe):
		ae = &apiError{http.StatusBadRequest, "invalid_field", fe.Error(), fe.Field}
	case errors.As(err, &se):
		ae = problem(http.StatusBadRequest, "invalid_json", "%s", se.Error())
	case errors.As(err, &ce):
		ae = &apiError{http.StatusConflict, "conflict", ce.Error(), ce.Field}
	case errors.As(err, &re):
		w.Header().Set("Content-Range", contentRange(re.Current))
		ae = problem(http.StatusRequestedRangeNotSatisfiable, "invalid_range", "%s", re.Error())
	case errors.As(err, &le):
		leaseTo = le.OwnerURI
	case errors.As(err, &ue):
		ae = problem(http.StatusBadRequest, "invalid_reuse", "%s", ue.Error())
	case errors.As(err, &tooBig):
		ae = problem(http.StatusRequestEntityTooLarge, "too_large", "request body exceeds the limit of %d bytes", tooBig.Limit)
	case errors.Is(err, store.ErrNotFound):
		ae = problem(http.StatusNotFound, "unknown_transaction", "unknown transaction")
	case errors.Is(err, store.ErrConflict):
		ae = problem(http.StatusPreconditionFailed, "version_conflict", "the transaction changed; read it again (its ETag) and retry")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the client went away
	}
	if leaseTo != "" {
		redirect(w, r, leaseTo)
		return
	}
	if ae == nil {
		ref := errorRef()
		s.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "ref", ref, "err", err)
		ae = problem(http.StatusInternalServerError, "internal_error", "internal error (reference %s)", ref)
	}
	writeJSON(w, ae.status, problemJSON{problemBody{ae.code, ae.message, ae.field}})
}

// redirect sends a client to the replica that holds the transaction's lease.
func redirect(w http.ResponseWriter, r *http.Request, owner string) {
	w.Header().Set("Location", owner+r.URL.RequestURI())
	w.WriteHeader(http.StatusPermanentRedirect)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		slog.Error("encoding a response", "err", err)
		status, body = http.StatusInternalServerError, []byte(`{"error":{"code":"internal_error","message":"internal error"}}`)
	}
	writeBody(w, status, body)
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// errorRef ties a 500 a client saw to the log line with its cause.
func errorRef() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
