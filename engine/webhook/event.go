// Package webhook tells applications what happened to their mail: for each attempt outcome
// (and each DSN) of a transaction whose sender has a webhook, an event is POSTed as JSON to
// the webhook's URL, signed with HMAC-SHA256 (docs/webhooks.md).
//
// Events are built by the router when an attempt ends and written with its outcome in one
// database transaction (store.Finish.Events); the Worker here sends them from the store.
// Delivery is at-least-once: an event is sent until its webhook answers 2xx, or until it is
// older than the webhook's max_age, and may arrive twice (receivers deduplicate on its id).
// The events of one transaction arrive in order: one is sent only once the earlier ones are
// delivered or dropped.
package webhook

import (
	"crypto/rand"
	"encoding/json"
	"regexp"
	"strings"
	"time"
)

// Event types.
const (
	// Delivered: the remote server accepted the message for the recipient.
	Delivered = "delivered"
	// Deferred: a temporary failure; another attempt follows at NextAttempt.
	Deferred = "deferred"
	// Failed: the router gives up on the recipient (a permanent failure, or a temporary one
	// with no retry left).
	Failed = "failed"
	// DSNSent: a delivery status notification was created for the transaction.
	DSNSent = "dsn_sent"
)

// Event is the JSON body of one POST. It carries no message content and no secret.
type Event struct {
	// ID is unique per event and the same on every redelivery of it.
	ID   string `json:"id"`
	Type string `json:"type"`
	// Time is when the outcome was recorded.
	Time time.Time `json:"time"`
	// Transaction is the transaction's rest id (GET /transactions/{id}).
	Transaction string `json:"transaction"`
	Sender      string `json:"sender"`
	Tag         string `json:"tag,omitempty"`
	Recipient   string `json:"recipient,omitempty"`
	// Attempt is the number of the attempt that ended (for a DSN, the last one).
	Attempt int `json:"attempt"`
	// Reply is the remote server's reply that decided the outcome, when there was one.
	Reply *Reply `json:"reply,omitempty"`
	// NextAttempt is when a deferred recipient is tried again.
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
	// FinalReason is the transaction's final_attempt_reason once it has one.
	FinalReason string `json:"final_reason,omitempty"`
	// DSN describes the notification of a dsn_sent event.
	DSN *DSN `json:"dsn,omitempty"`
}

// Reply is an SMTP reply, with the RFC 3463 enhanced status code split off the text.
type Reply struct {
	Code         int    `json:"code"`
	EnhancedCode string `json:"enhanced_code,omitempty"`
	Message      string `json:"message"`
}

// DSN is the notification a dsn_sent event reports: its own transaction and its action
// (failed, delayed or delivered).
type DSN struct {
	Transaction string `json:"transaction"`
	Action      string `json:"action"`
}

var enhancedCode = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)

// NewReply splits a leading enhanced status code of the reply's class off message.
func NewReply(code int, message string) *Reply {
	r := &Reply{Code: code, Message: message}
	first, rest, _ := strings.Cut(message, " ")
	if enhancedCode.MatchString(first) && int(first[0]-'0') == code/100 {
		r.EnhancedCode, r.Message = first, rest
	}
	return r
}

// NewID makes an event id: 128 random bits or more.
func NewID() string { return strings.ToLower(rand.Text()) }

// Marshal renders e for the store, with times in UTC to the millisecond.
func (e Event) Marshal() ([]byte, error) {
	e.Time = e.Time.UTC().Truncate(time.Millisecond)
	if e.NextAttempt != nil {
		t := e.NextAttempt.UTC().Truncate(time.Millisecond)
		e.NextAttempt = &t
	}
	return json.Marshal(e)
}
