// Package storetest is the conformance suite every store.Store backend runs. A backend's
// test supplies a Factory that makes a fresh, empty database per test and opens replicas on
// it; the suite then checks the behaviour engine/store documents, with real files and a real
// server, never a fake.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/store"
)

// Factory makes a fresh empty database for one test and returns a function that opens a
// replica (a session) on it. Replicas opened by the returned function share the database.
type Factory func(t testing.TB) func(opts store.Options) (store.Store, error)

// abandoner is a store that can stop without ending its session, as a crashed replica would.
type abandoner interface{ Abandon() error }

// clock is a settable time source shared by a test's replicas.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type env struct {
	t     *testing.T
	ctx   context.Context
	open  func(store.Options) (store.Store, error)
	clock *clock
}

// replica opens a session named uri; it is closed when the test ends unless abandoned.
func (e *env) replica(uri string, chunk int) store.Store {
	e.t.Helper()
	s, err := e.open(store.Options{SessionURI: uri, ChunkSize: chunk, Now: e.clock.Now})
	if err != nil {
		e.t.Fatalf("open: %v", err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

// Run runs the whole suite against the backend f opens.
func Run(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(*env)
	}{
		{"CreateGet", testCreateGet},
		{"Update", testUpdate},
		{"Idempotency", testIdempotency},
		{"BlobAppendRules", testBlobAppendRules},
		{"BlobStreaming", testBlobStreaming},
		{"BlobReuse", testBlobReuse},
		{"Attempts", testAttempts},
		{"Dequeue", testDequeue},
		{"PostFactoNotification", testPostFactoNotification},
		{"Cancel", testCancel},
		{"SessionsAndLeases", testSessionsAndLeases},
		{"GC", testGC},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ExclusiveDequeue", testExclusiveDequeue},
		{"StartRacesFinish", testStartRacesFinish},
		{"Classify", testClassify},
		{"AdminList", testAdminList},
		{"AdminAttempts", testAdminAttempts},
		{"AdminRetryNow", testAdminRetryNow},
		{"AdminSuspend", testAdminSuspend},
		{"AdminDomainStats", testAdminDomainStats},
		{"QueueDomains", testQueueDomains},
	}
	tests = append(tests, webhookTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(&env{t: t, ctx: context.Background(), open: f(t), clock: newClock()})
		})
	}
}

// result carries a call's (value, error) pair to ok, which fails the test on the error.
type result[T any] struct {
	v   T
	err error
}

func must[T any](v T, err error) result[T] { return result[T]{v, err} }

func (r result[T]) ok(t testing.TB) T {
	t.Helper()
	if r.err != nil {
		t.Fatalf("unexpected error: %v", r.err)
	}
	return r.v
}

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func newTx(id string, blobs ...store.NewBlob) store.NewTx {
	return store.NewTx{RestID: id, JSON: []byte(`{"mail_from":{"m":"alice@example.com"}}`), Blobs: blobs, Leased: true}
}

func blobOf(t *store.Tx, id string) (store.Blob, bool) {
	for _, b := range t.Blobs {
		if b.ID == id {
			return b, true
		}
	}
	return store.Blob{}, false
}

