package dsn

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
)

// header is the DSN's top-level header. Fields are prepended, so they are
// set here from the last to the first.
func (n *Notification) header(orig *original) message.Header {
	var h mail.Header
	boundary := n.Boundary
	if boundary == "" {
		boundary = randomHex()
	}
	h.SetContentType("multipart/report", map[string]string{
		"report-type": "delivery-status",
		"boundary":    boundary,
	})
	// AddRaw keeps the conventional spelling of these two names, which Set
	// would canonicalize to Mime-Version and Message-Id; check vetted the id.
	h.AddRaw([]byte("MIME-Version: 1.0\r\n"))
	h.Set("Auto-Submitted", "auto-replied") // RFC 3834: do not answer this
	if orig != nil && orig.messageID != "" {
		h.SetMsgIDList("References", []string{orig.messageID})
		h.SetMsgIDList("In-Reply-To", []string{orig.messageID})
	}
	h.SetSubject(n.subject())
	id := n.MessageID
	if id == "" {
		id = randomHex() + "@" + n.ReportingMTA
	}
	h.AddRaw([]byte("Message-ID: <" + id + ">\r\n"))
	date := n.Date
	if date.IsZero() {
		date = time.Now()
	}
	h.SetDate(date)
	h.SetAddressList("To", []*mail.Address{{Address: n.To}})
	from := n.From
	if from.Address == "" {
		from = mail.Address{Name: "Mail Delivery Subsystem", Address: "mailer-daemon@" + n.ReportingMTA}
	}
	h.SetAddressList("From", []*mail.Address{&from})
	return h.Header
}

// subject names the gravest action reported.
func (n *Notification) subject() string {
	switch {
	case n.has(ActionFailed):
		return "Delivery Status Notification (Failure)"
	case n.has(ActionDelayed):
		return "Delivery Status Notification (Delay)"
	}
	return "Delivery Status Notification (Success)"
}

// randomHex returns 128 random bits as 32 hex digits.
func randomHex() string {
	b := make([]byte, 16)
	rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
