package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/koukan/koukan/engine/store"
)

// The webhook event queue (store.Webhooks): events written with the outcome they report,
// claimed in order per transaction, leased to one replica at a time, retried, dropped and
// purged.

var webhookTests = []struct {
	name string
	fn   func(*env)
}{
	{"WebhookEventsWithOutcome", testWebhookEventsWithOutcome},
	{"WebhookOrderAndBackoff", testWebhookOrderAndBackoff},
	{"WebhookLeases", testWebhookLeases},
	{"WebhookConcurrentClaims", testWebhookConcurrentClaims},
	{"WebhookSurviveGC", testWebhookSurviveGC},
	{"WebhookSupersedeHeld", testWebhookSupersedeHeld},
}

// hookEvents makes events for restID with the given ids.
func hookEvents(restID string, ids ...string) []store.NewWebhookEvent {
	var out []store.NewWebhookEvent
	for _, id := range ids {
		out = append(out, store.NewWebhookEvent{ID: id, RestID: restID, Sender: "app", Tag: "t",
			Payload: []byte(fmt.Sprintf(`{"id":%q}`, id))})
	}
	return out
}

// attemptWithEvents creates restID and finishes one attempt of it that reports ids.
func attemptWithEvents(e *env, s store.Store, restID string, ids ...string) {
	e.t.Helper()
	must(s.Create(e.ctx, newTx(restID))).ok(e.t)
	must(s.StartAttempt(e.ctx, restID)).ok(e.t)
	must(s.FinishAttempt(e.ctx, restID, store.Finish{Events: hookEvents(restID, ids...)})).ok(e.t)
}

// claimIDs claims up to n events for lease and returns their ids.
func claimIDs(e *env, s store.Store, n int, lease time.Duration) []string {
	e.t.Helper()
	var ids []string
	for _, ev := range must(s.ClaimWebhookEvents(e.ctx, n, lease)).ok(e.t) {
		ids = append(ids, ev.ID)
	}
	return ids
}

