package tx

import "encoding/json"

// Tx is one transaction, or a delta of one: a zero field is "not set" (in a
// delta, "unchanged"). Which fields each JSON context carries is in fields.go.
// Values reachable from a Tx (including json.RawMessage bytes) are not
// modified in place once set; a new value replaces the old one.
type Tx struct {
	Sender     *Sender
	RemoteHost *HostPort
	LocalHost  *HostPort
	MailFrom   *Mailbox
	RcptTo     []Mailbox
	// RcptToOffset is, in a delta, the index in the whole list at which
	// RcptTo's items start.
	RcptToOffset int
	Body         Body
	SMTPMeta     map[string]json.RawMessage
	Notification map[string]json.RawMessage // non-nil: send a DSN on failure
	Retry        map[string]json.RawMessage // non-nil: retry temporary failures
	AttemptCount int                        // id of the latest attempt; 0: none yet
	MailResponse *Response
	RcptResponse []Response // in rcpt_to order; shorter while some are pending
	// RcptResponseOffset is RcptToOffset for RcptResponse.
	RcptResponseOffset int
	DataResponse       *Response
	Cancelled          bool
	FinalAttemptReason string // one of the Reason constants once Koukan is done
	// FilterOutput holds results of chain steps and REST clients, keyed by
	// step, as JSON the producer and consumer agree on.
	FilterOutput map[string]json.RawMessage

	// In-process only; never in any JSON.

	RestID             string
	RestEndpoint       string
	Options            map[string]any // destination options from the routing decision
	Resolution         []HostPort     // candidate destination hosts, in order
	SessionURI         string
	RestUpstreamSender *Sender
	// EphemeralFilterOutput is FilterOutput that lives for one chain run.
	EphemeralFilterOutput map[string]any
	// Routed marks the recipients (by index) that a router step routed: the first router
	// that matches a recipient wins.
	Routed map[int]bool
}

// Copy returns a deep copy of t.
func (t *Tx) Copy() *Tx {
	c := *t
	for _, f := range fields {
		f.copyTo(&c, t)
	}
	return &c
}

// IsEmpty reports whether no field is set (list offsets aside), e.g. a delta
// with nothing new.
func (t *Tx) IsEmpty() bool {
	for _, f := range fields {
		if f.isSet(t) {
			return false
		}
	}
	return true
}

// CopyFrom copies into t every field of src that context c carries and src
// has set, e.g. ExploderCreate for a new per-recipient transaction or
// AddRoute for add_route's side transaction.
func (t *Tx) CopyFrom(src *Tx, c Context) {
	for _, f := range fields {
		if f.valid(c) && f.isSet(src) {
			f.copyTo(t, src)
		}
	}
}
