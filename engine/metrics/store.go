package metrics

import (
	"context"
	"io"
	"time"

	"github.com/koukan/koukan/engine/store"
)

// StoreSeconds is the latency of database operations by operation and result (ok or error);
// its count per operation is how many reached the database.
var StoreSeconds = histogram("koukan_store_op_seconds", "Latency of database operations by operation and result.",
	[]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5}, "op", "result")

// ObserveStore records the latency of each operation on st into StoreSeconds. AppendBlob's
// time includes the wait for the bytes it streams from the client.
func ObserveStore(st store.Store) store.Store { return observedStore{st} }

type observedStore struct{ store.Store }

// observe is deferred with a pointer to the operation's named error result.
func observe(op string, start time.Time, err *error) {
	result := "ok"
	if *err != nil {
		result = "error"
	}
	StoreSeconds.WithLabelValues(op, result).Observe(Since(start))
}

// Create also counts the transaction, whoever makes it: a REST client, the exploder, a
// delivery status notification.
func (o observedStore) Create(ctx context.Context, n store.NewTx) (t *store.Tx, err error) {
	defer observe("create", time.Now(), &err)
	t, err = o.Store.Create(ctx, n)
	if err == nil {
		TxCreated.WithLabelValues(n.Sender).Inc()
	}
	return t, err
}

func (o observedStore) Get(ctx context.Context, restID string) (t *store.Tx, err error) {
	defer observe("get", time.Now(), &err)
	return o.Store.Get(ctx, restID)
}

func (o observedStore) Head(ctx context.Context, restID string) (h store.Head, err error) {
	defer observe("head", time.Now(), &err)
	return o.Store.Head(ctx, restID)
}

func (o observedStore) Update(ctx context.Context, restID string, version int64, u store.Update) (v int64, err error) {
	defer observe("update", time.Now(), &err)
	return o.Store.Update(ctx, restID, version, u)
}

func (o observedStore) Touch(ctx context.Context, restID string) (v int64, err error) {
	defer observe("touch", time.Now(), &err)
	return o.Store.Touch(ctx, restID)
}

func (o observedStore) Cancel(ctx context.Context, restID string) (v int64, err error) {
	defer observe("cancel", time.Now(), &err)
	return o.Store.Cancel(ctx, restID)
}

func (o observedStore) StartAttempt(ctx context.Context, restID string) (a store.Attempt, err error) {
	defer observe("start_attempt", time.Now(), &err)
	return o.Store.StartAttempt(ctx, restID)
}

func (o observedStore) Dequeue(ctx context.Context) (t *store.Tx, err error) {
	defer observe("dequeue", time.Now(), &err)
	return o.Store.Dequeue(ctx)
}

func (o observedStore) FinishAttempt(ctx context.Context, restID string, f store.Finish) (v int64, err error) {
	defer observe("finish_attempt", time.Now(), &err)
	return o.Store.FinishAttempt(ctx, restID, f)
}

func (o observedStore) AppendBlob(ctx context.Context, restID, blobID string, a store.Append, r io.Reader) (st store.BlobStatus, err error) {
	defer observe("append_blob", time.Now(), &err)
	return o.Store.AppendBlob(ctx, restID, blobID, a, r)
}

func (o observedStore) OpenBlob(ctx context.Context, restID, blobID string) (r io.ReadCloser, st store.BlobStatus, err error) {
	defer observe("open_blob", time.Now(), &err)
	return o.Store.OpenBlob(ctx, restID, blobID)
}

func (o observedStore) Refresh(ctx context.Context) (err error) {
	defer observe("refresh", time.Now(), &err)
	return o.Store.Refresh(ctx)
}

func (o observedStore) ReapSessions(ctx context.Context, ttl time.Duration) (n int, err error) {
	defer observe("reap_sessions", time.Now(), &err)
	return o.Store.ReapSessions(ctx, ttl)
}

func (o observedStore) GC(ctx context.Context, ttl time.Duration) (st store.GCStats, err error) {
	defer observe("gc", time.Now(), &err)
	return o.Store.GC(ctx, ttl)
}