func wantIDs(e *env, what string, got []string, want ...string) {
	e.t.Helper()
	if !slices.Equal(got, want) {
		e.t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

// eventsByID lists restID's events keyed by id.
func eventsByID(e *env, s store.Store, restID string) map[string]store.WebhookEvent {
	e.t.Helper()
	out := map[string]store.WebhookEvent{}
	for _, ev := range must(s.WebhookEvents(e.ctx, restID)).ok(e.t) {
		out[ev.ID] = ev
	}
	return out
}

func testWebhookEventsWithOutcome(e *env) {
	s := e.replica("http://r1", 0)
	attemptWithEvents(e, s, "a", "a1", "a2")
	// A DSN's creation reports on the transaction it notifies about.
	dsn := newTx("dsn-of-a")
	dsn.Events = hookEvents("a", "a3")
	must(s.Create(e.ctx, dsn)).ok(e.t)

	got := must(s.WebhookEvents(e.ctx, "a")).ok(e.t)
	if len(got) != 3 {
		e.t.Fatalf("events of a: %+v", got)
	}
	now := e.clock.Now().UnixMilli()
	for i, ev := range got {
		want := hookEvents("a", "a1", "a2", "a3")[i]
		if ev.ID != want.ID || ev.RestID != "a" || ev.Sender != "app" || ev.Tag != "t" || string(ev.Payload) != string(want.Payload) ||
			ev.Attempts != 0 || !ev.Finished.IsZero() || ev.Creation.UnixMilli() != now || ev.NextAttempt.UnixMilli() != now {
			e.t.Errorf("event %d = %+v, want %+v pending since %d", i, ev, want, now)
		}
		if i > 0 && ev.Seq <= got[i-1].Seq {
			e.t.Errorf("events out of order: %+v", got)
		}
	}
	// An outcome that is not recorded (the lease is gone) queues no event.
	must(s.Create(e.ctx, store.NewTx{RestID: "unleased", JSON: []byte(`{}`)})).ok(e.t)
	if _, err := s.FinishAttempt(e.ctx, "unleased", store.Finish{Events: hookEvents("unleased", "u1")}); !errors.Is(err, store.ErrNotLeased) {
		e.t.Errorf("finishing an unleased attempt: %v", err)
	}
	if got := must(s.WebhookEvents(e.ctx, "unleased")).ok(e.t); len(got) != 0 {
		e.t.Errorf("events of an unrecorded outcome: %+v", got)
	}
	// Nor does a create that fails.
	dup := newTx("a")
	dup.Events = hookEvents("a", "a4")
	if _, err := s.Create(e.ctx, dup); !errors.Is(err, store.ErrDuplicate) {
		e.t.Errorf("duplicate create: %v", err)
	}
	if got := eventsByID(e, s, "a"); len(got) != 3 {
		e.t.Errorf("a failed create queued events: %+v", got)
	}
}

func testWebhookOrderAndBackoff(e *env) {
	s := e.replica("http://r1", 0)
	attemptWithEvents(e, s, "a", "a1", "a2", "a3")
	attemptWithEvents(e, s, "b", "b1")
	// One event per transaction: the oldest unfinished one.
	claimed := must(s.ClaimWebhookEvents(e.ctx, 10, time.Minute)).ok(e.t)
	if len(claimed) != 2 || claimed[0].ID != "a1" || claimed[1].ID != "b1" || claimed[0].Attempts != 1 {
		e.t.Fatalf("first claim: %+v", claimed)
	}
	wantIDs(e, "claim while a1 and b1 are out", claimIDs(e, s, 10, time.Minute))
	noErr(e.t, s.WebhookEventDelivered(e.ctx, claimed[0].Seq))
	// Delivering twice (a redelivery after a lost lease) is harmless.
	noErr(e.t, s.WebhookEventDelivered(e.ctx, claimed[0].Seq))
	next := must(s.ClaimWebhookEvents(e.ctx, 10, time.Minute)).ok(e.t)
	if len(next) != 1 || next[0].ID != "a2" {
		e.t.Fatalf("claim after a1 was delivered: %+v", next)
	}
	// A failure backs off: a2 comes back when due, and a3 waits behind it meanwhile.
	noErr(e.t, s.RetryWebhookEvent(e.ctx, next[0].Seq, e.clock.Now().Add(10*time.Second), "HTTP 503"))
	wantIDs(e, "claim before a2 is due", claimIDs(e, s, 10, time.Minute))
	e.clock.Advance(10 * time.Second)
	again := must(s.ClaimWebhookEvents(e.ctx, 10, time.Minute)).ok(e.t)
	if len(again) != 1 || again[0].ID != "a2" || again[0].Attempts != 2 || again[0].LastError != "HTTP 503" {
		e.t.Fatalf("claim once a2 is due: %+v", again)
	}
	// A dropped event lets the next one through, and says why it was dropped.
	noErr(e.t, s.DropWebhookEvent(e.ctx, again[0].Seq, "expired"))
	wantIDs(e, "claim after a2 was dropped", claimIDs(e, s, 10, time.Minute), "a3")
	evs := eventsByID(e, s, "a")
	if a1 := evs["a1"]; !a1.Delivered() || a1.Finished.IsZero() {
		e.t.Errorf("a1 = %+v, want delivered", a1)
	}
	if a2 := evs["a2"]; a2.Delivered() || a2.Dropped != "expired" || a2.Finished.IsZero() || a2.LastError != "HTTP 503" {
		e.t.Errorf("a2 = %+v, want dropped", a2)
	}
	if a3 := evs["a3"]; !a3.Finished.IsZero() || a3.Attempts != 1 {
		e.t.Errorf("a3 = %+v, want pending and claimed once", a3)
	}
	// A finished event cannot be released again.
	if err := s.RetryWebhookEvent(e.ctx, again[0].Seq, e.clock.Now(), "late"); !errors.Is(err, store.ErrNotLeased) {
		e.t.Errorf("retrying a dropped event: %v", err)
	}
	// n bounds a claim.
	attemptWithEvents(e, s, "c", "c1")
	attemptWithEvents(e, s, "d", "d1")
	if got := claimIDs(e, s, 1, time.Minute); len(got) != 1 {
		e.t.Errorf("claim of 1 got %q", got)
	}
}

func testWebhookLeases(e *env) {
	r1 := e.replica("http://r1", 0)
	r2 := e.replica("http://r2", 0)
	attemptWithEvents(e, r1, "t", "e1", "e2")
	ev := must(r1.ClaimWebhookEvents(e.ctx, 10, 30*time.Second)).ok(e.t)
	if len(ev) != 1 || ev[0].ID != "e1" {
		e.t.Fatalf("r1 claimed %+v", ev)
	}
	wantIDs(e, "r2 while r1 holds e1", claimIDs(e, r2, 10, time.Minute))
	if err := r2.RetryWebhookEvent(e.ctx, ev[0].Seq, e.clock.Now(), "not mine"); !errors.Is(err, store.ErrNotLeased) {
		e.t.Errorf("r2 released r1's lease: %v", err)
	}
	// An expired lease is taken over; the old holder can no longer release it.
	e.clock.Advance(31 * time.Second)
	wantIDs(e, "r2 once r1's lease expired", claimIDs(e, r2, 10, time.Minute), "e1")
	if err := r1.DropWebhookEvent(e.ctx, ev[0].Seq, "late"); !errors.Is(err, store.ErrNotLeased) {
		e.t.Errorf("r1 dropped an event r2 holds: %v", err)
	}
	// But a delivery is a delivery, whoever reports it.
	noErr(e.t, r1.WebhookEventDelivered(e.ctx, ev[0].Seq))
	e2 := must(r2.ClaimWebhookEvents(e.ctx, 10, time.Minute)).ok(e.t)
	if len(e2) != 1 || e2[0].ID != "e2" {
		e.t.Fatalf("r2 after e1 was delivered: %+v", e2)
	}
	noErr(e.t, r2.WebhookEventDelivered(e.ctx, e2[0].Seq))

	// A replica that dies holding a lease loses it with its session, before the lease ends.
	dead, err := e.open(store.Options{SessionURI: "http://dead", Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	attemptWithEvents(e, dead, "u", "f1")
	wantIDs(e, "the dying replica", claimIDs(e, dead, 10, time.Hour), "f1")
	noErr(e.t, dead.(abandoner).Abandon())
	wantIDs(e, "r2 while the dead session is not reaped", claimIDs(e, r2, 10, time.Hour))
	e.clock.Advance(2 * time.Minute)
	noErr(e.t, r2.Refresh(e.ctx))
	must(r2.ReapSessions(e.ctx, time.Minute)).ok(e.t)
	got := must(r2.ClaimWebhookEvents(e.ctx, 10, time.Hour)).ok(e.t)
	if len(got) != 1 || got[0].ID != "f1" || got[0].Attempts != 2 {
		e.t.Errorf("r2 after the dead session was reaped: %+v", got)
	}
	// A replica restarted under its session URI takes its earlier run's leases at once.
	old, err := e.open(store.Options{SessionURI: "http://restarted", Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	attemptWithEvents(e, old, "v", "g1")
	wantIDs(e, "the earlier run", claimIDs(e, old, 10, time.Hour), "g1")
	noErr(e.t, old.(abandoner).Abandon())
	restarted := e.replica("http://restarted", 0)
	wantIDs(e, "the restarted replica", claimIDs(e, restarted, 10, time.Hour), "g1")
}

// testWebhookConcurrentClaims has replicas claim and deliver concurrently: every event is
// claimed once (no lease expires), and each transaction's events are delivered in order.
func testWebhookConcurrentClaims(e *env) {
	replicas := []store.Store{e.replica("http://r1", 0), e.replica("http://r2", 0), e.replica("http://r3", 0)}
	const txs, perTx = 12, 5
	for i := range txs {
		id := fmt.Sprintf("tx%d", i)
		var ids []string
		for j := range perTx {
			ids = append(ids, fmt.Sprintf("%s-%d", id, j))
		}
		attemptWithEvents(e, replicas[i%len(replicas)], id, ids...)
	}
	var mu sync.Mutex
	claimedBy := map[string]string{}
	delivered := map[string][]int64{} // seqs by transaction, in delivery order
	deadline := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	for _, r := range replicas {
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					mu.Lock()
					done := len(claimedBy) == txs*perTx
					mu.Unlock()
					if done || time.Now().After(deadline) {
						return
					}
					evs, err := r.ClaimWebhookEvents(e.ctx, 4, time.Hour)
					if err != nil {
						e.t.Errorf("claim: %v", err)
						return
					}
					for _, ev := range evs {
						mu.Lock()
						if prev, dup := claimedBy[ev.ID]; dup {
							e.t.Errorf("%s claimed by %s and %s", ev.ID, prev, r.SessionURI())
						}
						claimedBy[ev.ID] = r.SessionURI()
						delivered[ev.RestID] = append(delivered[ev.RestID], ev.Seq)
						mu.Unlock()
						if err := r.WebhookEventDelivered(e.ctx, ev.Seq); err != nil {
							e.t.Errorf("delivered: %v", err)
						}
					}
				}
			}()
		}
	}
	wg.Wait()
	if len(claimedBy) != txs*perTx {
		e.t.Errorf("claimed %d of %d events in a minute", len(claimedBy), txs*perTx)
	}
	for id, seqs := range delivered {
		if !slices.IsSorted(seqs) || len(seqs) != perTx {
			e.t.Errorf("%s delivered as %v", id, seqs)
		}
	}
}

func testWebhookSurviveGC(e *env) {
	s := e.replica("http://r1", 0)
	attemptWithEvents(e, s, "gone", "g1", "g2")
	e.clock.Advance(2 * time.Hour)
	if st := must(s.GC(e.ctx, time.Hour)).ok(e.t); st.Transactions != 1 {
		e.t.Fatalf("gc = %+v, want the transaction deleted", st)
	}
	if _, err := s.Get(e.ctx, "gone"); !errors.Is(err, store.ErrNotFound) {
		e.t.Fatalf("get after gc: %v", err)
	}
	got := must(s.ClaimWebhookEvents(e.ctx, 10, time.Minute)).ok(e.t)
	if len(got) != 1 || got[0].ID != "g1" || string(got[0].Payload) != `{"id":"g1"}` {
		e.t.Fatalf("claim after gc: %+v", got)
	}
	noErr(e.t, s.WebhookEventDelivered(e.ctx, got[0].Seq))
	// Finished events are kept for the ttl, pending ones until they finish.
	if n := must(s.PurgeWebhookEvents(e.ctx, time.Hour)).ok(e.t); n != 0 {
		e.t.Errorf("purged %d young events", n)
	}
	e.clock.Advance(2 * time.Hour)
	if n := must(s.PurgeWebhookEvents(e.ctx, time.Hour)).ok(e.t); n != 1 {
		e.t.Errorf("purged %d events, want 1", n)
	}
	left := must(s.WebhookEvents(e.ctx, "gone")).ok(e.t)
	if len(left) != 1 || left[0].ID != "g2" || !left[0].Finished.IsZero() {
		e.t.Errorf("after purge: %+v", left)
	}
}

// An event held back (NotBefore) is not claimed before its time, and an update that
// supersedes held events drops it, if it has not been claimed, in the update's commit, with
// the events that replace it queued behind the transaction's others.
func testWebhookSupersedeHeld(e *env) {
	s := e.replica("http://r1", 0)
	must(s.Create(e.ctx, newTx("a"))).ok(e.t)
	must(s.StartAttempt(e.ctx, "a")).ok(e.t)
	events := hookEvents("a", "due", "held")
	events[1].NotBefore = e.clock.Now().Add(2 * time.Second)
	must(s.FinishAttempt(e.ctx, "a", store.Finish{Events: events})).ok(e.t)
	claimed := must(s.ClaimWebhookEvents(e.ctx, 10, time.Minute)).ok(e.t)
	if len(claimed) != 1 || claimed[0].ID != "due" {
		e.t.Fatalf("first claim: %+v", claimed)
	}
	noErr(e.t, s.WebhookEventDelivered(e.ctx, claimed[0].Seq))
	wantIDs(e, "claim while held is held", claimIDs(e, s, 10, time.Minute))

	rec := must(s.Get(e.ctx, "a")).ok(e.t)
	must(s.Update(e.ctx, "a", rec.Version, store.Update{SupersedeHeld: true, Events: hookEvents("a", "instead")})).ok(e.t)
	e.clock.Advance(3 * time.Second)
	wantIDs(e, "claim after the update", claimIDs(e, s, 10, time.Minute), "instead")
	if held := eventsByID(e, s, "a")["held"]; held.Dropped != "superseded" || held.Finished.IsZero() {
		e.t.Errorf("held = %+v, want dropped as superseded", held)
	}

	// Once claimed, a held event is out of reach: it is not superseded.
	must(s.Create(e.ctx, newTx("b"))).ok(e.t)
	must(s.StartAttempt(e.ctx, "b")).ok(e.t)
	late := hookEvents("b", "late")
	late[0].NotBefore = e.clock.Now().Add(time.Second)
	must(s.FinishAttempt(e.ctx, "b", store.Finish{Events: late})).ok(e.t)
	e.clock.Advance(time.Second)
	wantIDs(e, "claim of b once due", claimIDs(e, s, 10, time.Minute), "late")
	rec = must(s.Get(e.ctx, "b")).ok(e.t)
	must(s.Update(e.ctx, "b", rec.Version, store.Update{SupersedeHeld: true, Events: hookEvents("b", "after")})).ok(e.t)
	evs := eventsByID(e, s, "b")
	if evs["late"].Dropped != "" || evs["after"].ID != "after" {
		e.t.Errorf("events of b: %+v", evs)
	}
}
