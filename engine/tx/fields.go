package tx

import (
	"encoding/json"
	"maps"
	"slices"
)

// field describes one Tx field: the JSON contexts that carry it (the matrix
// of spec section 1.2) and, through its kind, how it is read, written,
// copied, diffed and merged. Every per-field rule of the package is here.
type field struct {
	name string
	// full: carried as its value. placeholder: carried as {} (or [{}, ...])
	// because the reader already knows it. echo: tolerated as {} on input
	// and never written.
	full, placeholder, echo contextSet
	// offsets: contexts whose JSON carries <name>_list_offset (lists only).
	offsets contextSet
	kind
}

// kind is the behaviour shared by fields of one shape: write-once scalar,
// append-only list, or keyed dict.
type kind interface {
	isSet(t *Tx) bool
	copyTo(dst, src *Tx)
	delta(name string, old, new, out *Tx) error
	merge(name string, t, d *Tx) error
	read(t *Tx, raw json.RawMessage, path string, c Context) error
	write(t *Tx, c Context) (any, bool)
}

// listKind is the extra of list fields: a length (for placeholders) and an
// offset (for <name>_list_offset).
type listKind interface {
	length(t *Tx) int
	offset(t *Tx) *int
}

func (f *field) valid(c Context) bool { return (f.full | f.placeholder | f.echo).has(c) }

var (
	ctxHosts   = in(RestRead, RestCreate, DB, ExploderCreate, AddRoute)
	ctxDSN     = in(RestRead, DB, ExploderCreate, ExploderUpdate)
	ctxReplies = in(RestRead, DBAttempt)
)

// fields is in output order (that of the spec's examples).
var fields = []*field{
	{name: "sender", full: in(RestCreate, DB), placeholder: in(RestRead),
		kind: scalar[*Sender]{slot: func(t *Tx) **Sender { return &t.Sender }, clone: clonePtr[Sender], decode: ptr(decodeSender)}},
	{name: "remote_host", full: ctxHosts,
		kind: scalar[*HostPort]{slot: func(t *Tx) **HostPort { return &t.RemoteHost }, clone: clonePtr[HostPort], decode: ptr(decodeHostPort)}},
	{name: "local_host", full: ctxHosts,
		kind: scalar[*HostPort]{slot: func(t *Tx) **HostPort { return &t.LocalHost }, clone: clonePtr[HostPort], decode: ptr(decodeHostPort)}},
	{name: "mail_from", full: in(RestCreate, RestUpdate, DB, ExploderCreate, ExploderUpdate, AddRoute), placeholder: in(RestRead),
		kind: scalar[*Mailbox]{slot: func(t *Tx) **Mailbox { return &t.MailFrom }, clone: cloneMailboxPtr, decode: ptr(decodeMailbox)}},
	{name: "rcpt_to", full: in(RestCreate, RestUpdate, DB, AddRoute), placeholder: in(RestRead), offsets: in(RestUpdate),
		kind: list[Mailbox]{slot: func(t *Tx) *[]Mailbox { return &t.RcptTo }, off: func(t *Tx) *int { return &t.RcptToOffset }, clone: Mailbox.clone, decode: decodeMailbox}},
	{name: "body", full: in(RestRead, RestCreate, RestUpdate, ExploderCreate, ExploderUpdate, AddRoute),
		kind: scalar[Body]{slot: func(t *Tx) *Body { return &t.Body }, clone: cloneBody, grow: growBody, decode: decodeBody, encode: encodeBody}},
	{name: "smtp_meta", full: in(RestCreate, DB, ExploderCreate, AddRoute),
		kind: rawDict(func(t *Tx) *map[string]json.RawMessage { return &t.SMTPMeta })},
	{name: "notification", full: ctxDSN,
		kind: rawDict(func(t *Tx) *map[string]json.RawMessage { return &t.Notification })},
	{name: "retry", full: ctxDSN,
		kind: rawDict(func(t *Tx) *map[string]json.RawMessage { return &t.Retry })},
	{name: "attempt_count", full: in(RestRead),
		kind: scalar[int]{slot: func(t *Tx) *int { return &t.AttemptCount }, decode: noContext(decodeAttemptCount)}},
	{name: "mail_response", full: ctxReplies,
		kind: scalar[*Response]{slot: func(t *Tx) **Response { return &t.MailResponse }, clone: clonePtr[Response], decode: ptr(decodeResponse)}},
	{name: "rcpt_response", full: ctxReplies,
		kind: list[Response]{slot: func(t *Tx) *[]Response { return &t.RcptResponse }, off: func(t *Tx) *int { return &t.RcptResponseOffset }, decode: decodeResponse}},
	{name: "data_response", full: ctxReplies,
		kind: scalar[*Response]{slot: func(t *Tx) **Response { return &t.DataResponse }, clone: clonePtr[Response], decode: ptr(decodeResponse)}},
	{name: "cancelled", full: in(RestRead, DB, ExploderCreate, ExploderUpdate, AddRoute),
		kind: scalar[bool]{slot: func(t *Tx) *bool { return &t.Cancelled }, decode: noContext(readBool)}},
	{name: "final_attempt_reason", full: in(RestRead),
		kind: scalar[string]{slot: func(t *Tx) *string { return &t.FinalAttemptReason }, decode: noContext(decodeFinalReason), encode: encodeFinalReason}},
	{name: "filter_output", full: in(RestCreate, RestUpdate, DB, DBAttempt, AddRoute), echo: in(RestRead),
		kind: rawDict(func(t *Tx) *map[string]json.RawMessage { return &t.FilterOutput })},

	// In-process only: no context carries them, but deltas, merges and
	// copies do.
	{name: "rest_id", kind: scalar[string]{slot: func(t *Tx) *string { return &t.RestID }}},
	{name: "rest_endpoint", kind: scalar[string]{slot: func(t *Tx) *string { return &t.RestEndpoint }}},
	{name: "options", kind: scalar[map[string]any]{slot: func(t *Tx) *map[string]any { return &t.Options }, clone: maps.Clone[map[string]any]}},
	{name: "resolution", kind: scalar[[]HostPort]{slot: func(t *Tx) *[]HostPort { return &t.Resolution }, clone: slices.Clone[[]HostPort]}},
	{name: "session_uri", kind: scalar[string]{slot: func(t *Tx) *string { return &t.SessionURI }}},
	{name: "rest_upstream_sender", kind: scalar[*Sender]{slot: func(t *Tx) **Sender { return &t.RestUpstreamSender }, clone: clonePtr[Sender]}},
	{name: "ephemeral_filter_output", kind: dict[any]{slot: func(t *Tx) *map[string]any { return &t.EphemeralFilterOutput }}},
}

