package admin

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/koukan/koukan/engine/store"
)

// sample is the queue's depth at one time.
type sample struct {
	At time.Time
	store.QueueStats
}

// history is a ring buffer of the last samples of the queue's depth. It lives in this
// process: a restart starts it empty, and each replica of a cluster samples the shared
// queue on its own.
type history struct {
	mu      sync.Mutex
	samples []sample
	next    int // where the next sample goes
	full    bool
}

func newHistory(size int) *history { return &history{samples: make([]sample, max(size, 2))} }

func (h *history) add(s sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples[h.next] = s
	h.next = (h.next + 1) % len(h.samples)
	h.full = h.full || h.next == 0
}

// all returns the samples, oldest first.
func (h *history) all() []sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.full {
		return append([]sample(nil), h.samples[:h.next]...)
	}
	return append(append([]sample(nil), h.samples[h.next:]...), h.samples[:h.next]...)
}

// Run samples the queue's depth for the status page's chart, at once and then every
// SampleEvery, until ctx ends.
func (a *Admin) Run(ctx context.Context) {
	t := time.NewTicker(a.o.SampleEvery)
	defer t.Stop()
	for {
		if err := a.sample(ctx); err != nil && ctx.Err() == nil {
			a.o.Log.Warn("sampling the queue for the status page", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sample takes one sample; a panic is an error, not the end of the process.
func (a *Admin) sample(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	q, err := a.o.Store.Queue(ctx)
	if err == nil {
		a.history.add(sample{time.Now(), q})
	}
	return err
}
