package rest

import (
	"context"
	"errors"
	"strconv"
	"strings"
)

// Kind says what went wrong with a request, which is what a caller needs to
// pick an SMTP reply: whether the upstream answered at all, and if so how.
type Kind int

const (
	// KindLocal: the request could not be made on our side (a malformed
	// URL, a reader given to PutBlob that failed or ended early).
	KindLocal Kind = iota + 1
	// KindTransport: no HTTP answer (connection refused or reset, TLS or
	// DNS failure).
	KindTransport
	// KindTimeout: the context's deadline passed first.
	KindTimeout
	// KindCanceled: the context was canceled.
	KindCanceled
	// KindStatus: the upstream answered with a status the operation does
	// not accept; Status and Problem say which.
	KindStatus
	// KindConflict: a PATCH got 412, someone else wrote the transaction;
	// the Tx has been read again.
	KindConflict
	// KindProtocol: the answer breaks the API contract (no ETag, JSON that
	// is not a transaction or does not extend the previous one, a bad
	// Content-Range, an upload that does not progress).
	KindProtocol
)

var kindText = map[Kind]string{
	KindLocal:     "request error",
	KindTransport: "connection failed",
	KindTimeout:   "timeout",
	KindCanceled:  "cancelled",
	KindStatus:    "http status",
	KindConflict:  "update conflict",
	KindProtocol:  "protocol error",
}

func (k Kind) String() string {
	if s, ok := kindText[k]; ok {
		return s
	}
	return "unknown error"
}

// Error is every error this package returns.
type Error struct {
	Op      string // the operation: "create", "update", "read", "wait", "put blob", "message builder", "cancel"
	Kind    Kind
	Status  int    // the HTTP status, when the upstream answered
	Problem string // the problem code of the upstream's error body ("version_conflict"), when it sent one
	Err     error  // the cause, for the log only
}

// Safe is a short description for a peer such as an SMTP client, e.g.
// "create: http status 503 (internal_error)". It is made only of the
// operation, the kind, the status and a sanitized problem code, never of Go
// error text or anything else the upstream sent.
func (e *Error) Safe() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(e.Kind.String())
	if e.Kind == KindStatus {
		b.WriteString(" ")
		b.WriteString(strconv.Itoa(e.Status))
	}
	if e.Problem != "" {
		b.WriteString(" (" + e.Problem + ")")
	}
	return b.String()
}

// Error is Safe plus the cause, for the log.
func (e *Error) Error() string {
	s := "rest: " + e.Safe()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// failure builds an *Error for an error that came out of making a request,
// telling a context that ended apart from a transport that failed.
func failure(ctx context.Context, op string, err error) *Error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &Error{Op: op, Kind: KindTimeout, Err: err}
	case ctx.Err() != nil:
		return &Error{Op: op, Kind: KindCanceled, Err: err}
	}
	return &Error{Op: op, Kind: KindTransport, Err: err}
}

func protocolError(op string, err error) *Error {
	return &Error{Op: op, Kind: KindProtocol, Err: err}
}

// problemCode keeps a problem code only if it looks like one (a short
// snake_case token), since Safe repeats it to peers.
func problemCode(s string) string {
	if len(s) == 0 || len(s) > 40 {
		return ""
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return ""
		}
	}
	return s
}