var fieldsByName = func() map[string]*field {
	m := map[string]*field{}
	for _, f := range fields {
		m[f.name] = f
	}
	return m
}()

func decodeAttemptCount(raw json.RawMessage, path string) (int, error) {
	n, err := readInt(raw, path, 1, 1<<31-1)
	return int(n), err
}

func decodeFinalReason(raw json.RawMessage, path string) (string, error) {
	s, err := readText(raw, path)
	switch {
	case err != nil:
		return "", err
	case s == "":
		return "", fieldErr(path, "must not be empty")
	case s == ReasonOneshot:
		return "", fieldErr(path, "%q is internal to Koukan", s)
	}
	return s, nil
}

// encodeFinalReason hides the internal "oneshot" marker.
func encodeFinalReason(s string, _ Context) (any, bool) { return s, s != ReasonOneshot }

func rawDict(slot func(*Tx) *map[string]json.RawMessage) dict[json.RawMessage] {
	return dict[json.RawMessage]{slot: slot, clone: cloneRaw, decode: readRawMap}
}

func cloneRaw(r json.RawMessage) json.RawMessage { return slices.Clone(r) }

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

func cloneMailboxPtr(m *Mailbox) *Mailbox {
	if m == nil {
		return nil
	}
	c := m.clone()
	return &c
}

// ptr adapts a value decoder to a pointer-valued field.
func ptr[T any](dec func(json.RawMessage, string) (T, error)) func(json.RawMessage, string, Context) (*T, error) {
	return func(raw json.RawMessage, path string, _ Context) (*T, error) {
		v, err := dec(raw, path)
		return &v, err
	}
}

// noContext adapts a decoder that does not depend on the context.
func noContext[T any](dec func(json.RawMessage, string) (T, error)) func(json.RawMessage, string, Context) (T, error) {
	return func(raw json.RawMessage, path string, _ Context) (T, error) { return dec(raw, path) }
}