func readBlob(e *env, s store.Store, tx, blob string) []byte {
	e.t.Helper()
	r, _, err := s.OpenBlob(e.ctx, tx, blob)
	if err != nil {
		e.t.Fatalf("OpenBlob(%s, %s): %v", tx, blob, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		e.t.Fatalf("reading blob: %v", err)
	}
	return b
}

func testCreateGet(e *env) {
	s := e.replica("http://r1", 0)
	created := must(s.Create(e.ctx, store.NewTx{
		RestID: "tx1", JSON: []byte(`{"a":1}`), MessageBuilder: []byte(`{"headers":[]}`), Leased: true, Retry: true,
		Blobs: []store.NewBlob{{ID: store.TxBodyBlob}, {ID: "inline0", Content: []byte("hello"), Inline: true}},
	})).ok(e.t)
	if created.Version != 1 || string(created.JSON) != `{"a":1}` || string(created.MessageBuilder) != `{"headers":[]}` {
		e.t.Errorf("created = %+v", created)
	}
	if !created.Lease.Here || created.Lease.OwnerURI != "" || !created.Retry || created.Notification || created.InputDone {
		e.t.Errorf("flags/lease wrong: %+v", created)
	}
	if b, _ := blobOf(created, "inline0"); !b.Finalized() || b.Length != 5 {
		e.t.Errorf("inline blob = %+v", b)
	}
	if b, _ := blobOf(created, store.TxBodyBlob); b.Finalized() || b.Length != 0 || b.Total != -1 {
		e.t.Errorf("empty body blob = %+v", b)
	}
	if !created.Creation.Equal(e.clock.Now().Truncate(time.Millisecond)) {
		e.t.Errorf("creation = %v, want %v", created.Creation, e.clock.Now())
	}
	if got := readBlob(e, s, "tx1", "inline0"); string(got) != "hello" {
		e.t.Errorf("inline content = %q", got)
	}
	if _, err := s.Create(e.ctx, newTx("tx1")); !errors.Is(err, store.ErrDuplicate) {
		e.t.Errorf("duplicate create: %v, want ErrDuplicate", err)
	}
	if _, err := s.Get(e.ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		e.t.Errorf("Get unknown: %v", err)
	}
	if _, err := s.Head(e.ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		e.t.Errorf("Head unknown: %v", err)
	}
	h := must(s.Head(e.ctx, "tx1")).ok(e.t)
	if h.Version != 1 || !h.Lease.Here || h.Final {
		e.t.Errorf("head = %+v", h)
	}
	unleased := must(s.Create(e.ctx, store.NewTx{RestID: "tx2", JSON: []byte(`{}`)})).ok(e.t)
	if unleased.Lease.Here || unleased.InputDone {
		e.t.Errorf("unleased tx = %+v", unleased)
	}
	all := must(s.Create(e.ctx, store.NewTx{RestID: "tx3", JSON: []byte(`{}`),
		Blobs: []store.NewBlob{{ID: "inline0", Content: []byte("x"), Inline: true}}})).ok(e.t)
	if !all.InputDone {
		e.t.Errorf("tx with only finalized blobs is not input_done")
	}
}

func testIdempotency(e *env) {
	s := e.replica("http://r1", 0)
	n := newTx("first")
	n.IdempotencyKey, n.RequestHash = "submission:key-1", "hash-a"
	must(s.Create(e.ctx, n)).ok(e.t)
	retry := n
	retry.RestID = "second"
	var ie *store.IdempotencyError
	if _, err := s.Create(e.ctx, retry); !errors.As(err, &ie) || ie.RestID != "first" || !ie.SameRequest {
		e.t.Errorf("retried create: %v (%+v)", err, ie)
	}
	retry.RequestHash = "hash-b"
	if _, err := s.Create(e.ctx, retry); !errors.As(err, &ie) || ie.RestID != "first" || ie.SameRequest {
		e.t.Errorf("different request, same key: %v (%+v)", err, ie)
	}
	if _, err := s.Get(e.ctx, "second"); !errors.Is(err, store.ErrNotFound) {
		e.t.Errorf("a refused create left a transaction: %v", err)
	}
	other := newTx("third")
	other.IdempotencyKey = "submission:key-2"
	must(s.Create(e.ctx, other)).ok(e.t)
	// A rest id collision is a plain duplicate, whatever the key.
	dup := newTx("first")
	dup.IdempotencyKey = "submission:key-3"
	if _, err := s.Create(e.ctx, dup); !errors.Is(err, store.ErrDuplicate) {
		e.t.Errorf("rest id collision: %v", err)
	}
	// Keys go with their transaction.
	must(s.FinishAttempt(e.ctx, "first", store.Finish{FinalReason: "upstream response success"})).ok(e.t)
	e.clock.Advance(2 * time.Hour)
	must(s.GC(e.ctx, time.Hour)).ok(e.t)
	must(s.Create(e.ctx, retry)).ok(e.t)
}

func testUpdate(e *env) {
	s := e.replica("http://r1", 0)
	must(s.Create(e.ctx, newTx("tx"))).ok(e.t)
	v := must(s.Update(e.ctx, "tx", 1, store.Update{JSON: []byte(`{"b":2}`)})).ok(e.t)
	if v != 2 {
		e.t.Errorf("version after update = %d, want 2", v)
	}
	if _, err := s.Update(e.ctx, "tx", 1, store.Update{JSON: []byte(`{"c":3}`)}); !errors.Is(err, store.ErrConflict) {
		e.t.Errorf("stale update: %v, want ErrConflict", err)
	}
	if _, err := s.Update(e.ctx, "missing", 1, store.Update{}); !errors.Is(err, store.ErrNotFound) {
		e.t.Errorf("update of unknown tx: %v, want ErrNotFound", err)
	}
	if _, err := s.Update(e.ctx, "tx", 2, store.Update{Responses: []byte(`{}`)}); err == nil {
		e.t.Errorf("responses before any attempt were accepted")
	}
	got := must(s.Get(e.ctx, "tx")).ok(e.t)
	if string(got.JSON) != `{"b":2}` || got.Version != 2 {
		e.t.Errorf("after update: json=%s version=%d", got.JSON, got.Version)
	}
	v = must(s.Touch(e.ctx, "tx")).ok(e.t)
	if v != 3 {
		e.t.Errorf("touch version = %d, want 3", v)
	}
	if _, err := s.Touch(e.ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		e.t.Errorf("touch unknown: %v", err)
	}
	// Adding a body later (an incremental transaction's DATA).
	v = must(s.Update(e.ctx, "tx", 3, store.Update{AddBlobs: []store.NewBlob{{ID: store.TxBodyBlob}}})).ok(e.t)
	if _, err := s.Update(e.ctx, "tx", v, store.Update{AddBlobs: []store.NewBlob{{ID: store.TxBodyBlob}}}); !errors.Is(err, store.ErrDuplicate) {
		e.t.Errorf("second body blob: %v, want ErrDuplicate", err)
	}
	if got := must(s.Get(e.ctx, "tx")).ok(e.t); got.Version != v || len(got.Blobs) != 1 {
		e.t.Errorf("failed update left traces: version %d (want %d), blobs %v", got.Version, v, got.Blobs)
	}
}

func appendStr(e *env, s store.Store, tx string, a store.Append, data string) (store.BlobStatus, error) {
	return s.AppendBlob(e.ctx, tx, store.TxBodyBlob, a, strings.NewReader(data))
}

func wantRange(e *env, err error, length int64) {
	e.t.Helper()
	var re *store.RangeError
	if !errors.As(err, &re) {
		e.t.Fatalf("err = %v, want RangeError", err)
	}
	if re.Current.Length != length {
		e.t.Errorf("RangeError at length %d, want %d (%v)", re.Current.Length, length, err)
	}
}

func testBlobAppendRules(e *env) {
	s := e.replica("http://r1", 4) // tiny chunks: every append spans several rows
	body := store.NewBlob{ID: store.TxBodyBlob}
	must(s.Create(e.ctx, newTx("whole", body))).ok(e.t)
	st := must(appendStr(e, s, "whole", store.Append{Total: -1, FinalizeAtEOF: true}, "hello, world")).ok(e.t)
	if !st.Finalized() || st.Length != 12 {
		e.t.Errorf("whole put: %+v", st)
	}
	if got := must(s.Get(e.ctx, "whole")).ok(e.t); !got.InputDone || got.Version != 2 {
		e.t.Errorf("finalizing did not set input_done and bump the version: %+v", got)
	}
	if got := readBlob(e, s, "whole", store.TxBodyBlob); string(got) != "hello, world" {
		e.t.Errorf("content = %q", got)
	}
	// A client resending the whole body after a broken upload succeeds (overlap resync).
	if st := must(appendStr(e, s, "whole", store.Append{Total: -1, FinalizeAtEOF: true}, "hello, world")).ok(e.t); st.Length != 12 {
		e.t.Errorf("resend: %+v", st)
	}
	if got := readBlob(e, s, "whole", store.TxBodyBlob); string(got) != "hello, world" {
		e.t.Errorf("content after resend = %q", got)
	}

	// A whole body shorter than what the blob holds is not a resend of it.
	must(s.Create(e.ctx, newTx("shorter", body))).ok(e.t)
	must(appendStr(e, s, "shorter", store.Append{Total: -1}, "hello world")).ok(e.t)
	_, err := appendStr(e, s, "shorter", store.Append{Total: -1, FinalizeAtEOF: true}, "bye")
	wantRange(e, err, 11)

	// Ranged: bytes 0-6/*, gap at 10 -> 416 at 7, bytes 7-14/15 finalizes.
	must(s.Create(e.ctx, newTx("ranged", body))).ok(e.t)
	st = must(appendStr(e, s, "ranged", store.Append{Offset: 0, Total: -1}, "0123456")).ok(e.t)
	if st.Length != 7 || st.Finalized() || st.Total != -1 {
		e.t.Errorf("first range: %+v", st)
	}
	_, err = appendStr(e, s, "ranged", store.Append{Offset: 10, Total: -1}, "abcde")
	wantRange(e, err, 7)
	// Overlapping resend of the tail of the first piece plus new bytes.
	st = must(appendStr(e, s, "ranged", store.Append{Offset: 5, Total: 15}, "5678901234")).ok(e.t)
	if !st.Finalized() || st.Length != 15 {
		e.t.Errorf("final range: %+v", st)
	}
	if got := readBlob(e, s, "ranged", store.TxBodyBlob); string(got) != "012345678901234" {
		e.t.Errorf("ranged content = %q", got)
	}
	_, err = appendStr(e, s, "ranged", store.Append{Offset: 15, Total: 16}, "x")
	wantRange(e, err, 15)

	// A total declared early must be repeated and never exceeded.
	must(s.Create(e.ctx, newTx("early", body))).ok(e.t)
	st = must(appendStr(e, s, "early", store.Append{Offset: 0, Total: 10}, "abc")).ok(e.t)
	if st.Total != 10 || st.Finalized() {
		e.t.Errorf("early total: %+v", st)
	}
	_, err = appendStr(e, s, "early", store.Append{Offset: 3, Total: 11}, "def")
	wantRange(e, err, 3)
	// Pieces are committed as they stream in; an overflow stops at the piece that crosses
	// the total, and the error says where to resume.
	_, err = appendStr(e, s, "early", store.Append{Offset: 3, Total: 10}, "defghijklmn")
	wantRange(e, err, 7)

	// x-finalize-blob-length: an empty append that declares the length already stored.
	must(s.Create(e.ctx, newTx("xfin", body))).ok(e.t)
	must(appendStr(e, s, "xfin", store.Append{Offset: 0, Total: -1}, "abcd")).ok(e.t)
	_, err = appendStr(e, s, "xfin", store.Append{Offset: 3, Total: 3}, "")
	wantRange(e, err, 4)
	_, err = appendStr(e, s, "xfin", store.Append{Offset: 5, Total: 5}, "")
	wantRange(e, err, 4)
	if st := must(appendStr(e, s, "xfin", store.Append{Offset: 4, Total: 4}, "")).ok(e.t); !st.Finalized() {
		e.t.Errorf("x-finalize: %+v", st)
	}

	// An empty body is a valid message body of zero bytes.
	must(s.Create(e.ctx, newTx("empty", body))).ok(e.t)
	if st := must(appendStr(e, s, "empty", store.Append{Total: -1, FinalizeAtEOF: true}, "")).ok(e.t); !st.Finalized() || st.Length != 0 {
		e.t.Errorf("empty put: %+v", st)
	}

	// Incremental transactions create their body blob on the first PUT.
	must(s.Create(e.ctx, newTx("incr"))).ok(e.t)
	if _, err := appendStr(e, s, "incr", store.Append{Total: -1}, "x"); !errors.Is(err, store.ErrNotFound) {
		e.t.Errorf("append to a missing blob without Create: %v", err)
	}
	if st := must(appendStr(e, s, "incr", store.Append{Total: -1, FinalizeAtEOF: true, Create: true}, "data")).ok(e.t); !st.Finalized() {
		e.t.Errorf("create-on-put: %+v", st)
	}
	if _, err := appendStr(e, s, "nope", store.Append{Total: -1, Create: true}, "x"); !errors.Is(err, store.ErrNotFound) {
		e.t.Errorf("append to unknown tx: %v", err)
	}
}

// patterned is a deterministic, incompressible-enough stream of n bytes.
func patterned(n int) []byte {
	b := make([]byte, n)
	var x uint32 = 2463534242
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// slowReader hands out its data a few bytes at a time, like a network stream.
type slowReader struct{ r io.Reader }

func (s slowReader) Read(p []byte) (int, error) { return s.r.Read(p[:min(len(p), 777)]) }

func testBlobStreaming(e *env) {
	s := e.replica("http://r1", 64<<10)
	data := patterned(3<<20 + 12345)
	must(s.Create(e.ctx, newTx("big", store.NewBlob{ID: store.TxBodyBlob}))).ok(e.t)
	st := must(s.AppendBlob(e.ctx, "big", store.TxBodyBlob, store.Append{Total: -1, FinalizeAtEOF: true},
		slowReader{bytes.NewReader(data)})).ok(e.t)
	if st.Length != int64(len(data)) || !st.Finalized() {
		e.t.Fatalf("status %+v", st)
	}
	got := readBlob(e, s, "big", store.TxBodyBlob)
	if sha256.Sum256(got) != sha256.Sum256(data) {
		e.t.Errorf("streamed blob differs (got %d bytes)", len(got))
	}
	// Sizes around the pieces an upload is read in (a small one first, then chunks),
	// of known and unknown length.
	for _, size := range []int{0, 1, 16<<10 - 1, 16 << 10, 16<<10 + 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 100 << 10} {
		for _, known := range []bool{false, true} {
			id := fmt.Sprintf("size-%d-%v", size, known)
			data := patterned(size)
			a := store.Append{Total: -1, FinalizeAtEOF: true}
			if known {
				a = store.Append{Total: int64(size)}
			}
			must(s.Create(e.ctx, newTx(id, store.NewBlob{ID: store.TxBodyBlob}))).ok(e.t)
			st := must(s.AppendBlob(e.ctx, id, store.TxBodyBlob, a, slowReader{bytes.NewReader(data)})).ok(e.t)
			if st.Length != int64(size) || !st.Finalized() {
				e.t.Errorf("%s: status %+v", id, st)
			}
			if got := readBlob(e, s, id, store.TxBodyBlob); !bytes.Equal(got, data) {
				e.t.Errorf("%s: read back %d bytes that differ", id, len(got))
			}
		}
	}
}

func testBlobReuse(e *env) {
	s := e.replica("http://r1", 0)
	must(s.Create(e.ctx, newTx("orig", store.NewBlob{ID: store.TxBodyBlob}, store.NewBlob{ID: "part"}))).ok(e.t)
	must(appendStr(e, s, "orig", store.Append{Total: -1, FinalizeAtEOF: true}, "the body")).ok(e.t)
	reuse := store.NewBlob{ID: store.TxBodyBlob, ReuseTx: "orig", ReuseBlob: store.TxBodyBlob}
	got := must(s.Create(e.ctx, newTx("copy", reuse))).ok(e.t)
	if b, _ := blobOf(got, store.TxBodyBlob); !b.Finalized() || !got.InputDone {
		e.t.Errorf("reused blob not finalized at once: %+v", got)
	}
	if c := readBlob(e, s, "copy", store.TxBodyBlob); string(c) != "the body" {
		e.t.Errorf("reused content %q", c)
	}
	var re *store.ReuseError
	if _, err := s.Create(e.ctx, newTx("bad1", store.NewBlob{ID: "x", ReuseTx: "orig", ReuseBlob: "part"})); !errors.As(err, &re) {
		e.t.Errorf("reuse of unfinalized blob: %v", err)
	}
	if _, err := s.Create(e.ctx, newTx("bad2", store.NewBlob{ID: "x", ReuseTx: "nope", ReuseBlob: "part"})); !errors.As(err, &re) {
		e.t.Errorf("reuse of unknown blob: %v", err)
	}
	if _, err := s.Get(e.ctx, "bad1"); !errors.Is(err, store.ErrNotFound) {
		e.t.Errorf("failed create left a transaction behind: %v", err)
	}
	// The blob outlives the transaction it was uploaded to while another refers to it.
	must(s.Cancel(e.ctx, "orig")).ok(e.t)
	must(s.FinishAttempt(e.ctx, "orig", store.Finish{})).ok(e.t)
	must(s.FinishAttempt(e.ctx, "copy", store.Finish{FinalReason: "upstream response success"})).ok(e.t)
	e.clock.Advance(2 * time.Hour)
	must(s.Touch(e.ctx, "copy")).ok(e.t)
	if st := must(s.GC(e.ctx, time.Hour)).ok(e.t); st != (store.GCStats{Transactions: 1, Blobs: 1}) {
		e.t.Errorf("gc of the original = %+v, want its transaction and its unshared part blob", st)
	}
	if c := readBlob(e, s, "copy", store.TxBodyBlob); string(c) != "the body" {
		e.t.Errorf("shared blob after gc of its original: %q", c)
	}
	e.clock.Advance(2 * time.Hour)
	if st := must(s.GC(e.ctx, time.Hour)).ok(e.t); st != (store.GCStats{Transactions: 1, Blobs: 1}) {
		e.t.Errorf("gc of the copy = %+v, want the last reference and the blob", st)
	}
}

func testAttempts(e *env) {
	s := e.replica("http://r1", 0)
	must(s.Create(e.ctx, store.NewTx{RestID: "once", JSON: []byte(`{}`), Leased: true})).ok(e.t)
	a := must(s.StartAttempt(e.ctx, "once")).ok(e.t)
	if a.ID != 1 || a.Version != 2 {
		e.t.Errorf("attempt = %+v", a)
	}
	got := must(s.Get(e.ctx, "once")).ok(e.t)
	if got.FinalAttemptReason != store.FinalOneshot || got.AttemptCount != 1 {
		e.t.Errorf("tx without retry not marked oneshot: %+v", got)
	}
	if h := must(s.Head(e.ctx, "once")).ok(e.t); h.Final {
		e.t.Errorf("oneshot tx in its attempt reported final")
	}
	v := must(s.Update(e.ctx, "once", got.Version, store.Update{Responses: []byte(`{"mail_response":{"code":250}}`)})).ok(e.t)
	got = must(s.Get(e.ctx, "once")).ok(e.t)
	if string(got.Responses) != `{"mail_response":{"code":250}}` || got.Version != v {
		e.t.Errorf("responses = %s", got.Responses)
	}
	must(s.FinishAttempt(e.ctx, "once", store.Finish{Responses: []byte(`{"mail_response":{"code":450}}`)})).ok(e.t)
	got = must(s.Get(e.ctx, "once")).ok(e.t)
	if got.Lease.Here || string(got.Responses) != `{"mail_response":{"code":450}}` {
		e.t.Errorf("after finish: %+v", got)
	}
	if h := must(s.Head(e.ctx, "once")).ok(e.t); !h.Final {
		e.t.Errorf("finished oneshot tx not final")
	}
	if _, err := s.StartAttempt(e.ctx, "once"); !errors.Is(err, store.ErrNotLeased) {
		e.t.Errorf("attempt without lease: %v", err)
	}
	// Created with its first attempt started: as if StartAttempt had followed the create.
	started := must(s.Create(e.ctx, store.NewTx{RestID: "started", JSON: []byte(`{}`), Leased: true, StartAttempt: true})).ok(e.t)
	if !started.Lease.Here || started.AttemptCount != 1 || started.FinalAttemptReason != store.FinalOneshot {
		e.t.Errorf("created with its attempt started: %+v", started)
	}
	v = must(s.Update(e.ctx, "started", started.Version, store.Update{Responses: []byte(`{"mail_response":{"code":250}}`)})).ok(e.t)
	if got := must(s.Get(e.ctx, "started")).ok(e.t); string(got.Responses) != `{"mail_response":{"code":250}}` || got.Version != v {
		e.t.Errorf("responses of the attempt started at create: %+v", got)
	}
	// With responses known at create (an exploder's answer to MAIL), the create's read-back
	// carries them.
	answered := must(s.Create(e.ctx, store.NewTx{RestID: "answered", JSON: []byte(`{}`), Leased: true, StartAttempt: true,
		Responses: []byte(`{"mail_response":{"code":250}}`)})).ok(e.t)
	if answered.AttemptCount != 1 || string(answered.Responses) != `{"mail_response":{"code":250}}` {
		e.t.Errorf("created with its first responses: %+v", answered)
	}
	if _, err := s.FinishAttempt(e.ctx, "once", store.Finish{}); !errors.Is(err, store.ErrNotLeased) {
		e.t.Errorf("finish without lease: %v", err)
	}
	if _, err := s.StartAttempt(e.ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		e.t.Errorf("attempt of unknown tx: %v", err)
	}

	// A retryable transaction keeps no final reason across a temporary failure.
	must(s.Create(e.ctx, store.NewTx{RestID: "retry", JSON: []byte(`{}`), Leased: true, Retry: true})).ok(e.t)
	must(s.StartAttempt(e.ctx, "retry")).ok(e.t)
	next := e.clock.Now().Add(time.Minute)
	must(s.FinishAttempt(e.ctx, "retry", store.Finish{NextAttempt: next})).ok(e.t)
	got = must(s.Get(e.ctx, "retry")).ok(e.t)
	if got.FinalAttemptReason != "" || !got.NextAttempt.Equal(next) {
		e.t.Errorf("retryable after temp failure: %+v", got)
	}
	// Turning retry on for a oneshot transaction makes it retryable again.
	onceV := must(s.Head(e.ctx, "once")).ok(e.t).Version
	must(s.Update(e.ctx, "once", onceV, store.Update{Retry: true})).ok(e.t)
	if got := must(s.Get(e.ctx, "once")).ok(e.t); got.FinalAttemptReason != "" || !got.Retry {
		e.t.Errorf("retry did not clear oneshot: %+v", got)
	}
}

func testDequeue(e *env) {
	s := e.replica("http://r1", 0)
	other := e.replica("http://r2", 0)
	if got := must(s.Dequeue(e.ctx)).ok(e.t); got != nil {
		e.t.Fatalf("dequeue on empty db = %+v", got)
	}
	mk := func(st store.Store, id string, done bool, next time.Duration) {
		body := store.NewBlob{ID: store.TxBodyBlob}
		if done {
			body = store.NewBlob{ID: store.TxBodyBlob, Content: []byte("x"), Inline: true}
		}
		must(st.Create(e.ctx, store.NewTx{RestID: id, JSON: []byte(`{}`), Leased: true, Retry: true, Blobs: []store.NewBlob{body}})).ok(e.t)
		must(st.StartAttempt(e.ctx, id)).ok(e.t)
		must(st.FinishAttempt(e.ctx, id, store.Finish{NextAttempt: e.clock.Now().Add(next)})).ok(e.t)
	}
	mk(s, "later", true, 2*time.Minute)
	mk(s, "soon", true, time.Minute)
	mk(other, "uploading-elsewhere", false, 0) // a dead upload on another replica is not ours to resume
	mk(s, "uploading-here", false, 30*time.Second)
	if got := must(s.Dequeue(e.ctx)).ok(e.t); got != nil {
		e.t.Errorf("dequeued %s before it was due", got.RestID)
	}
	if q := must(s.Queue(e.ctx)).ok(e.t); q != (store.QueueStats{Due: 1, Deferred: 3}) {
		e.t.Errorf("queue %+v, want 1 due (the dead upload is due at once) and 3 deferred", q)
	}
	e.clock.Advance(5 * time.Minute)
	var order []string
	for {
		got := must(s.Dequeue(e.ctx)).ok(e.t)
		if got == nil {
			break
		}
		if !got.Lease.Here || got.AttemptCount != 2 || got.NotificationOnly {
			e.t.Errorf("dequeued %+v", got)
		}
		order = append(order, got.RestID)
	}
	if want := "uploading-here soon later"; strings.Join(order, " ") != want {
		e.t.Errorf("dequeue order %v, want %s", order, want)
	}
	if _, err := other.StartAttempt(e.ctx, "soon"); !errors.Is(err, store.ErrNotLeased) {
		e.t.Errorf("other replica started an attempt on a leased tx: %v", err)
	}
	if h := must(other.Head(e.ctx, "soon")).ok(e.t); h.Lease.OwnerURI != "http://r1" {
		e.t.Errorf("other replica sees lease %+v", h.Lease)
	}
	// Final transactions are not dequeued.
	must(s.FinishAttempt(e.ctx, "soon", store.Finish{FinalReason: "upstream response success"})).ok(e.t)
	e.clock.Advance(time.Hour)
	if got := must(other.Dequeue(e.ctx)).ok(e.t); got == nil || got.RestID != "uploading-elsewhere" {
		e.t.Errorf("creator replica should resume its own upload, got %+v", got)
	}
	if got := must(s.Dequeue(e.ctx)).ok(e.t); got != nil {
		e.t.Errorf("dequeued %s", got.RestID)
	}
}

func testPostFactoNotification(e *env) {
	s := e.replica("http://r1", 0)
	must(s.Create(e.ctx, store.NewTx{RestID: "tx", JSON: []byte(`{}`), Leased: true,
		Blobs: []store.NewBlob{{ID: store.TxBodyBlob, Content: []byte("x"), Inline: true}}})).ok(e.t)
	must(s.StartAttempt(e.ctx, "tx")).ok(e.t)
	must(s.FinishAttempt(e.ctx, "tx", store.Finish{FinalReason: "upstream response permfail"})).ok(e.t)
	got := must(s.Get(e.ctx, "tx")).ok(e.t)
	if !got.NoFinalNotification || got.FinalAttemptReason != "upstream response permfail" {
		e.t.Fatalf("final without notification: %+v", got)
	}
	if d := must(s.Dequeue(e.ctx)).ok(e.t); d != nil {
		e.t.Errorf("dequeued %s before notification was turned on", d.RestID)
	}
	must(s.Update(e.ctx, "tx", got.Version, store.Update{Retry: true, Notification: true})).ok(e.t)
	d := must(s.Dequeue(e.ctx)).ok(e.t)
	if d == nil || !d.NotificationOnly || d.AttemptCount != 1 {
		e.t.Fatalf("notification pseudo-attempt = %+v", d)
	}
	must(s.FinishAttempt(e.ctx, "tx", store.Finish{NotificationSent: true})).ok(e.t)
	got = must(s.Get(e.ctx, "tx")).ok(e.t)
	if got.NoFinalNotification || got.FinalAttemptReason != "upstream response permfail" || got.AttemptCount != 1 {
		e.t.Errorf("after notification: %+v", got)
	}
	if d := must(s.Dequeue(e.ctx)).ok(e.t); d != nil {
		e.t.Errorf("dequeued %s again", d.RestID)
	}
}

func testCancel(e *env) {
	s := e.replica("http://r1", 0)
	must(s.Create(e.ctx, newTx("tx"))).ok(e.t)
	v := must(s.Cancel(e.ctx, "tx")).ok(e.t)
	got := must(s.Get(e.ctx, "tx")).ok(e.t)
	if !got.Cancelled || got.FinalAttemptReason != store.FinalCancelled || got.Version != v {
		e.t.Errorf("cancelled tx: %+v", got)
	}
	if v2 := must(s.Cancel(e.ctx, "tx")).ok(e.t); v2 != v {
		e.t.Errorf("second cancel wrote (version %d -> %d)", v, v2)
	}
	must(s.Create(e.ctx, newTx("done"))).ok(e.t)
	must(s.StartAttempt(e.ctx, "done")).ok(e.t)
	must(s.FinishAttempt(e.ctx, "done", store.Finish{FinalReason: "upstream response success"})).ok(e.t)
	must(s.Cancel(e.ctx, "done")).ok(e.t)
	if got := must(s.Get(e.ctx, "done")).ok(e.t); got.Cancelled || got.FinalAttemptReason != "upstream response success" {
		e.t.Errorf("cancel overwrote a final tx: %+v", got)
	}
	if _, err := s.Cancel(e.ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		e.t.Errorf("cancel unknown: %v", err)
	}
}

func testSessionsAndLeases(e *env) {
	a := e.replica("http://a", 0)
	b, err := e.open(store.Options{SessionURI: "http://b", Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	if a.SessionID() == b.SessionID() {
		e.t.Fatalf("two replicas share session %d", a.SessionID())
	}
	must(b.Create(e.ctx, newTx("held-by-b", store.NewBlob{ID: store.TxBodyBlob}))).ok(e.t)
	if h := must(a.Head(e.ctx, "held-by-b")).ok(e.t); h.Lease.OwnerURI != "http://b" || h.Lease.Here {
		e.t.Errorf("a sees lease %+v", h.Lease)
	}
	var le *store.LeasedError
	if _, err := appendStr(e, a, "held-by-b", store.Append{Total: -1, FinalizeAtEOF: true}, "x"); !errors.As(err, &le) || le.OwnerURI != "http://b" {
		e.t.Errorf("append on the wrong replica: %v", err)
	}
	// b dies without ending its session; a reaps it once it has been silent for the ttl.
	if ab, ok := b.(abandoner); ok {
		noErr(e.t, ab.Abandon())
	} else {
		e.t.Fatalf("%T cannot be abandoned", b)
	}
	if n := must(a.ReapSessions(e.ctx, time.Minute)).ok(e.t); n != 0 {
		e.t.Errorf("reaped %d live sessions", n)
	}
	e.clock.Advance(2 * time.Minute)
	noErr(e.t, a.Refresh(e.ctx))
	if n := must(a.ReapSessions(e.ctx, time.Minute)).ok(e.t); n != 1 {
		e.t.Errorf("reaped %d sessions, want 1", n)
	}
	if h := must(a.Head(e.ctx, "held-by-b")).ok(e.t); h.Lease != (store.Lease{}) || h.Version != 2 {
		e.t.Errorf("after reaping: %+v", h)
	}
	if st := must(appendStr(e, a, "held-by-b", store.Append{Total: -1, FinalizeAtEOF: true}, "x")).ok(e.t); !st.Finalized() {
		e.t.Errorf("append after takeover: %+v", st)
	}
	// A replica that was declared dead learns so at its next heartbeat.
	c := e.replica("http://c", 0)
	e.clock.Advance(2 * time.Minute)
	noErr(e.t, a.Refresh(e.ctx))
	must(a.ReapSessions(e.ctx, time.Minute)).ok(e.t)
	if err := c.Refresh(e.ctx); !errors.Is(err, store.ErrSessionLost) {
		e.t.Errorf("refresh of a reaped session: %v", err)
	}
	// A replica restarted after dying (same session URI) takes over its earlier run's work
	// at once, without waiting out the TTL; the earlier run, if it still ran, is dead.
	old, err := e.open(store.Options{SessionURI: "http://restarted", Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	must(old.Create(e.ctx, newTx("held-by-old"))).ok(e.t)
	noErr(e.t, old.(abandoner).Abandon())
	restarted := e.replica("http://restarted", 0)
	if h := must(restarted.Head(e.ctx, "held-by-old")).ok(e.t); h.Lease != (store.Lease{}) {
		e.t.Errorf("after the restart: %+v", h.Lease)
	}
	// Closing releases leases.
	d, err := e.open(store.Options{SessionURI: "http://d", Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	must(d.Create(e.ctx, newTx("held-by-d"))).ok(e.t)
	noErr(e.t, d.Close())
	if h := must(a.Head(e.ctx, "held-by-d")).ok(e.t); h.Lease != (store.Lease{}) {
		e.t.Errorf("lease survived close: %+v", h.Lease)
	}
}

func testGC(e *env) {
	s := e.replica("http://r1", 0)
	finish := func(id, reason string) {
		must(s.StartAttempt(e.ctx, id)).ok(e.t)
		must(s.FinishAttempt(e.ctx, id, store.Finish{FinalReason: reason})).ok(e.t)
	}
	must(s.Create(e.ctx, newTx("final", store.NewBlob{ID: store.TxBodyBlob, Content: []byte("abc"), Inline: true}))).ok(e.t)
	finish("final", "upstream response success")
	must(s.Create(e.ctx, newTx("abandoned-upload", store.NewBlob{ID: store.TxBodyBlob}))).ok(e.t)
	must(s.FinishAttempt(e.ctx, "abandoned-upload", store.Finish{})).ok(e.t)
	must(s.Create(e.ctx, newTx("leased"))).ok(e.t)
	must(s.Create(e.ctx, newTx("owes-dsn", store.NewBlob{ID: store.TxBodyBlob, Content: []byte("x"), Inline: true}))).ok(e.t)
	finish("owes-dsn", "upstream response permfail")
	v := must(s.Head(e.ctx, "owes-dsn")).ok(e.t).Version
	must(s.Update(e.ctx, "owes-dsn", v, store.Update{Retry: true, Notification: true})).ok(e.t)
	must(s.Create(e.ctx, store.NewTx{RestID: "waiting-retry", JSON: []byte(`{}`), Leased: true, Retry: true,
		Blobs: []store.NewBlob{{ID: store.TxBodyBlob, Content: []byte("x"), Inline: true}}})).ok(e.t)
	must(s.StartAttempt(e.ctx, "waiting-retry")).ok(e.t)
	must(s.FinishAttempt(e.ctx, "waiting-retry", store.Finish{NextAttempt: e.clock.Now().Add(time.Hour)})).ok(e.t)
	if st := must(s.GC(e.ctx, time.Hour)).ok(e.t); st != (store.GCStats{}) {
		e.t.Errorf("gc of young transactions deleted %+v", st)
	}
	e.clock.Advance(2 * time.Hour)
	must(s.Create(e.ctx, newTx("young", store.NewBlob{ID: store.TxBodyBlob}))).ok(e.t)
	st := must(s.GC(e.ctx, time.Hour)).ok(e.t)
	if st.Transactions != 2 || st.Blobs != 2 {
		e.t.Errorf("gc = %+v, want 2 transactions and 2 blobs", st)
	}
	for id, want := range map[string]bool{"final": false, "abandoned-upload": false, "leased": true, "waiting-retry": true,
		"young": true, "owes-dsn": true} {
		_, err := s.Get(e.ctx, id)
		if exists := err == nil; exists != want {
			e.t.Errorf("after gc %s exists=%v (err %v), want %v", id, exists, err, want)
		}
	}
}

func testConcurrentWriters(e *env) {
	s := e.replica("http://r1", 1024)
	const writers, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				if _, err := s.Create(e.ctx, newTx(id, store.NewBlob{ID: store.TxBodyBlob})); err != nil {
					errs <- err
					return
				}
				if _, err := s.AppendBlob(e.ctx, id, store.TxBodyBlob, store.Append{Total: -1, FinalizeAtEOF: true},
					bytes.NewReader(patterned(3000+i))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatal(err)
	}
	for w := range writers {
		for i := range each {
			got := must(s.Get(e.ctx, fmt.Sprintf("w%d-%d", w, i))).ok(e.t)
			if !got.InputDone {
				e.t.Errorf("%s not input_done", got.RestID)
			}
		}
	}
	// Many writers racing on one version: exactly one wins.
	must(s.Create(e.ctx, newTx("race"))).ok(e.t)
	var wins atomic.Int32
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Update(e.ctx, "race", 1, store.Update{JSON: []byte(`{}`)}); err == nil {
				wins.Add(1)
			} else if !errors.Is(err, store.ErrConflict) {
				e.t.Errorf("racing update: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		e.t.Errorf("%d racing updates won, want 1", wins.Load())
	}
}

func testExclusiveDequeue(e *env) {
	replicas := []store.Store{e.replica("http://r1", 0), e.replica("http://r2", 0), e.replica("http://r3", 0)}
	const n = 60
	for i := range n {
		id := fmt.Sprintf("tx%d", i)
		r := replicas[0]
		must(r.Create(e.ctx, store.NewTx{RestID: id, JSON: []byte(`{}`), Leased: true, Retry: true,
			Blobs: []store.NewBlob{{ID: store.TxBodyBlob, Content: []byte("x"), Inline: true}}})).ok(e.t)
		must(r.StartAttempt(e.ctx, id)).ok(e.t)
		must(r.FinishAttempt(e.ctx, id, store.Finish{})).ok(e.t)
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for _, r := range replicas {
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					got, err := r.Dequeue(e.ctx)
					if err != nil {
						e.t.Errorf("dequeue: %v", err)
						return
					}
					if got == nil {
						return
					}
					mu.Lock()
					if prev, dup := seen[got.RestID]; dup {
						e.t.Errorf("%s dequeued by %s and %s", got.RestID, prev, r.SessionURI())
					}
					seen[got.RestID] = r.SessionURI()
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if len(seen) != n {
		e.t.Errorf("dequeued %d of %d", len(seen), n)
	}
}

// testStartRacesFinish: an attempt starting while another ends the transaction must not
// lease a final transaction again.
func testStartRacesFinish(e *env) {
	s := e.replica("http://r1", 0)
	for i := range 40 {
		id := fmt.Sprintf("tx%d", i)
		must(s.Create(e.ctx, newTx(id))).ok(e.t)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			s.StartAttempt(e.ctx, id)
		}()
		go func() {
			defer wg.Done()
			s.FinishAttempt(e.ctx, id, store.Finish{FinalReason: "upstream response success"})
		}()
		wg.Wait()
		got := must(s.Get(e.ctx, id)).ok(e.t)
		if got.FinalAttemptReason != "" && got.Lease.Here {
			e.t.Fatalf("%s is final and leased again: %+v", id, got)
		}
	}
}
