// Package store is the router's durable state: transactions, their attempts, their body blobs,
// and the sessions (router replicas) that hold leases on them.
//
// Invariants every backend keeps:
//   - A method that returns without error has committed durably; the caller may acknowledge.
//   - Every write to a transaction bumps its version, the ETag clients see. Writes that name an
//     expected version fail with ErrConflict instead of overwriting a newer one.
//   - A transaction document (the DB-context JSON of engine/tx) is opaque here; the lifecycle
//     state that queries need (lease, final reason, input_done, due time, retry and
//     notification flags) lives in columns.
//   - Blob bytes are streamed in pieces and never held whole in memory; a blob is shared by
//     reference between transactions once finalized and deleted when nothing refers to it.
//
// Backends live in sub-packages (sqlite, postgres) and all pass the storetest conformance suite.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// TxBodyBlob is the blob id under which a transaction's RFC 5322 body is stored. Client blob
// ids may not start with the "__internal" prefix.
const TxBodyBlob = "__internal_tx_body"

// FinalOneshot marks a transaction without retries whose one attempt has been started: it is
// never dequeued again, and never shown to clients as a final reason.
const FinalOneshot = "oneshot"

// Store is one router replica's handle on the shared database. Opening it registers a live
// session whose lease the replica holds on the transactions it works on; Close ends the session
// and releases those leases.
type Store interface {
	// SessionID identifies this replica's session; SessionURI is the URI it was opened with.
	SessionID() int64
	SessionURI() string

	// Create inserts a transaction, with its blobs, at version 1. If n has an idempotency key
	// that an existing transaction was created with, it returns an *IdempotencyError.
	Create(ctx context.Context, n NewTx) (*Tx, error)
	// Get reads a transaction with its blobs, latest attempt and lease holder.
	Get(ctx context.Context, restID string) (*Tx, error)
	// Head is the cheap point read behind hanging GETs and redirects.
	Head(ctx context.Context, restID string) (Head, error)
	// Update applies u if the transaction is still at version; it returns the new version.
	Update(ctx context.Context, restID string, version int64, u Update) (int64, error)
	// Touch bumps the version and last_update unconditionally (upload progress, heartbeats).
	Touch(ctx context.Context, restID string) (int64, error)
	// Cancel marks the transaction cancelled with FinalCancelled unless it already has a final
	// reason other than oneshot. Unknown transactions give ErrNotFound.
	Cancel(ctx context.Context, restID string) (int64, error)

	// StartAttempt begins the next attempt of a transaction this session already leases (the
	// creator's cut-through hand-off). A transaction without retry becomes oneshot.
	StartAttempt(ctx context.Context, restID string) (Attempt, error)
	// Dequeue leases the most overdue transaction that is due for an attempt or owes a
	// post-facto notification, and starts its attempt. It returns (nil, nil) when none is due.
	Dequeue(ctx context.Context) (*Tx, error)
	// FinishAttempt records the attempt's outcome and releases the lease. It needs no version:
	// the lease already makes the output handler the only one finishing attempts.
	FinishAttempt(ctx context.Context, restID string, f Finish) (int64, error)

	// AppendBlob streams r into a blob of a transaction at a.Offset (see Append). Bytes the
	// blob already holds are skipped (a client resending after a broken upload). Pieces
	// commit as they arrive, so after an error the returned status (or the RangeError's
	// Current) tells the client where to resume.
	AppendBlob(ctx context.Context, restID, blobID string, a Append, r io.Reader) (BlobStatus, error)
	// OpenBlob streams a blob's bytes from offset 0.
	OpenBlob(ctx context.Context, restID, blobID string) (io.ReadCloser, BlobStatus, error)

	// Refresh is the session heartbeat; ReapSessions marks sessions silent for longer than ttl
	// dead, releases their leases and deletes their rows. Both run periodically.
	Refresh(ctx context.Context) error
	ReapSessions(ctx context.Context, ttl time.Duration) (int, error)
	// GC deletes unleased transactions idle for longer than ttl that are final or never
	// finished uploading, except those that still owe a notification, then every blob
	// nothing refers to.
	GC(ctx context.Context, ttl time.Duration) (GCStats, error)

	// Ping checks that the database answers, for readiness probes.
	Ping(ctx context.Context) error
	// Queue counts the transactions without a final reason, for the status page (see
	// QueueStats).
	Queue(ctx context.Context) (QueueStats, error)
	// QueueDomains counts the transactions not final yet by State (in flight, due,
	// deferred, held) and recipient domain, for metrics: one entry per domain for the top
	// domains with the most (most first, ties by name) and, last, one with Domain "" for
	// all the rest: other domains and transactions without one recipient domain (exploder
	// parents, incremental senders). Its size stays bounded however many domains the
	// queue holds.
	QueueDomains(ctx context.Context, top int) ([]DomainStats, error)

	// The queue admin API (engine/admin).

	// List returns the transactions q selects, newest (highest ID) first.
	List(ctx context.Context, q ListQuery) ([]Summary, error)
	// Attempts lists a transaction's attempts in order. Unknown transactions give ErrNotFound.
	Attempts(ctx context.Context, restID string) ([]AttemptRecord, error)
	// RetryNow makes a transaction waiting for a later attempt due now and returns its new
	// version. ErrFinal if it is final, ErrInFlight if an attempt holds its lease.
	RetryNow(ctx context.Context, restID string) (int64, error)
	// SuspendDomain holds transactions to domain (lower-case A-labels): Dequeue starts none
	// and Create makes them unleased, until ResumeDomain. It reports whether the domain was
	// not suspended already.
	SuspendDomain(ctx context.Context, domain string) (bool, error)
	// ResumeDomain lifts a suspension; it reports whether there was one.
	ResumeDomain(ctx context.Context, domain string) (bool, error)
	// SuspendedDomains lists the suspensions with how many transactions each holds.
	SuspendedDomains(ctx context.Context) ([]SuspendedDomain, error)
	// DomainStats counts, per recipient domain, the transactions updated since then by the
	// state they are in.
	DomainStats(ctx context.Context, since time.Time) ([]DomainStats, error)

	// Close ends the session, releasing its leases, and closes the database.
	Close() error

	Webhooks
}

