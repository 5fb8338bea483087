package storetest

import (
	"errors"
	"slices"
	"time"

	"github.com/koukan/koukan/engine/store"
)

// The queue admin API's storage: listing by state and filters, attempts, retry now, and
// domain suspension holding transactions at creation and at dequeue.

// adminTx creates a transaction of sender to one recipient of domain, with retries, and
// takes it through its first attempt: final with reason, or (reason "") retried at next.
// It returns the transaction's rest id.
func adminTx(e *env, s store.Store, id, sender, domain string, reason string, next time.Time) string {
	e.t.Helper()
	must(s.Create(e.ctx, store.NewTx{RestID: id, JSON: []byte(`{}`), Leased: true, Retry: true, Sender: sender,
		RcptDomain: domain, Blobs: []store.NewBlob{{ID: store.TxBodyBlob, Content: []byte("x"), Inline: true}}})).ok(e.t)
	must(s.StartAttempt(e.ctx, id)).ok(e.t)
	must(s.FinishAttempt(e.ctx, id, store.Finish{FinalReason: reason, NextAttempt: next,
		Responses: []byte(`{"rcpt_response":[{"code":451,"message":"` + id + `"}]}`)})).ok(e.t)
	return id
}

// listIDs lists the rest ids q selects.
func listIDs(e *env, s store.Store, q store.ListQuery) []string {
	e.t.Helper()
	var ids []string
	for _, t := range must(s.List(e.ctx, q)).ok(e.t) {
		ids = append(ids, t.RestID)
	}
	return ids
}

