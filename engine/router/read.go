package router

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/koukan/koukan/engine/httpapi"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/tx"
)

// unleasedWait bounds a hanging GET on a transaction no replica is working on: a write to it
// may come from another replica, which this one would not hear about, so the client is told
// "unchanged" soon and polls again.
const unleasedWait = time.Second

// get is GET /transactions/{tx}: a point read, or with If-None-Match a hanging GET that
// returns when the version moves on or after request-timeout seconds (at most 30) with 304.
func (s *Service) get(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("tx")
	inm, hanging, err := httpapi.ETagHeader(r, "If-None-Match")
	if err != nil {
		return err
	}
	wait := s.maxWait
	if v := r.Header.Get("Request-Timeout"); v != "" && hanging {
		secs, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || secs < 0 {
			return httpapi.Problem(http.StatusBadRequest, "invalid_header", "request-timeout must be a whole number of seconds, not %q", v)
		}
		wait = min(wait, time.Duration(min(secs, 3600))*time.Second)
	}
	deadline := time.Now().Add(wait)
	for {
		// Subscribe before reading, so that a commit between the read and the wait wakes us.
		changed, release := s.hub.subscribe(id)
		h, err := s.store.Head(r.Context(), id)
		if err != nil {
			release()
			return err
		}
		if h.Lease.OwnerURI != "" {
			release()
			redirect(w, r, h.Lease.OwnerURI)
			return nil
		}
		if !hanging || h.Version != inm {
			release()
			rec, err := s.store.Get(r.Context(), id)
			if err != nil {
				return err
			}
			return s.respond(w, http.StatusOK, rec)
		}
		until := deadline
		if !h.Lease.Here {
			until = minTime(deadline, time.Now().Add(unleasedWait))
		}
		timer := time.NewTimer(time.Until(until))
		select {
		case <-changed:
		case <-timer.C:
		case <-s.hub.closed:
		case <-r.Context().Done():
		}
		timer.Stop()
		release()
		if r.Context().Err() != nil {
			return r.Context().Err()
		}
		if !time.Now().Before(until) || isClosed(s.hub.closed) {
			w.Header().Set("ETag", strconv.FormatInt(h.Version, 10))
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
	}
}

// TxSender is the name of the sender a transaction was created under, for the API key
// check (engine/httpauth); found is false for an unknown transaction.
func (s *Service) TxSender(ctx context.Context, id string) (sender string, found bool, err error) {
	rec, err := s.store.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	t, err := tx.Parse(rec.JSON, tx.DB)
	if err != nil {
		return "", false, fmt.Errorf("stored transaction %s: %w", id, err)
	}
	if t.Sender == nil {
		return "", true, nil
	}
	return t.Sender.Name, true, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// contentRange is the Content-Range of what a blob holds.
func contentRange(b store.BlobStatus) string { return httpapi.ContentRange(b.Length, b.Total) }
