package dsn

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
)

// Notification is one DSN to build: who reports, to whom, about which
// recipients of which message.
type Notification struct {
	// ReportingMTA is this MTA's host name, for Reporting-MTA and for
	// generated Message-IDs and From. Required.
	ReportingMTA string
	// From is the DSN's author. Zero means
	// "Mail Delivery Subsystem <mailer-daemon@ReportingMTA>".
	From mail.Address
	// To is the DSN's recipient: the original MAIL FROM. Required; the
	// null reverse-path gets no DSN. Send the DSN itself with MAIL FROM:<>.
	To string
	// EnvelopeID is the original MAIL's ENVID, decoded (DecodeXtext); ""
	// omits Original-Envelope-Id.
	EnvelopeID string
	// Arrival is when the original message was received; zero omits
	// Arrival-Date.
	Arrival time.Time
	// Date is the DSN's Date; zero means now.
	Date time.Time
	// MessageID is the DSN's Message-ID without angle brackets; "" means 32
	// random hex digits @ReportingMTA.
	MessageID string
	// Boundary is the multipart boundary; "" means a random one. Fix it only
	// for reproducible output.
	Boundary string
	// Recipients are reported in order, one status block each. At least one.
	Recipients []Recipient
	// Original is the original message, read once from its start and not
	// closed; nil omits the third part.
	Original io.Reader
	// Ret is the original MAIL's RET. The whole message is returned only for
	// RetFull in a DSN reporting a failure; delay and success DSNs, like
	// RetHeaders, return its header section.
	Ret Ret
}

// Recipient is what happened to one recipient of the original message.
type Recipient struct {
	// ORCPT is the RCPT's ORCPT (ParseORCPT), reported as
	// Original-Recipient; zero when the RCPT had none, which omits the
	// field: it reports the address as the sender gave it, if it did.
	ORCPT TypedAddress
	// Address is the RCPT TO address, reported as Final-Recipient.
	Address string
	Action  Action
	// Code and Reply are the last SMTP reply for this recipient, 550 and
	// "5.1.1 no such user". Status is the enhanced code at the start of Reply
	// or X.0.0 by Code's class; Diagnostic-Code is the whole reply. A Code
	// that is not a final SMTP reply code (0 for none, Koukan's internal
	// 600) gives X.0.0 by Action and no diagnostic: its text is not a
	// remote reply and is not shown to the sender.
	Code  int
	Reply string
	// RemoteMTA is the host name of the server that sent Reply; "" omits
	// Remote-MTA.
	RemoteMTA string
	// LastAttempt is when delivery was last tried; zero omits
	// Last-Attempt-Date.
	LastAttempt time.Time
	// WillRetryUntil is when a delayed recipient will be given up; zero, or
	// any Action but ActionDelayed, omits Will-Retry-Until.
	WillRetryUntil time.Time
}

// Build writes n as a multipart/report message with CRLF line ends to w:
// a text/plain explanation, the delivery status report, and the original
// message or its header section. It reads n.Original as it writes.
func Build(w io.Writer, n Notification) error {
	if err := n.check(); err != nil {
		return err
	}
	var orig *original
	if n.Original != nil {
		var err error
		if orig, err = readOriginal(n.Original); err != nil {
			return err
		}
	}
	bw := bufio.NewWriter(w)
	mw, err := message.CreateWriter(bw, n.header(orig))
	if err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	full := n.Ret == RetFull && n.has(ActionFailed)
	if err := n.writeParts(mw, orig, full); err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	if err := mw.Close(); err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	return nil
}

func (n *Notification) writeParts(mw *message.Writer, orig *original, full bool) error {
	returned := ""
	switch {
	case orig != nil && full:
		returned = "your message"
	case orig != nil:
		returned = "the header section of your message"
	}
	text := n.text(returned)
	th := partHeader("text/plain", map[string]string{"charset": "utf-8"}, !isASCII(text))
	if err := writePart(mw, th, bytesBody(text)); err != nil {
		return err
	}
	report, global := n.report()
	reportType := "message/delivery-status"
	if global {
		reportType = "message/global-delivery-status"
	}
	if err := writePart(mw, partHeader(reportType, nil, global), bytesBody(report)); err != nil {
		return err
	}
	if orig == nil {
		return nil
	}
	typ, body := "text/rfc822-headers", bytesBody(orig.header)
	if orig.utf8 {
		typ = "message/global-headers"
	}
	if full {
		typ, body = "message/rfc822", orig.writeFull
		if orig.utf8 {
			typ = "message/global"
		}
	}
	return writePart(mw, partHeader(typ, nil, orig.utf8), body)
}

func (n *Notification) has(a Action) bool {
	return slices.ContainsFunc(n.Recipients, func(r Recipient) bool { return r.Action == a })
}

func (n *Notification) check() error {
	switch {
	case n.To == "":
		return errors.New("dsn: no DSN goes to the null reverse-path")
	case strings.ContainsFunc(n.To, unicode.IsControl):
		return fmt.Errorf("dsn: To %q has control characters", n.To)
	case !isToken(n.ReportingMTA):
		return fmt.Errorf("dsn: ReportingMTA %q is not a host name", n.ReportingMTA)
	case n.MessageID != "" && !isToken(n.MessageID):
		return fmt.Errorf("dsn: MessageID %q is not a msg-id without brackets", n.MessageID)
	case len(n.Recipients) == 0:
		return errors.New("dsn: no recipients to report")
	}
	for i, r := range n.Recipients {
		if !r.Action.valid() || r.Address == "" {
			return fmt.Errorf("dsn: recipient %d needs an address and a valid action", i)
		}
	}
	return nil
}

// isToken reports whether s is non-empty and free of white space, control
// characters and angle brackets: safe inside <...> on a header line.
func isToken(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == '<' || r == '>'
	})
}

// partHeader is a body part's header: its type and, for 8-bit content, the
// 8bit transfer encoding (content is never re-encoded).
func partHeader(mediaType string, params map[string]string, eightBit bool) message.Header {
	var h message.Header
	if eightBit {
		h.Set("Content-Transfer-Encoding", "8bit")
	}
	h.SetContentType(mediaType, params)
	return h
}

func writePart(mw *message.Writer, h message.Header, body func(io.Writer) error) error {
	pw, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if err := body(pw); err != nil {
		return err
	}
	return pw.Close()
}

func bytesBody(b []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}
}
