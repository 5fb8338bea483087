package dsn

import (
	"bytes"
	"strconv"
	"strings"
	"time"
)

// intro opens the paragraph listing the recipients with each action.
var intro = map[Action]string{
	ActionFailed:    "Your message could not be delivered to these recipients:",
	ActionDelayed:   "Your message has not been delivered yet to these recipients. The mail system will keep trying; you do not need to send it again.",
	ActionDelivered: "Your message was delivered to these recipients:",
	ActionRelayed:   "Your message was passed on to the mail systems of these recipients, which will not report its delivery:",
}

// text renders the human-readable part: each recipient grouped by action,
// with the reply that decided it. returned names what the third part holds
// ("" when there is none).
func (n *Notification) text(returned string) []byte {
	var b bytes.Buffer
	paragraph := func(s string) {
		b.WriteString(strings.Join(wrap(clean(s), lineWidth), "\r\n"))
		b.WriteString("\r\n\r\n")
	}
	indented := func(s string) {
		for _, l := range wrap(clean(s), lineWidth-4) {
			b.WriteString("    " + l + "\r\n")
		}
	}
	paragraph("This is the mail system at " + n.ReportingMTA + ".")
	for a := ActionFailed; a.valid(); a++ {
		if !n.has(a) {
			continue
		}
		paragraph(intro[a])
		for _, r := range n.Recipients {
			if r.Action != a {
				continue
			}
			b.WriteString("  " + clean(r.Address) + "\r\n")
			if smtpReply(r.Code) {
				said := strconv.Itoa(r.Code) + " " + r.Reply
				if r.RemoteMTA != "" {
					said = r.RemoteMTA + " said: " + said
				}
				indented(said)
			} else {
				indented("No details from the receiving server.")
			}
			if a == ActionDelayed && !r.WillRetryUntil.IsZero() {
				indented("Will retry until " + r.WillRetryUntil.Format(time.RFC1123Z) + ".")
			}
		}
		b.WriteString("\r\n")
	}
	closing := "The delivery report for each recipient is attached"
	if returned != "" {
		closing += ", with " + returned
	}
	paragraph(closing + ".")
	return bytes.TrimSuffix(b.Bytes(), []byte("\r\n"))
}
