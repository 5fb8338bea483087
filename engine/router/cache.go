package router

import (
	"bytes"
	"context"
	"io"
	"sync"
	"time"

	"github.com/koukan/koukan/engine/store"
)

// cachingStore answers Get and Head from the last read of a transaction this replica leases,
// as long as no write to it has gone through here since. Every write to a leased
// transaction goes through its leaseholder (other replicas redirect to it), and each one
// wakes the output handler and the hanging GETs, which then all read the same new version:
// without the cache that is one full read per waiter per write.
//
// A snapshot is kept only for transactions leased here (or just let go by an attempt here,
// see FinishAttempt), and only for snapshotTTL, which
// bounds how stale a write that did not go through here (an operator's SQL, a replica that
// wrongly thinks we are dead) can look.
type cachingStore struct {
	store.Store
	mu      sync.Mutex
	entries map[string]*cacheEntry
	swept   time.Time
	now     func() time.Time
}

const snapshotTTL = 250 * time.Millisecond

// cacheEntry counts the writes to one transaction (gen) and holds the snapshot read at
// generation snapGen, if any. Entries idle for a while are swept; a read that began before
// its entry was swept is older than snapshotTTL, so what it keeps is never served.
type cacheEntry struct {
	gen     uint64
	snap    *store.Tx
	snapGen uint64
	read    time.Time
	touched time.Time
	// loading is closed when the read begun at generation loadGen ends: waiters woken by
	// the same write wait for that read instead of each doing their own.
	loading chan struct{}
	loadGen uint64
}

func newCachingStore(st store.Store) *cachingStore {
	return &cachingStore{Store: st, entries: map[string]*cacheEntry{}, now: time.Now}
}

// cached returns a copy of the valid snapshot of restID, or else the generation a new read
// must be kept under and the channel to close when that read ends (nil when there is
// nobody to tell). It waits for a read of the same generation already under way.
func (c *cachingStore) cached(ctx context.Context, restID string) (*store.Tx, uint64, chan struct{}, error) {
	for {
		c.mu.Lock()
		e := c.entries[restID]
		if e == nil {
			c.mu.Unlock()
			return nil, 0, nil, nil
		}
		if e.snap != nil && e.snapGen == e.gen && c.now().Sub(e.read) <= snapshotTTL {
			cp := clone(e.snap)
			c.mu.Unlock()
			return cp, 0, nil, nil
		}
		if e.loading == nil || e.loadGen != e.gen {
			loading, gen := make(chan struct{}), e.gen
			e.loading, e.loadGen = loading, gen
			c.mu.Unlock()
			return nil, gen, loading, nil
		}
		wait := e.loading
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, 0, nil, ctx.Err()
		}
	}
}

// keep stores t (nil after a failed read) as the snapshot of restID, read from the database
// since read, if this replica holds the lease and no write went through since the read
// began (gen), and lets those waiting for the read go on.
func (c *cachingStore) keep(restID string, t *store.Tx, gen uint64, read time.Time, loading chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.sweep(now)
	e := c.entries[restID]
	if loading != nil {
		close(loading)
		if e != nil && e.loading == loading {
			e.loading = nil
		}
	}
	if t == nil || !t.Lease.Here || (e == nil && gen != 0) || (e != nil && e.gen != gen) {
		return
	}
	if e == nil {
		e = &cacheEntry{}
		c.entries[restID] = e
	}
	e.snap, e.snapGen, e.read, e.touched = t, gen, read, now
}

// sweep drops the entries idle for longer than a few snapshot lifetimes, at most once per
// snapshot lifetime.
func (c *cachingStore) sweep(now time.Time) {
	if now.Sub(c.swept) < snapshotTTL {
		return
	}
	c.swept = now
	for id, e := range c.entries {
		if now.Sub(e.touched) > 4*snapshotTTL {
			delete(c.entries, id)
		}
	}
}

// wrote invalidates restID's snapshot: a write to it has committed (or may have).
func (c *cachingStore) wrote(restID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wroteLocked(restID)
}

func (c *cachingStore) wroteLocked(restID string) {
	e := c.entries[restID]
	if e == nil {
		// A read under way found no entry; this one tells it that it read too early.
		e = &cacheEntry{}
		c.entries[restID] = e
	}
	e.gen++
	e.snap, e.touched = nil, c.now()
}

func (c *cachingStore) Get(ctx context.Context, restID string) (*store.Tx, error) {
	t, gen, loading, err := c.cached(ctx, restID)
	if t != nil || err != nil {
		return t, err
	}
	return c.load(ctx, restID, gen, loading)
}

// Create keeps the new transaction as read back after its commit: its creator's output
// handler and first hanging GET read it next.
func (c *cachingStore) Create(ctx context.Context, n store.NewTx) (*store.Tx, error) {
	read := c.now()
	t, err := c.Store.Create(ctx, n)
	if err == nil {
		c.keep(n.RestID, clone(t), 0, read, nil)
	}
	return t, err
}

func clone(t *store.Tx) *store.Tx {
	cp := *t
	cp.Blobs = append([]store.Blob(nil), t.Blobs...)
	return &cp
}

// load reads restID from the database and keeps what it read.
func (c *cachingStore) load(ctx context.Context, restID string, gen uint64, loading chan struct{}) (*store.Tx, error) {
	read := c.now()
	t, err := c.Store.Get(ctx, restID)
	var kept *store.Tx
	if err == nil {
		kept = clone(t)
	}
	c.keep(restID, kept, gen, read, loading)
	return t, err
}

