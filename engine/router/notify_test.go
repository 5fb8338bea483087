package router

import (
	"context"
	"errors"
	"testing"

	"github.com/koukan/koukan/engine/store"
)

// lostAnswers is a store whose writes commit and then report an error, as when the database
// connection breaks during the commit.
type lostAnswers struct{ store.Store }

var errLostAnswer = errors.New("conn closed")

func (l lostAnswers) FinishAttempt(ctx context.Context, restID string, f store.Finish) (int64, error) {
	l.Store.FinishAttempt(ctx, restID, f)
	return 0, errLostAnswer
}

func (l lostAnswers) Update(ctx context.Context, restID string, version int64, u store.Update) (int64, error) {
	l.Store.Update(ctx, restID, version, u)
	return 0, errLostAnswer
}

// A write that may have committed wakes the waiters even though it failed: a hanging GET of
// a transaction leased here is woken by nothing else before its deadline.
func TestFailedWritesWakeWaiters(t *testing.T) {
	_, db, ctx := newCacheFixture(t)
	h := newHub()
	n := notifyingStore{lostAnswers{db}, h}
	if _, err := n.Create(ctx, store.NewTx{RestID: "tx", JSON: []byte(`{}`), Leased: true, StartAttempt: true}); err != nil {
		t.Fatal(err)
	}
	for _, write := range []struct {
		name string
		do   func() error
	}{
		{"update", func() error { _, err := n.Update(ctx, "tx", 2, store.Update{JSON: []byte(`{"a":1}`)}); return err }},
		{"finish", func() error { _, err := n.FinishAttempt(ctx, "tx", store.Finish{}); return err }},
	} {
		changed, release := h.subscribe("tx")
		if err := write.do(); !errors.Is(err, errLostAnswer) {
			t.Fatalf("%s: %v", write.name, err)
		}
		select {
		case <-changed:
		default:
			t.Errorf("%s failed (its commit went through) and woke nobody", write.name)
		}
		release()
	}
}
