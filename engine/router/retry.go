package router

import (
	"math/rand/v2"
	"time"

	"github.com/koukan/koukan/config"
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
