package dsn

import (
	"bytes"
	"strings"
	"time"
)

// report renders the message/delivery-status content (RFC 3464 §2): the
// per-message fields, then one block per recipient after an empty line.
// global reports that it must be labeled
// message/global-delivery-status (RFC 6533): a field holds UTF-8, or an
// address has the "utf-8" type, which only that form writes unescaped.
func (n *Notification) report() (content []byte, global bool) {
	var b fieldBuffer
	b.field("Reporting-MTA", "dns; "+n.ReportingMTA)
	if n.EnvelopeID != "" {
		b.field("Original-Envelope-Id", n.EnvelopeID)
	}
	if !n.Arrival.IsZero() {
		b.field("Arrival-Date", n.Arrival.Format(time.RFC1123Z))
	}
	for i := range n.Recipients {
		r := &n.Recipients[i]
		b.WriteString("\r\n")
		if r.ORCPT.Type != "" {
			b.field("Original-Recipient", r.ORCPT.Type+"; "+r.ORCPT.Address)
			global = global || r.ORCPT.Type == "utf-8"
		}
		b.field("Final-Recipient", addressType(r.Address)+"; "+r.Address)
		b.field("Action", r.Action.String())
		reply := clean(r.Reply)
		b.field("Status", r.status(reply))
		if r.RemoteMTA != "" {
			b.field("Remote-MTA", "dns; "+r.RemoteMTA)
		}
		if d := r.diagnostic(reply); d != "" {
			b.field("Diagnostic-Code", d)
		}
		if !r.LastAttempt.IsZero() {
			b.field("Last-Attempt-Date", r.LastAttempt.Format(time.RFC1123Z))
		}
		if r.Action == ActionDelayed && !r.WillRetryUntil.IsZero() {
			b.field("Will-Retry-Until", r.WillRetryUntil.Format(time.RFC1123Z))
		}
	}
	return b.Bytes(), global || !isASCII(b.Bytes())
}

// addressType is the RFC 3464 address type of an envelope address: "utf-8"
// (RFC 6533) when it has non-ASCII characters, else "rfc822".
func addressType(addr string) string {
	if isASCII([]byte(addr)) {
		return "rfc822"
	}
	return "utf-8"
}

// fieldBuffer collects header-style fields.
type fieldBuffer struct{ bytes.Buffer }

// field writes "name: value" with the value cleaned and folded.
func (b *fieldBuffer) field(name, value string) {
	b.WriteString(strings.Join(wrap(name+": "+clean(value), lineWidth), "\r\n "))
	b.WriteString("\r\n")
}