func testAdminList(e *env) {
	s := e.replica("http://r1", 0)
	now := e.clock.Now()
	adminTx(e, s, "delivered", "app", "a.example", store.FinalSuccess, time.Time{})
	adminTx(e, s, "failed", "app", "a.example", "upstream response permfail", time.Time{})
	adminTx(e, s, "due", "app", "b.example", "", now)
	adminTx(e, s, "deferred", "bulk", "b.example", "", now.Add(time.Hour))
	must(s.Create(e.ctx, store.NewTx{RestID: "oneshot", JSON: []byte(`{}`), Leased: true, Sender: "app", RcptDomain: "a.example"})).ok(e.t)
	must(s.StartAttempt(e.ctx, "oneshot")).ok(e.t)
	must(s.FinishAttempt(e.ctx, "oneshot", store.Finish{})).ok(e.t) // a temporary failure without retries
	must(s.Create(e.ctx, store.NewTx{RestID: "cancelled", JSON: []byte(`{}`), Leased: true, Sender: "app"})).ok(e.t)
	must(s.Cancel(e.ctx, "cancelled")).ok(e.t)
	must(s.Create(e.ctx, store.NewTx{RestID: "inflight", JSON: []byte(`{"x":1}`), Leased: true, Sender: "app", RcptDomain: "c.example"})).ok(e.t)
	must(s.StartAttempt(e.ctx, "inflight")).ok(e.t)
	must(s.SuspendDomain(e.ctx, "d.example")).ok(e.t)
	must(s.Create(e.ctx, store.NewTx{RestID: "held", JSON: []byte(`{}`), Leased: true, Retry: true, Sender: "app", RcptDomain: "d.example"})).ok(e.t)

	all := must(s.List(e.ctx, store.ListQuery{})).ok(e.t)
	want := []string{"held", "inflight", "cancelled", "oneshot", "deferred", "due", "failed", "delivered"}
	wantState := map[string]store.State{"held": store.StateHeld, "inflight": store.StateInFlight, "cancelled": store.StateCancelled,
		"oneshot": store.StateFailed, "deferred": store.StateDeferred, "due": store.StateDue, "failed": store.StateFailed,
		"delivered": store.StateDelivered}
	var got []string
	for _, t := range all {
		got = append(got, t.RestID)
		if t.State != wantState[t.RestID] {
			e.t.Errorf("%s: state %s, want %s", t.RestID, t.State, wantState[t.RestID])
		}
	}
	if !slices.Equal(got, want) {
		e.t.Fatalf("list %v, want newest first %v", got, want)
	}
	byID := map[string]store.Summary{}
	for _, t := range all {
		byID[t.RestID] = t
	}
	if d := byID["deferred"]; d.Sender != "bulk" || d.RcptDomain != "b.example" || d.AttemptCount != 1 ||
		!d.NextAttempt.Equal(now.Add(time.Hour).Truncate(time.Millisecond)) || string(d.Responses) != `{"rcpt_response":[{"code":451,"message":"deferred"}]}` ||
		d.FinalAttemptReason != "" || !d.Creation.Equal(now.Truncate(time.Millisecond)) || d.ID == 0 {
		e.t.Errorf("deferred summary = %+v", d)
	}
	if f := byID["failed"]; f.FinalAttemptReason != "upstream response permfail" {
		e.t.Errorf("failed summary = %+v", f)
	}
	if i := byID["inflight"]; string(i.JSON) != `{"x":1}` || i.Responses != nil || i.AttemptCount != 1 {
		e.t.Errorf("in-flight summary = %+v", i)
	}

	for _, st := range store.States {
		var want []string
		for _, id := range got {
			if wantState[id] == st {
				want = append(want, id)
			}
		}
		if ids := listIDs(e, s, store.ListQuery{State: st}); !slices.Equal(ids, want) {
			e.t.Errorf("state %s lists %v, want %v", st, ids, want)
		}
	}
	if _, err := s.List(e.ctx, store.ListQuery{State: "lost"}); err == nil {
		e.t.Errorf("an unknown state listed")
	}
	if ids := listIDs(e, s, store.ListQuery{Sender: "bulk"}); !slices.Equal(ids, []string{"deferred"}) {
		e.t.Errorf("sender bulk lists %v", ids)
	}
	if ids := listIDs(e, s, store.ListQuery{RcptDomain: "a.example", State: store.StateFailed}); !slices.Equal(ids, []string{"oneshot", "failed"}) {
		e.t.Errorf("failed to a.example lists %v", ids)
	}
	if ids := listIDs(e, s, store.ListQuery{RestID: "due"}); !slices.Equal(ids, []string{"due"}) {
		e.t.Errorf("one rest id lists %v", ids)
	}

	// Pages: Before is the last ID of the page before.
	var paged []string
	q := store.ListQuery{Limit: 3}
	for range len(want) {
		page := must(s.List(e.ctx, q)).ok(e.t)
		if len(page) == 0 {
			break
		}
		if len(page) > 3 {
			e.t.Fatalf("page of %d, limit 3", len(page))
		}
		for _, t := range page {
			paged = append(paged, t.RestID)
		}
		q.Before = page[len(page)-1].ID
	}
	if !slices.Equal(paged, want) {
		e.t.Errorf("pages %v, want %v", paged, want)
	}

	// Since: only what was updated at or after it.
	e.clock.Advance(time.Minute)
	must(s.Touch(e.ctx, "failed")).ok(e.t)
	if ids := listIDs(e, s, store.ListQuery{Since: e.clock.Now()}); !slices.Equal(ids, []string{"failed"}) {
		e.t.Errorf("since the touch: %v", ids)
	}
	// Time moves deferred to due.
	e.clock.Advance(2 * time.Hour)
	if ids := listIDs(e, s, store.ListQuery{State: store.StateDue}); !slices.Equal(ids, []string{"deferred", "due"}) {
		e.t.Errorf("due after two hours: %v", ids)
	}
}

func testAdminAttempts(e *env) {
	s := e.replica("http://r1", 0)
	adminTx(e, s, "tx", "app", "a.example", "", e.clock.Now())
	must(s.Dequeue(e.ctx)).ok(e.t)
	e.clock.Advance(time.Second)
	must(s.FinishAttempt(e.ctx, "tx", store.Finish{FinalReason: store.FinalSuccess, Responses: []byte(`{"data_response":{"code":250}}`)})).ok(e.t)
	got := must(s.Attempts(e.ctx, "tx")).ok(e.t)
	if len(got) != 2 || got[0].ID != 1 || got[1].ID != 2 ||
		string(got[0].Responses) != `{"rcpt_response":[{"code":451,"message":"tx"}]}` || string(got[1].Responses) != `{"data_response":{"code":250}}` {
		e.t.Fatalf("attempts = %+v", got)
	}
	if !got[1].LastUpdate.Equal(e.clock.Now().Truncate(time.Millisecond)) || got[0].Creation.After(got[1].Creation) {
		e.t.Errorf("attempt times = %+v", got)
	}
	must(s.Create(e.ctx, newTx("fresh"))).ok(e.t)
	if got := must(s.Attempts(e.ctx, "fresh")).ok(e.t); len(got) != 0 {
		e.t.Errorf("attempts before the first = %+v", got)
	}
	if _, err := s.Attempts(e.ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		e.t.Errorf("attempts of an unknown tx: %v", err)
	}
}

