package dsn

import (
	"fmt"
	"strings"
)

// Notify is the NOTIFY parameter of one RCPT (RFC 3461 §4.1). The zero value
// means the parameter was absent.
type Notify uint8

const (
	// NotifyNever asks for no DSN at all; it never combines with the others.
	NotifyNever Notify = 1 << iota
	NotifySuccess
	NotifyFailure
	NotifyDelay
)

// defaultNotify is what an absent NOTIFY means. RFC 3461 §4.1 lets the MTA
// choose FAILURE or FAILURE,DELAY; we allow delay warnings, and whether to
// send them at all is the caller's policy.
const defaultNotify = NotifyFailure | NotifyDelay

// ParseNotify parses a NOTIFY value: NEVER alone, or a comma-separated list
// of SUCCESS, FAILURE and DELAY. Keywords are case-insensitive.
func ParseNotify(value string) (Notify, error) {
	if strings.EqualFold(value, "NEVER") {
		return NotifyNever, nil
	}
	var n Notify
	for kw := range strings.SplitSeq(value, ",") {
		switch strings.ToUpper(kw) {
		case "SUCCESS":
			n |= NotifySuccess
		case "FAILURE":
			n |= NotifyFailure
		case "DELAY":
			n |= NotifyDelay
		case "NEVER":
			return 0, fmt.Errorf("dsn: NOTIFY=%s: NEVER must stand alone", value)
		default:
			return 0, fmt.Errorf("dsn: NOTIFY=%s: unknown keyword %q", value, kw)
		}
	}
	return n, nil
}

// Wants reports whether a recipient whose RCPT had NOTIFY n asked for a DSN
// with action a. Relayed counts as success: it is the DSN an MTA sends
// instead of "delivered" when the next hop cannot report delivery.
func Wants(n Notify, a Action) bool {
	if n&NotifyNever != 0 {
		return false
	}
	if n == 0 {
		n = defaultNotify
	}
	switch a {
	case ActionFailed:
		return n&NotifyFailure != 0
	case ActionDelayed:
		return n&NotifyDelay != 0
	case ActionDelivered, ActionRelayed:
		return n&NotifySuccess != 0
	}
	return false
}

// ShouldNotify reports whether to send a DSN with action a for a recipient
// with NOTIFY n of a message whose MAIL FROM was mailFrom. Never to the null
// reverse-path "": that message was itself a notification.
func ShouldNotify(mailFrom string, n Notify, a Action) bool {
	return mailFrom != "" && Wants(n, a)
}

// Ret is the RET parameter of MAIL (RFC 3461 §4.3): how much of the message
// a failure DSN returns. The zero value, also what an absent RET means here,
// is the header section only.
type Ret uint8

const (
	RetHeaders Ret = iota
	RetFull
)

// ParseRet parses a RET value, HDRS or FULL, case-insensitively.
func ParseRet(value string) (Ret, error) {
	switch strings.ToUpper(value) {
	case "HDRS":
		return RetHeaders, nil
	case "FULL":
		return RetFull, nil
	}
	return 0, fmt.Errorf("dsn: RET=%s: want HDRS or FULL", value)
}
