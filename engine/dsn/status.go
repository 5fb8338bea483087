package dsn

import (
	"regexp"
	"strconv"
)

// enhancedCode matches an RFC 3463 status code at the start of reply text,
// where RFC 2034 servers put it, followed by a space or the end.
var enhancedCode = regexp.MustCompile(`^([245])(\.[0-9]{1,3}\.[0-9]{1,3})(?: |$)`)

// smtpReply reports whether code is a final SMTP reply code, so that its
// text came from an SMTP server. Others (none at all, Koukan's internal 600)
// carry no diagnostic to show the sender.
func smtpReply(code int) bool {
	return code >= 200 && code <= 599 && code/100 != 3
}

// status is the Status field for a recipient whose cleaned reply text is
// reply: the enhanced code at its start when the class agrees with the
// reply code, otherwise X.0.0 with the reply code's class; without an SMTP
// reply, X.0.0 with the class its action implies.
func (r *Recipient) status(reply string) string {
	if !smtpReply(r.Code) {
		return actionClass(r.Action) + ".0.0"
	}
	class := strconv.Itoa(r.Code / 100)
	if m := enhancedCode.FindStringSubmatch(reply); m != nil && m[1] == class {
		return m[1] + m[2]
	}
	return class + ".0.0"
}

// actionClass is the status class an action implies.
func actionClass(a Action) string {
	switch a {
	case ActionDelivered, ActionRelayed:
		return "2"
	case ActionFailed:
		return "5"
	}
	return "4"
}

// diagnostic is the Diagnostic-Code value for a recipient whose cleaned
// reply text is reply, "smtp; 550 5.1.1 no such user", or "" without an SMTP
// reply.
func (r *Recipient) diagnostic(reply string) string {
	if !smtpReply(r.Code) {
		return ""
	}
	d := "smtp; " + strconv.Itoa(r.Code)
	if reply != "" {
		d += " " + reply
	}
	return d
}