// Head answers from the snapshot of a transaction leased here, reading it if a write made
// it stale (the waiters' next step is a Get of the same version).
func (c *cachingStore) Head(ctx context.Context, restID string) (store.Head, error) {
	t, gen, loading, err := c.cached(ctx, restID)
	switch {
	case err != nil:
		return store.Head{}, err
	case t == nil && loading == nil:
		return c.Store.Head(ctx, restID)
	case t == nil:
		if t, err = c.load(ctx, restID, gen, loading); err != nil {
			return store.Head{}, err
		}
		if !t.Lease.Here {
			return c.Store.Head(ctx, restID)
		}
	}
	// Leased here, or let go by an attempt here (FinishAttempt): a final reason is final
	// unless it is the oneshot mark of the attempt under way.
	final := t.FinalAttemptReason != "" && (t.FinalAttemptReason != store.FinalOneshot || !t.Lease.Here)
	return store.Head{Version: t.Version, Lease: t.Lease, Final: final}, nil
}

// Update carries a snapshot of the version it updated over to the new version when it only
// replaced documents: the writer's own waiters then read what it wrote without a read.
func (c *cachingStore) Update(ctx context.Context, restID string, version int64, u store.Update) (int64, error) {
	v, err := c.Store.Update(ctx, restID, version, u)
	if err != nil || u.Retry || u.Notification || len(u.AddBlobs) > 0 {
		c.wrote(restID)
		return v, err
	}
	c.carryOver(restID, version, func(t *store.Tx, now time.Time) {
		t.Version, t.LastUpdate = v, now.Truncate(time.Millisecond)
		if u.JSON != nil {
			t.JSON = bytes.Clone(u.JSON)
		}
		if u.MessageBuilder != nil {
			t.MessageBuilder = bytes.Clone(u.MessageBuilder)
		}
		if u.Responses != nil {
			t.Responses = bytes.Clone(u.Responses)
		}
	})
	return v, err
}

// carryOver applies a write that committed on top of version to the snapshot of restID, if
// the snapshot is that version and still valid; otherwise the write just invalidates it.
func (c *cachingStore) carryOver(restID string, version int64, apply func(t *store.Tx, now time.Time)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[restID]
	now := c.now()
	if e == nil || e.snap == nil || e.snapGen != e.gen || e.snap.Version != version || now.Sub(e.read) > snapshotTTL {
		c.wroteLocked(restID)
		return
	}
	t := clone(e.snap)
	apply(t, now)
	e.gen++
	e.snap, e.snapGen, e.read, e.touched = t, e.gen, now, now
}

func (c *cachingStore) Touch(ctx context.Context, restID string) (int64, error) {
	defer c.wrote(restID)
	return c.Store.Touch(ctx, restID)
}

func (c *cachingStore) Cancel(ctx context.Context, restID string) (int64, error) {
	defer c.wrote(restID)
	return c.Store.Cancel(ctx, restID)
}

func (c *cachingStore) StartAttempt(ctx context.Context, restID string) (store.Attempt, error) {
	defer c.wrote(restID)
	return c.Store.StartAttempt(ctx, restID)
}

// FinishAttempt releases the lease. The transaction as the finish left it is kept for the
// readers this write wakes (the client's hanging GET, the exploder waiting for a recipient):
// without it each of them reads the final state back from the database. It is the one
// snapshot kept of a transaction not leased here; another replica that dequeues it at once
// (a retry due now) is hidden from readers here for at most snapshotTTL, as any write that
// did not go through here is.
func (c *cachingStore) FinishAttempt(ctx context.Context, restID string, f store.Finish) (int64, error) {
	v, err := c.Store.FinishAttempt(ctx, restID, f)
	if err != nil {
		c.wrote(restID)
		return v, err
	}
	c.carryOver(restID, v-1, func(t *store.Tx, now time.Time) { finished(t, f, v, now) })
	return v, err
}

// finished applies f to t as store.Store.FinishAttempt does to the stored transaction
// (TestCacheFinishMatchesStore holds the two together).
func finished(t *store.Tx, f store.Finish, version int64, now time.Time) {
	t.Version, t.LastUpdate = version, now.Truncate(time.Millisecond)
	t.Lease = store.Lease{}
	t.NextAttempt = now.Truncate(time.Millisecond)
	if !f.NextAttempt.IsZero() {
		t.NextAttempt = f.NextAttempt.Truncate(time.Millisecond)
	}
	if f.FinalReason != "" && (t.FinalAttemptReason == "" || t.FinalAttemptReason == store.FinalOneshot) {
		t.FinalAttemptReason = f.FinalReason
	}
	switch {
	case f.NotificationSent:
		t.NoFinalNotification = false
	case f.FinalReason != "" && !t.Notification:
		t.NoFinalNotification = true
	}
	if f.Responses != nil {
		t.Responses = bytes.Clone(f.Responses)
	}
}

func (c *cachingStore) Dequeue(ctx context.Context) (*store.Tx, error) {
	t, err := c.Store.Dequeue(ctx)
	if t != nil {
		c.wrote(t.RestID)
	}
	return t, err
}

func (c *cachingStore) AppendBlob(ctx context.Context, restID, blobID string, a store.Append, r io.Reader) (store.BlobStatus, error) {
	defer c.wrote(restID)
	return c.Store.AppendBlob(ctx, restID, blobID, a, r)
}