func testAdminRetryNow(e *env) {
	s := e.replica("http://r1", 0)
	now := e.clock.Now()
	adminTx(e, s, "later", "app", "a.example", "", now.Add(time.Hour))
	adminTx(e, s, "overdue", "app", "a.example", "", now.Add(-time.Minute))
	adminTx(e, s, "done", "app", "a.example", store.FinalSuccess, time.Time{})
	before := must(s.Head(e.ctx, "later")).ok(e.t).Version
	v := must(s.RetryNow(e.ctx, "later")).ok(e.t)
	if v != before+1 {
		e.t.Errorf("retry now: version %d -> %d", before, v)
	}
	if got := must(s.Get(e.ctx, "later")).ok(e.t); !got.NextAttempt.Equal(now.Truncate(time.Millisecond)) || got.FinalAttemptReason != "" {
		e.t.Errorf("after retry now: %+v", got)
	}
	must(s.RetryNow(e.ctx, "overdue")).ok(e.t)
	if got := must(s.Get(e.ctx, "overdue")).ok(e.t); !got.NextAttempt.Equal(now.Add(-time.Minute).Truncate(time.Millisecond)) {
		e.t.Errorf("retry now moved an overdue transaction to %v", got.NextAttempt)
	}
	if _, err := s.RetryNow(e.ctx, "done"); !errors.Is(err, store.ErrFinal) {
		e.t.Errorf("retry now of a final tx: %v", err)
	}
	if _, err := s.RetryNow(e.ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		e.t.Errorf("retry now of an unknown tx: %v", err)
	}
	var order []string
	for d := must(s.Dequeue(e.ctx)).ok(e.t); d != nil; d = must(s.Dequeue(e.ctx)).ok(e.t) {
		order = append(order, d.RestID)
	}
	if !slices.Equal(order, []string{"overdue", "later"}) {
		e.t.Errorf("dequeued %v after retry now, want overdue then later", order)
	}
	if _, err := s.RetryNow(e.ctx, "later"); !errors.Is(err, store.ErrInFlight) {
		e.t.Errorf("retry now during an attempt: %v", err)
	}
	// Without retries: in flight during its one attempt, final after it.
	must(s.Create(e.ctx, newTx("once"))).ok(e.t)
	must(s.StartAttempt(e.ctx, "once")).ok(e.t)
	if _, err := s.RetryNow(e.ctx, "once"); !errors.Is(err, store.ErrInFlight) {
		e.t.Errorf("retry now of a oneshot tx in its attempt: %v", err)
	}
	must(s.FinishAttempt(e.ctx, "once", store.Finish{})).ok(e.t)
	if _, err := s.RetryNow(e.ctx, "once"); !errors.Is(err, store.ErrFinal) {
		e.t.Errorf("retry now of a oneshot tx after its attempt: %v", err)
	}
}

