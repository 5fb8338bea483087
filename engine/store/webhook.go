package store

import (
	"context"
	"time"
)

// Webhooks is the durable queue of events for senders' webhooks (docs/webhooks.md). An event
// is written in the same database transaction as the outcome it reports (Finish.Events,
// NewTx.Events), so that a crash neither loses the event of a recorded outcome nor leaves one
// for an outcome that was not recorded. Events name their transaction by rest id and carry
// their payload, so they outlive the transaction's garbage collection.
//
// The events of one transaction go out in the order they were written: only the oldest
// unfinished one may be claimed. A claim is a lease (of this session, until a deadline) so
// that two replicas never send one event at once; an event whose lease expired or whose
// session died is claimed again, which makes delivery at-least-once.
type Webhooks interface {
	// ClaimWebhookEvents leases up to n due events, each the oldest unfinished event of its
	// transaction and not leased by a live session, for lease, counting an attempt on each.
	ClaimWebhookEvents(ctx context.Context, n int, lease time.Duration) ([]WebhookEvent, error)
	// WebhookEventDelivered finishes an event as delivered (whoever holds it now: it arrived).
	WebhookEventDelivered(ctx context.Context, seq int64) error
	// RetryWebhookEvent releases an event this session holds to be claimed again at next,
	// recording why this attempt failed. ErrNotLeased if the session no longer holds it.
	RetryWebhookEvent(ctx context.Context, seq int64, next time.Time, lastError string) error
	// DropWebhookEvent finishes an event this session holds without delivering it, recording
	// why; the transaction's next event becomes due. ErrNotLeased as for RetryWebhookEvent.
	DropWebhookEvent(ctx context.Context, seq int64, reason string) error
	// PurgeWebhookEvents deletes the events finished longer than ttl ago.
	PurgeWebhookEvents(ctx context.Context, ttl time.Duration) (int, error)
	// WebhookEvents lists the events of a transaction in order, finished ones included.
	WebhookEvents(ctx context.Context, restID string) ([]WebhookEvent, error)
}

// NewWebhookEvent is an event to queue for the webhook of Sender and Tag.
type NewWebhookEvent struct {
	// ID is the event's public id, unique: receivers deduplicate on it.
	ID string
	// RestID is the transaction the event reports on; its events go out in order.
	RestID      string
	Sender, Tag string
	// Payload is the JSON body to POST, opaque here.
	Payload []byte
	// NotBefore holds the event back until then (zero: due at once); until it is first
	// claimed, a later Update of its transaction may supersede it (Update.SupersedeHeld).
	NotBefore time.Time
}

// WebhookEvent is a queued event as read back.
type WebhookEvent struct {
	// Seq orders events: a transaction's go out by increasing Seq.
	Seq int64
	NewWebhookEvent
	Creation    time.Time
	NextAttempt time.Time
	// Attempts counts the claims so far, the current one included.
	Attempts  int
	LastError string
	// Finished is when the event was delivered or dropped (zero while it is pending);
	// Dropped says why it was given up on ("" if delivered).
	Finished time.Time
	Dropped  string
}

// Delivered reports whether the event reached its webhook.
func (e WebhookEvent) Delivered() bool { return !e.Finished.IsZero() && e.Dropped == "" }