// FinalCancelled is the final reason Cancel writes.
const FinalCancelled = "downstream cancelled"

// FinalSuccess is the final reason of a delivered transaction, which the admin list tells
// from failures.
const FinalSuccess = "upstream response success"

// NewTx is a transaction to insert.
type NewTx struct {
	RestID string
	// JSON is the transaction document (engine/tx DB context).
	JSON []byte
	// MessageBuilder is the normalized message-builder spec, if the body is one.
	MessageBuilder []byte
	Blobs          []NewBlob
	// Leased creates the row leased to this session, for the creator's cut-through hand-off.
	Leased bool
	// StartAttempt starts the first attempt of a Leased transaction in the same commit, as
	// StartAttempt would right after (one write fewer per transaction). A transaction
	// created held gets no attempt.
	StartAttempt bool
	// Responses are the first attempt's responses as it starts, with StartAttempt: answers
	// known before any chain step runs (an exploder's to MAIL), which the create's answer
	// then carries. Ignored when no attempt starts.
	Responses    []byte
	Retry        bool
	Notification bool
	// IdempotencyKey, when set, is unique among live transactions; RequestHash identifies the
	// request it came with.
	IdempotencyKey string
	RequestHash    string
	// Sender is the name of the sender the transaction is created under. RcptDomain is its
	// recipient's domain (lower-case A-labels) when it has one recipient for good; empty
	// for an incremental sender's, whose recipients come later. Both are indexed for the
	// admin list. A transaction for a suspended RcptDomain is created unleased even with
	// Leased set: it waits, held, for the domain to be resumed.
	Sender     string
	RcptDomain string
	// Events are queued for webhooks with the transaction (a DSN reports on the transaction
	// it notifies about).
	Events []NewWebhookEvent
}

// NewBlob attaches a blob to a transaction under ID: empty (to be uploaded), with Content
// (inline, finalized at once), or shared by reference with a finalized blob of another
// transaction (ReuseTx, ReuseBlob).
type NewBlob struct {
	ID        string
	Content   []byte
	Inline    bool
	ReuseTx   string
	ReuseBlob string
}

