package router

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/koukan/koukan/engine/store"
)

// unleasedWait bounds a hanging GET on a transaction no replica is working on: a write to it
// may come from another replica, which this one would not hear about, so the client is told
// "unchanged" soon and polls again.
const unleasedWait = time.Second

// get is GET /transactions/{tx}: a point read, or with If-None-Match a hanging GET that
// returns when the version moves on or after request-timeout seconds (at most 30) with 304.
func (s *Service) get(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("tx")
	inm, hanging, err := etagHeader(r, "If-None-Match")
	if err != nil {
		return err
	}
	wait := s.maxWait
	if v := r.Header.Get("Request-Timeout"); v != "" && hanging {
		secs, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || secs < 0 {
			return problem(http.StatusBadRequest, "invalid_header", "request-timeout must be a whole number of seconds, not %q", v)
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

// etagHeader reads a version from If-Match or If-None-Match, tolerating the quotes and weak
// prefix of RFC 9110 entity tags.
func etagHeader(r *http.Request, name string) (int64, bool, error) {
	v := strings.TrimSpace(r.Header.Get(name))
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(v, "W/"), `"`), 10, 64)
	if err != nil {
		return 0, false, problem(http.StatusBadRequest, "invalid_header", "%s must be a transaction version (an ETag), not %q", name, v)
	}
	return n, true, nil
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

// contentRange is the Content-Range of what a blob holds: "bytes 0-(length-1)/(total or *)",
// or "bytes */total" while it is empty.
func contentRange(b store.BlobStatus) string {
	total := "*"
	if b.Total >= 0 {
		total = strconv.FormatInt(b.Total, 10)
	}
	if b.Length == 0 {
		return "bytes */" + total
	}
	return "bytes 0-" + strconv.FormatInt(b.Length-1, 10) + "/" + total
}
