package router

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/tx"
)

// nextAttempt is the retry policy of a transaction whose attempt failed temporarily: when to
// try again, or the final reason that ends it. The delay grows with the transaction's age
// (backoff_factor × age, within min/max_attempt_time), as the reference's did, and is spread
// by ±20% jitter so that transactions that failed together do not come back together.
func nextAttempt(p *config.RetryParams, attempt int, creation, now time.Time, jitter func() float64) (time.Time, string) {
	if p.MaxAttempts != nil && attempt >= *p.MaxAttempts {
		return time.Time{}, tx.ReasonMaxAttempts
	}
	dt := time.Duration(float64(now.Sub(creation)) * p.BackoffFactor)
	dt = min(max(dt, p.MinAttemptTime), p.MaxAttemptTime)
	dt = time.Duration(float64(dt) * (0.8 + 0.4*jitter()))
	next := now.Add(dt)
	if p.Deadline != nil && next.Sub(creation) > *p.Deadline {
		return time.Time{}, tx.ReasonDeadline
	}
	return next, ""
}

// jitter is uniform in [0, 1).
func jitter() float64 { return rand.Float64() }

// untilStored runs write, a store write without which a transaction would stay leased here
// with nobody working on it (no other replica takes over the work of a live one), until it
// succeeds: a database away for a while must not strand transactions. It logs each failure
// as what, and gives up when the write cannot succeed or the service stops (closing the
// store releases the leases).
func (s *Service) untilStored(what, restID string, write func() error) error {
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		err := write()
		if err == nil || errors.Is(err, store.ErrNotLeased) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrSessionLost) {
			return err
		}
		s.log.Error(what, "tx", restID, "err", err, "retry_in", wait)
		select {
		case <-s.ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// storageFault is store.ErrUnavailable if err means that the store could not be reached
// (a write that failed so may still have committed, its answer lost), store.ErrFull if it
// had no space to write, and nil for any other error.
func (s *Service) storageFault(err error) error {
	if s.classify == nil {
		return nil
	}
	err = s.classify(err)
	for _, fault := range []error{store.ErrUnavailable, store.ErrFull} {
		if errors.Is(err, fault) {
			return fault
		}
	}
	return nil
}