// Update is a versioned write to a transaction; zero fields leave columns unchanged.
type Update struct {
	JSON           []byte
	MessageBuilder []byte
	AddBlobs       []NewBlob
	// Responses replaces the current attempt's responses document.
	Responses []byte
	// Retry and Notification turn those on (never off). Turning retry on clears oneshot, so the
	// transaction becomes retryable again (exploder store-and-forward).
	Retry        bool
	Notification bool
	// SupersedeHeld drops the transaction's events still held back (NewWebhookEvent.
	// NotBefore in the future, never claimed), and Events are queued, with the update: the
	// outcome they reported has changed (exploder store-and-forward after a one-shot
	// attempt).
	SupersedeHeld bool
	Events        []NewWebhookEvent
}

// Attempt identifies a started attempt.
type Attempt struct {
	ID      int
	Version int64
}

// Finish is the outcome of an attempt.
type Finish struct {
	Responses []byte
	// FinalReason ends the transaction; empty means it may be retried at NextAttempt.
	FinalReason string
	NextAttempt time.Time
	// NotificationSent ends a notification-only pseudo-attempt.
	NotificationSent bool
	// Events are queued for webhooks with the outcome they report, or not at all.
	Events []NewWebhookEvent
}

// Append says where a piece of a blob goes and when the blob is complete.
type Append struct {
	Offset int64
	// Total is the declared final length, or -1 when not yet known.
	Total int64
	// FinalizeAtEOF finalizes the blob at whatever length it has when r is exhausted (a plain
	// PUT without content-range).
	FinalizeAtEOF bool
	// Create makes the blob (and its ref) if the transaction has none under that id yet; only
	// at offset 0.
	Create bool
}

// BlobStatus is a blob's length so far and its declared total (-1 when unknown).
type BlobStatus struct {
	Length int64
	Total  int64
}

// Finalized reports whether every byte of the blob has arrived.
func (b BlobStatus) Finalized() bool { return b.Total >= 0 && b.Length == b.Total }

// Tx is a stored transaction as read back.
type Tx struct {
	ID                  int64
	RestID              string
	Version             int64
	JSON                []byte
	MessageBuilder      []byte
	InputDone           bool
	Cancelled           bool
	FinalAttemptReason  string
	Retry               bool
	Notification        bool
	NoFinalNotification bool
	NextAttempt         time.Time
	Creation            time.Time
	LastUpdate          time.Time
	// AttemptCount is the id of the latest attempt (0 before the first), and Responses that
	// attempt's responses document.
	AttemptCount int
	Responses    []byte
	Blobs        []Blob
	Lease        Lease
	// NotificationOnly is set by Dequeue for a post-facto notification pseudo-attempt.
	NotificationOnly bool
}

// Blob is one blob reference of a transaction.
type Blob struct {
	ID string
	BlobStatus
}

// Lease tells who works on a transaction: nobody, this session, or another live session.
type Lease struct {
	Here bool
	// OwnerURI is the session URI of another replica that holds the lease; empty otherwise.
	OwnerURI string
}

// Head is what a hanging GET needs to decide between waiting, answering and redirecting.
type Head struct {
	Version int64
	Lease   Lease
	Final   bool
}

// QueueStats counts the transactions without a final reason: being worked on (leased), due
// for an attempt now, waiting for a later attempt, and held (their domain is suspended), as
// State tells them apart; a transaction without retries in its one attempt (final reason
// oneshot) is not counted.
type QueueStats struct {
	InFlight, Due, Deferred, Held int
}

// GCStats counts what a GC pass deleted.
type GCStats struct {
	Transactions int
	Blobs        int
}

var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("version conflict")
	// ErrNotLeased means the transaction is not leased by this session.
	ErrNotLeased = errors.New("transaction not leased by this session")
	// ErrDuplicate means the rest id (or a blob id within the transaction) is taken.
	ErrDuplicate = errors.New("duplicate id")
	// ErrSessionLost means this replica's session was declared dead by another replica (it
	// missed too many heartbeats); its leases are gone and it must stop working.
	ErrSessionLost = errors.New("storage session lost")
	// ErrUnavailable means the database cannot be reached or refuses work for now (it is
	// down, restarting or shutting down, or the connection was lost): the same request may
	// succeed later. ErrFull means it has no space left to write. Backends that tell these
	// apart implement Classifier.
	ErrUnavailable = errors.New("storage unavailable")
	ErrFull        = errors.New("storage full")
	// ErrFinal means the transaction is final, and ErrInFlight that an attempt holds its
	// lease: neither can be retried now.
	ErrFinal    = errors.New("transaction is final")
	ErrInFlight = errors.New("transaction has an attempt in flight")
)

