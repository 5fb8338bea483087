package storetest

import (
	"context"
	"errors"

	"github.com/koukan/koukan/engine/store"
)

// testClassify: every backend tells which of its database's errors mean "come back later"
// (store.Classifier; the backends' own tests provoke real ones), and leaves every other
// error, its own included, as it is.
func testClassify(e *env) {
	s := e.replica("http://a", 0)
	c, ok := s.(store.Classifier)
	if !ok {
		e.t.Fatalf("%T does not implement store.Classifier", s)
	}
	_, notFound := s.Get(e.ctx, "nothing")
	if !errors.Is(notFound, store.ErrNotFound) {
		e.t.Fatalf("Get of nothing: %v", notFound)
	}
	for _, err := range []error{nil, notFound, store.ErrConflict, store.ErrNotLeased, context.Canceled, errors.New("other")} {
		if got := c.Classify(err); got != err {
			e.t.Errorf("Classify(%v) = %v, want it unchanged", err, got)
		}
	}
}