func testAdminSuspend(e *env) {
	s := e.replica("http://r1", 0)
	other := e.replica("http://r2", 0)
	now := e.clock.Now()
	adminTx(e, s, "queued", "app", "slow.example", "", now.Add(time.Minute))
	adminTx(e, s, "elsewhere", "app", "fast.example", "", now.Add(2*time.Minute))
	if added := must(s.SuspendDomain(e.ctx, "slow.example")).ok(e.t); !added {
		e.t.Errorf("first suspension reported as a repeat")
	}
	e.clock.Advance(time.Second)
	if added := must(other.SuspendDomain(e.ctx, "slow.example")).ok(e.t); added {
		e.t.Errorf("second suspension reported as new")
	}
	// Created for a suspended domain: unleased, so the creator does not start it.
	held := must(s.Create(e.ctx, store.NewTx{RestID: "new", JSON: []byte(`{}`), Leased: true, Retry: true,
		Sender: "app", RcptDomain: "slow.example", Blobs: []store.NewBlob{{ID: store.TxBodyBlob, Content: []byte("x"), Inline: true}}})).ok(e.t)
	if held.Lease.Here {
		e.t.Errorf("a transaction for a suspended domain was created leased")
	}
	if _, err := s.StartAttempt(e.ctx, "new"); !errors.Is(err, store.ErrNotLeased) {
		e.t.Errorf("start attempt of a held tx: %v", err)
	}
	// An incremental transaction (no domain) is never held.
	if inc := must(s.Create(e.ctx, store.NewTx{RestID: "parent", JSON: []byte(`{}`), Leased: true, Sender: "app"})).ok(e.t); !inc.Lease.Here {
		e.t.Errorf("a transaction without a domain was created unleased")
	}
	doms := must(other.SuspendedDomains(e.ctx)).ok(e.t)
	if len(doms) != 1 || doms[0].Domain != "slow.example" || doms[0].Held != 2 || !doms[0].Since.Equal(now.Truncate(time.Millisecond)) {
		e.t.Errorf("suspended domains = %+v, want slow.example since the first suspension, holding 2", doms)
	}
	e.clock.Advance(time.Hour)
	if d := must(other.Dequeue(e.ctx)).ok(e.t); d == nil || d.RestID != "elsewhere" {
		e.t.Fatalf("dequeue with slow.example suspended = %+v, want elsewhere only", d)
	}
	must(other.FinishAttempt(e.ctx, "elsewhere", store.Finish{NextAttempt: e.clock.Now().Add(time.Hour)})).ok(e.t)
	if d := must(s.Dequeue(e.ctx)).ok(e.t); d != nil {
		e.t.Fatalf("dequeued %s of a suspended domain", d.RestID)
	}
	if ids := listIDs(e, s, store.ListQuery{State: store.StateHeld}); !slices.Equal(ids, []string{"new", "queued"}) {
		e.t.Errorf("held: %v", ids)
	}
	// The queue counts them apart too: parent is in flight, elsewhere deferred.
	if q := must(s.Queue(e.ctx)).ok(e.t); q != (store.QueueStats{InFlight: 1, Deferred: 1, Held: 2}) {
		e.t.Errorf("queue %+v, want 1 in flight, 1 deferred, 2 held", q)
	}
	if resumed := must(other.ResumeDomain(e.ctx, "slow.example")).ok(e.t); !resumed {
		e.t.Errorf("resume reported no suspension")
	}
	if resumed := must(s.ResumeDomain(e.ctx, "slow.example")).ok(e.t); resumed {
		e.t.Errorf("second resume reported a suspension")
	}
	if doms := must(s.SuspendedDomains(e.ctx)).ok(e.t); len(doms) != 0 {
		e.t.Errorf("suspended after resume: %+v", doms)
	}
	var order []string
	for d := must(other.Dequeue(e.ctx)).ok(e.t); d != nil; d = must(other.Dequeue(e.ctx)).ok(e.t) {
		order = append(order, d.RestID)
	}
	slices.Sort(order)
	if !slices.Equal(order, []string{"new", "queued"}) {
		e.t.Errorf("dequeued %v after resume, want both held transactions", order)
	}
	if _, err := s.SuspendDomain(e.ctx, ""); err == nil {
		e.t.Errorf("suspended the empty domain")
	}
}

func testAdminDomainStats(e *env) {
	s := e.replica("http://r1", 0)
	now := e.clock.Now()
	adminTx(e, s, "old", "app", "a.example", store.FinalSuccess, time.Time{})
	e.clock.Advance(time.Hour)
	since := e.clock.Now()
	adminTx(e, s, "ok1", "app", "a.example", store.FinalSuccess, time.Time{})
	adminTx(e, s, "ok2", "app", "a.example", store.FinalSuccess, time.Time{})
	adminTx(e, s, "bad", "app", "a.example", "upstream response permfail", time.Time{})
	adminTx(e, s, "later", "app", "b.example", "", now.Add(2*time.Hour))
	must(s.Create(e.ctx, store.NewTx{RestID: "parent", JSON: []byte(`{}`), Sender: "app"})).ok(e.t)
	got := must(s.DomainStats(e.ctx, since)).ok(e.t)
	want := []store.DomainStats{
		{Domain: "a.example", Counts: map[store.State]int{store.StateDelivered: 2, store.StateFailed: 1}},
		{Domain: "b.example", Counts: map[store.State]int{store.StateDeferred: 1}},
	}
	if len(got) != len(want) {
		e.t.Fatalf("domain stats = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Domain != want[i].Domain || len(got[i].Counts) != len(want[i].Counts) {
			e.t.Errorf("domain stats[%d] = %+v, want %+v", i, got[i], want[i])
			continue
		}
		for st, n := range want[i].Counts {
			if got[i].Counts[st] != n {
				e.t.Errorf("%s %s: %d, want %d", want[i].Domain, st, got[i].Counts[st], n)
			}
		}
	}
}
