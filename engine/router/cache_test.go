package router

import (
	"context"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/store/sqlite"
)

// countingStore counts the reads that reach the database; with gate set, each read waits
// for a value on it after it has read.
type countingStore struct {
	store.Store
	gets atomic.Int64
	gate chan struct{}
}

func (c *countingStore) Get(ctx context.Context, restID string) (*store.Tx, error) {
	c.gets.Add(1)
	t, err := c.Store.Get(ctx, restID)
	if c.gate != nil {
		<-c.gate
	}
	return t, err
}

func newCacheFixture(t *testing.T) (*cachingStore, *countingStore, context.Context) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "cache.db"), store.Options{SessionURI: "http://replica"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cs := &countingStore{Store: st}
	return newCachingStore(cs), cs, ctx
}

func create(t *testing.T, c *cachingStore, ctx context.Context, id string, leased bool) {
	t.Helper()
	if _, err := c.Create(ctx, store.NewTx{RestID: id, JSON: []byte(`{}`), Leased: leased}); err != nil {
		t.Fatal(err)
	}
}

func version(t *testing.T, c *cachingStore, ctx context.Context, id string) int64 {
	t.Helper()
	rec, err := c.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Head(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != rec.Version {
		t.Fatalf("Head says version %d, Get %d", h.Version, rec.Version)
	}
	return rec.Version
}

func TestCacheServesLeasedReadsUntilAWrite(t *testing.T) {
	c, db, ctx := newCacheFixture(t)
	create(t, c, ctx, "tx", true)
	v1 := version(t, c, ctx, "tx")
	version(t, c, ctx, "tx")
	if n := db.gets.Load(); n != 0 {
		t.Fatalf("reads of a transaction as created reached the database %d times, want 0", n)
	}
	v2, err := c.Touch(ctx, "tx")
	if err != nil {
		t.Fatal(err)
	}
	if got := version(t, c, ctx, "tx"); got != v2 || v2 == v1 {
		t.Fatalf("read after a write: version %d, want %d", got, v2)
	}
	version(t, c, ctx, "tx")
	if n := db.gets.Load(); n != 1 {
		t.Fatalf("reads reaching the database: %d, want 1", n)
	}
	c.now = func() time.Time { return time.Now().Add(2 * snapshotTTL) }
	version(t, c, ctx, "tx")
	if n := db.gets.Load(); n != 2 {
		t.Fatalf("an expired snapshot was served: %d database reads, want 2", n)
	}
}

func TestCacheNeverKeepsUnleasedTransactions(t *testing.T) {
	c, db, ctx := newCacheFixture(t)
	create(t, c, ctx, "tx", false)
	for range 3 {
		if _, err := c.Get(ctx, "tx"); err != nil {
			t.Fatal(err)
		}
	}
	if n := db.gets.Load(); n != 3 {
		t.Fatalf("database reads: %d, want 3", n)
	}
}

func TestCacheDropsAReadThatAWriteOvertook(t *testing.T) {
	c, db, ctx := newCacheFixture(t)
	create(t, c, ctx, "tx", true)
	v1, err := c.Touch(ctx, "tx")
	if err != nil {
		t.Fatal(err)
	}
	db.gate = make(chan struct{})
	stale := make(chan int64)
	go func() {
		rec, err := c.Get(ctx, "tx")
		if err != nil {
			t.Error(err)
		}
		stale <- rec.Version
	}()
	for db.gets.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// The read above has read version 1 and not returned yet; a write commits meanwhile.
	v2, err := c.Update(ctx, "tx", v1, store.Update{JSON: []byte(`{"x":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	db.gate <- struct{}{}
	if v := <-stale; v != v1 {
		t.Fatalf("the racing read saw version %d, want the old %d", v, v1)
	}
	close(db.gate)
	if got := version(t, c, ctx, "tx"); got != v2 {
		t.Fatalf("read after the write: version %d, want %d (the overtaken read was kept)", got, v2)
	}
}

func TestCacheSharesOneReadAmongConcurrentReaders(t *testing.T) {
	c, db, ctx := newCacheFixture(t)
	create(t, c, ctx, "tx", true)
	if _, err := c.Touch(ctx, "tx"); err != nil {
		t.Fatal(err)
	}
	db.gate = make(chan struct{})
	var wg sync.WaitGroup
	versions := make([]int64, 8)
	for i := range versions {
		wg.Go(func() {
			rec, err := c.Get(ctx, "tx")
			if err != nil {
				t.Error(err)
				return
			}
			versions[i] = rec.Version
		})
	}
	for db.gets.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the other readers queue up behind the first
	close(db.gate)
	wg.Wait()
	if n := db.gets.Load(); n != 1 {
		t.Fatalf("8 concurrent readers made %d database reads, want 1", n)
	}
	for i, v := range versions {
		if v != 2 {
			t.Fatalf("reader %d saw version %d, want 2 (after the touch)", i, v)
		}
	}
}

func TestCacheCarriesDocumentUpdatesOver(t *testing.T) {
	c, db, ctx := newCacheFixture(t)
	create(t, c, ctx, "tx", true)
	if _, err := c.StartAttempt(ctx, "tx"); err != nil {
		t.Fatal(err)
	}
	v := version(t, c, ctx, "tx")
	reads := db.gets.Load()
	updates := []store.Update{
		{JSON: []byte(`{"a":1}`)},
		{Responses: []byte(`{"mail_response":{"code":250}}`)},
		{JSON: []byte(`{"a":2}`), MessageBuilder: []byte(`{"text_body":[]}`), Responses: []byte(`{}`)},
	}
	for _, u := range updates {
		var err error
		if v, err = c.Update(ctx, "tx", v, u); err != nil {
			t.Fatal(err)
		}
		got, err := c.Get(ctx, "tx")
		if err != nil {
			t.Fatal(err)
		}
		want, err := db.Store.Get(ctx, "tx")
		if err != nil {
			t.Fatal(err)
		}
		got.LastUpdate, want.LastUpdate = time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("after %+v the cache holds\n%+v\nthe database\n%+v", u, got, want)
		}
	}
	if n := db.gets.Load() - reads; n != 0 {
		t.Fatalf("reads after document updates reached the database %d times, want 0", n)
	}
}

// The snapshot FinishAttempt keeps is what the database holds after the finish, for each
// way an attempt ends, and is served without a read.
func TestCacheFinishMatchesStore(t *testing.T) {
	later := time.Now().Add(time.Minute)
	cases := []struct {
		name                string
		retry, notification bool
		finish              store.Finish
	}{
		{"retried later", true, true, store.Finish{Responses: []byte(`{"mail_response":{"code":450}}`), NextAttempt: later}},
		{"delivered without notification", true, false, store.Finish{Responses: []byte(`{}`), FinalReason: "upstream success"}},
		{"oneshot temporary failure", false, false, store.Finish{Responses: []byte(`{"data_response":{"code":451}}`)}},
		{"oneshot permanent failure", false, true, store.Finish{FinalReason: "upstream permfail"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, db, ctx := newCacheFixture(t)
			if _, err := c.Create(ctx, store.NewTx{RestID: "tx", JSON: []byte(`{}`), Leased: true, StartAttempt: true,
				Retry: tc.retry, Notification: tc.notification}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Get(ctx, "tx"); err != nil {
				t.Fatal(err)
			}
			reads := db.gets.Load()
			if _, err := c.FinishAttempt(ctx, "tx", tc.finish); err != nil {
				t.Fatal(err)
			}
			assertCacheMatches(t, c, db, ctx, tc.finish.NextAttempt.IsZero())
			if n := db.gets.Load() - reads; n != 0 {
				t.Fatalf("reads after the finish reached the database %d times, want 0", n)
			}
		})
	}
	t.Run("notification after the fact", func(t *testing.T) {
		c, db, ctx := newCacheFixture(t)
		if _, err := c.Create(ctx, store.NewTx{RestID: "tx", JSON: []byte(`{}`), Leased: true, StartAttempt: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.FinishAttempt(ctx, "tx", store.Finish{FinalReason: "upstream permfail"}); err != nil {
			t.Fatal(err)
		}
		h, err := c.Head(ctx, "tx")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Update(ctx, "tx", h.Version, store.Update{Notification: true}); err != nil {
			t.Fatal(err)
		}
		rec, err := c.Dequeue(ctx)
		if err != nil || rec == nil || !rec.NotificationOnly {
			t.Fatalf("dequeue: %+v, %v; want the notification pseudo-attempt", rec, err)
		}
		if _, err := c.Get(ctx, "tx"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.FinishAttempt(ctx, "tx", store.Finish{NotificationSent: true}); err != nil {
			t.Fatal(err)
		}
		assertCacheMatches(t, c, db, ctx, true)
	})
}

// assertCacheMatches compares what the cache answers for "tx" with the database; the
// default next attempt time ("now") is compared to within a second.
func assertCacheMatches(t *testing.T, c *cachingStore, db *countingStore, ctx context.Context, nextIsNow bool) {
	t.Helper()
	got, err := c.Get(ctx, "tx")
	if err != nil {
		t.Fatal(err)
	}
	want, err := db.Store.Get(ctx, "tx")
	if err != nil {
		t.Fatal(err)
	}
	if nextIsNow && got.NextAttempt.Sub(want.NextAttempt).Abs() < time.Second {
		got.NextAttempt = want.NextAttempt
	}
	got.LastUpdate, want.LastUpdate = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the cache holds\n%+v\nthe database\n%+v", got, want)
	}
	gotHead, err := c.Head(ctx, "tx")
	if err != nil {
		t.Fatal(err)
	}
	if wantHead, err := db.Store.Head(ctx, "tx"); err != nil || gotHead != wantHead {
		t.Fatalf("Head: the cache says %+v, the database %+v (%v)", gotHead, wantHead, err)
	}
}
