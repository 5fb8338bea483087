package router

import (
	"context"
	"errors"
	"net/http"

	"github.com/koukan/koukan/engine/httpapi"
	"github.com/koukan/koukan/engine/store"
)

// fail is the one place where an error becomes an HTTP response. Handlers return an
// *httpapi.Error for a client mistake; a store that is unavailable or full is a 503 or 507
// (try again later); any other error is ours and becomes a 500 that hides the cause.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		re      *store.RangeError
		le      *store.LeasedError
		ue      *store.ReuseError
		leaseTo string
	)
	if s.classify != nil {
		err = s.classify(err)
	}
	ae := httpapi.RequestError(err)
	switch {
	case ae != nil:
	case errors.As(err, &re):
		w.Header().Set("Content-Range", contentRange(re.Current))
		ae = httpapi.Problem(http.StatusRequestedRangeNotSatisfiable, "invalid_range", "%s", re.Error())
	case errors.As(err, &le):
		leaseTo = le.OwnerURI
	case errors.As(err, &ue):
		ae = httpapi.Problem(http.StatusBadRequest, "invalid_reuse", "%s", ue.Error())
	case errors.Is(err, store.ErrNotFound):
		ae = httpapi.Problem(http.StatusNotFound, "unknown_transaction", "unknown transaction")
	case errors.Is(err, store.ErrConflict):
		ae = httpapi.Problem(http.StatusPreconditionFailed, "version_conflict", "the transaction changed; read it again (its ETag) and retry")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the client went away
	case errors.Is(err, store.ErrFull):
		s.log.WarnContext(r.Context(), "storage full", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = httpapi.Problem(http.StatusInsufficientStorage, "storage_full", "the router's storage is full; try again later")
	case errors.Is(err, store.ErrUnavailable):
		s.log.WarnContext(r.Context(), "storage unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "5")
		ae = httpapi.Problem(http.StatusServiceUnavailable, "storage_unavailable", "the router's storage is unavailable; try again later")
	}
	if leaseTo != "" {
		redirect(w, r, leaseTo)
		return
	}
	if ae == nil {
		ref := httpapi.ErrorRef()
		s.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "ref", ref, "err", err)
		ae = httpapi.Problem(http.StatusInternalServerError, "internal_error", "internal error (reference %s)", ref)
	}
	httpapi.WriteProblem(w, ae)
}

// redirect sends a client to the replica that holds the transaction's lease.
func redirect(w http.ResponseWriter, r *http.Request, owner string) {
	w.Header().Set("Location", owner+r.URL.RequestURI())
	w.WriteHeader(http.StatusPermanentRedirect)
}