// Classifier is a Store that can tell which of its database's errors mean ErrUnavailable or
// ErrFull: Classify wraps such an error with the one it means and returns any other as it
// is. Only the backend knows its driver's errors; clients act on the difference (come
// back soon, or once an operator has freed space).
type Classifier interface {
	Classify(err error) error
}

// RangeError is an append that does not continue the blob: a gap, a total that disagrees with
// the declared one, or an append past the total. Current tells the client where to resync.
type RangeError struct {
	Current BlobStatus
	Reason  string
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("invalid range: %s (blob has %d bytes)", e.Reason, e.Current.Length)
}

// ReuseError is a reuse of a blob that does not exist or is not finalized.
type ReuseError struct {
	TxID, BlobID string
	Reason       string
}

func (e *ReuseError) Error() string {
	return fmt.Sprintf("cannot reuse blob %q of transaction %q: %s", e.BlobID, e.TxID, e.Reason)
}

// IdempotencyError is a create whose idempotency key an existing transaction holds.
// SameRequest tells a retry of the original request from a different request.
type IdempotencyError struct {
	RestID      string
	SameRequest bool
}

func (e *IdempotencyError) Error() string {
	return fmt.Sprintf("idempotency key already used by transaction %s", e.RestID)
}

// LeasedError means another live replica holds the transaction; clients are redirected there.
type LeasedError struct{ OwnerURI string }

func (e *LeasedError) Error() string { return "transaction is leased by " + e.OwnerURI }

// Options tune a backend; zero values take the defaults noted.
type Options struct {
	// SessionURI is this replica's URL, recorded in its session row for redirects.
	SessionURI string
	// ChunkSize is the largest piece of blob written per database row (default 1 MiB).
	ChunkSize int
	// MaxBatch bounds how many writes share one commit (default 256; 1 disables group commit).
	MaxBatch int
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
}

// WithDefaults fills unset options.
func (o Options) WithDefaults() Options {
	if o.ChunkSize <= 0 {
		o.ChunkSize = 1 << 20
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// State is where a transaction stands in the queue, derived from its columns. Exactly one
// applies: a final reason decides between delivered, failed and cancelled; otherwise a lease
// means in flight, a suspended recipient domain held, and the next attempt time due or
// deferred. A transaction without retries whose one attempt ended without a final answer
// is failed.
type State string

const (
	StateInFlight  State = "in_flight"
	StateDue       State = "due"
	StateDeferred  State = "deferred"
	StateHeld      State = "held"
	StateDelivered State = "delivered"
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
)

// States lists every State, queued ones first.
var States = []State{StateInFlight, StateDue, StateDeferred, StateHeld, StateDelivered, StateFailed, StateCancelled}

// ListQuery selects transactions for List; zero fields select everything.
type ListQuery struct {
	// RestID selects one transaction.
	RestID     string
	State      State
	Sender     string
	RcptDomain string
	// Since keeps transactions updated at or after it.
	Since time.Time
	// Before keeps transactions whose ID is below it: the cursor of the next page.
	Before int64
	// Limit bounds the answer (default 50).
	Limit int
}

// Summary is a transaction as the admin list shows it.
type Summary struct {
	ID                 int64
	RestID             string
	JSON               []byte
	Sender             string
	RcptDomain         string
	State              State
	FinalAttemptReason string
	AttemptCount       int
	// Responses is the latest attempt's responses document (nil before the first).
	Responses   []byte
	NextAttempt time.Time
	Creation    time.Time
	LastUpdate  time.Time
}

// AttemptRecord is one attempt of a transaction with its responses document.
type AttemptRecord struct {
	ID         int
	Responses  []byte
	Creation   time.Time
	LastUpdate time.Time
}

// SuspendedDomain is a suspension and the transactions it holds (queued, not final).
type SuspendedDomain struct {
	Domain string
	Since  time.Time
	Held   int
}

// DomainStats counts one recipient domain's transactions by state.
type DomainStats struct {
	Domain string
	Counts map[State]int
}
