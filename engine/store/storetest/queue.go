package storetest

import (
	"fmt"
	"strings"
	"time"

	"github.com/koukan/koukan/engine/store"
)

// The queue's depth for metrics (QueueDomains): transactions not final, by state and by
// recipient domain, with the domains past the top summed up.

// queueLine shows domain stats as "domain state=n ...", states in store.States order, the
// rest as "(rest)", entries separated by "; ".
func queueLine(stats []store.DomainStats) string {
	var out []string
	for _, d := range stats {
		name := d.Domain
		if name == "" {
			name = "(rest)"
		}
		line := name
		for _, st := range store.States {
			if n, ok := d.Counts[st]; ok {
				line += fmt.Sprintf(" %s=%d", st, n)
			}
		}
		out = append(out, line)
	}
	return strings.Join(out, "; ")
}

func testQueueDomains(e *env) {
	s := e.replica("http://r1", 0)
	now := e.clock.Now()
	adminTx(e, s, "a-due", "app", "a.example", "", now)
	adminTx(e, s, "a-deferred", "app", "a.example", "", now.Add(time.Hour))
	must(s.Create(e.ctx, store.NewTx{RestID: "a-inflight", JSON: []byte(`{}`), Leased: true, Retry: true, RcptDomain: "a.example"})).ok(e.t)
	must(s.StartAttempt(e.ctx, "a-inflight")).ok(e.t)
	// Without retries: in flight during its one attempt, failed (not queued) after it.
	must(s.Create(e.ctx, store.NewTx{RestID: "a-oneshot", JSON: []byte(`{}`), Leased: true, RcptDomain: "a.example"})).ok(e.t)
	must(s.StartAttempt(e.ctx, "a-oneshot")).ok(e.t)
	must(s.Create(e.ctx, store.NewTx{RestID: "a-oneshot-done", JSON: []byte(`{}`), Leased: true, RcptDomain: "a.example"})).ok(e.t)
	must(s.StartAttempt(e.ctx, "a-oneshot-done")).ok(e.t)
	must(s.FinishAttempt(e.ctx, "a-oneshot-done", store.Finish{})).ok(e.t)
	adminTx(e, s, "b-deferred1", "app", "b.example", "", now.Add(time.Hour))
	adminTx(e, s, "b-deferred2", "app", "b.example", "", now.Add(time.Hour))
	// Held: one queued before its domain was suspended, one created after.
	adminTx(e, s, "h-held1", "app", "h.example", "", now.Add(time.Hour))
	must(s.SuspendDomain(e.ctx, "h.example")).ok(e.t)
	must(s.Create(e.ctx, store.NewTx{RestID: "h-held2", JSON: []byte(`{}`), Leased: true, Retry: true, RcptDomain: "h.example"})).ok(e.t)
	adminTx(e, s, "c-deferred", "app", "c.example", "", now.Add(time.Hour))
	adminTx(e, s, "d-due", "app", "d.example", "", now)
	// No one recipient domain: an exploder parent.
	must(s.Create(e.ctx, store.NewTx{RestID: "parent", JSON: []byte(`{}`), Leased: true})).ok(e.t)
	// Final: never counted.
	adminTx(e, s, "a-delivered", "app", "a.example", store.FinalSuccess, time.Time{})
	adminTx(e, s, "b-failed", "app", "b.example", "upstream response permfail", time.Time{})
	must(s.Create(e.ctx, store.NewTx{RestID: "c-cancelled", JSON: []byte(`{}`), RcptDomain: "c.example"})).ok(e.t)
	must(s.Cancel(e.ctx, "c-cancelled")).ok(e.t)

	for _, tc := range []struct {
		top  int
		want string
	}{
		// a.example has 4; b.example and h.example 2 each, in name order; the rest are
		// c.example's and d.example's one each and the parent.
		{3, "a.example in_flight=2 due=1 deferred=1; b.example deferred=2; h.example held=2; (rest) in_flight=1 due=1 deferred=1"},
		{100, "a.example in_flight=2 due=1 deferred=1; b.example deferred=2; h.example held=2; c.example deferred=1; d.example due=1; (rest) in_flight=1"},
		{0, "(rest) in_flight=3 due=2 deferred=4 held=2"},
	} {
		if got := queueLine(must(s.QueueDomains(e.ctx, tc.top)).ok(e.t)); got != tc.want {
			e.t.Errorf("queue by domain, top %d:\n got %s\nwant %s", tc.top, got, tc.want)
		}
	}
	// An hour on, the deferred are due; held stays held.
	e.clock.Advance(time.Hour)
	if got, want := queueLine(must(s.QueueDomains(e.ctx, 1)).ok(e.t)), "a.example in_flight=2 due=2; (rest) in_flight=1 due=4 held=2"; got != want {
		e.t.Errorf("queue by domain an hour later, top 1:\n got %s\nwant %s", got, want)
	}
}
