package router

import (
	"context"
	"io"
	"sync"

	"github.com/koukan/koukan/engine/store"
)

// hub wakes everyone waiting on a transaction when a writer in this process commits to it.
// There is one entry per transaction that has waiters, so a hanging GET costs nothing while
// it waits: no polling, no database connection.
type hub struct {
	mu      sync.Mutex
	entries map[string]*hubEntry
	closed  chan struct{}
}

type hubEntry struct {
	changed chan struct{} // closed, and replaced, at each change
	waiters int
}

func newHub() *hub { return &hub{entries: map[string]*hubEntry{}, closed: make(chan struct{})} }

// subscribe returns a channel closed at the next change to restID (or when the hub shuts
// down), and a release function the caller must call once done waiting.
func (h *hub) subscribe(restID string) (<-chan struct{}, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.entries[restID]
	if e == nil {
		e = &hubEntry{changed: make(chan struct{})}
		h.entries[restID] = e
	}
	e.waiters++
	return e.changed, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if e.waiters--; e.waiters == 0 && h.entries[restID] == e {
			delete(h.entries, restID)
		}
	}
}

// waiting counts those waiting on restID: hanging GETs, and its output handler.
func (h *hub) waiting(restID string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e := h.entries[restID]; e != nil {
		return e.waiters
	}
	return 0
}

func (h *hub) notify(restID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e := h.entries[restID]; e != nil {
		close(e.changed)
		e.changed = make(chan struct{})
	}
}

// shutdown releases every waiter, now and later, so that shutting down is not held up by
// hanging GETs.
func (h *hub) shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.closed:
	default:
		close(h.closed)
	}
}

// notifyingStore tells the hub about every write through it, so no writer can forget to
// wake the waiters. Failed writes wake them too: one whose answer was lost (the database
// connection broke during the commit) may have committed, and a waiter on a transaction
// leased here is woken only by notifications, so it would sleep until its deadline. A wake
// for nothing costs the waiters one read.
type notifyingStore struct {
	store.Store
	hub *hub
}

func (n notifyingStore) Create(ctx context.Context, t store.NewTx) (*store.Tx, error) {
	rec, err := n.Store.Create(ctx, t)
	if err == nil {
		n.hub.notify(t.RestID)
	}
	return rec, err
}

func (n notifyingStore) Update(ctx context.Context, restID string, version int64, u store.Update) (int64, error) {
	v, err := n.Store.Update(ctx, restID, version, u)
	n.hub.notify(restID)
	return v, err
}

func (n notifyingStore) Touch(ctx context.Context, restID string) (int64, error) {
	v, err := n.Store.Touch(ctx, restID)
	n.hub.notify(restID)
	return v, err
}

func (n notifyingStore) Cancel(ctx context.Context, restID string) (int64, error) {
	v, err := n.Store.Cancel(ctx, restID)
	n.hub.notify(restID)
	return v, err
}

func (n notifyingStore) StartAttempt(ctx context.Context, restID string) (store.Attempt, error) {
	a, err := n.Store.StartAttempt(ctx, restID)
	n.hub.notify(restID)
	return a, err
}

func (n notifyingStore) FinishAttempt(ctx context.Context, restID string, f store.Finish) (int64, error) {
	v, err := n.Store.FinishAttempt(ctx, restID, f)
	n.hub.notify(restID)
	return v, err
}

func (n notifyingStore) Dequeue(ctx context.Context) (*store.Tx, error) {
	t, err := n.Store.Dequeue(ctx)
	if t != nil {
		n.hub.notify(t.RestID)
	}
	return t, err
}

func (n notifyingStore) AppendBlob(ctx context.Context, restID, blobID string, a store.Append, r io.Reader) (store.BlobStatus, error) {
	st, err := n.Store.AppendBlob(ctx, restID, blobID, a, r)
	n.hub.notify(restID)
	return st, err
}
