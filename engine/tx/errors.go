package tx

import "fmt"

// FieldError reports a JSON document that is well-formed but not a valid
// transaction (or part of one). Its text is meant for the API client.
type FieldError struct {
	Field  string // path of the offending value, e.g. "rcpt_to[1].m"; empty for the whole document
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// SyntaxError reports input that is not JSON at all.
type SyntaxError struct {
	Offset int64 // bytes read up to and including the offending one
	Reason string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Reason)
}

// ConflictError reports a delta that does not extend the transaction it is
// compared with or applied to: a write-once value changed, a list shrank or
// was appended at the wrong offset, a dict key vanished, the body was swapped.
// The REST layer answers it with 409; the client's view is stale or wrong.
type ConflictError struct {
	Field  string
	Reason string
}

func (e *ConflictError) Error() string { return e.Field + ": " + e.Reason }

func fieldErr(path, format string, args ...any) *FieldError {
	return &FieldError{Field: path, Reason: fmt.Sprintf(format, args...)}
}

func conflict(field, format string, args ...any) *ConflictError {
	return &ConflictError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
