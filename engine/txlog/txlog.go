// Package txlog is what log lines say of a transaction beyond its id: the domains it goes to
// and the reply that decided it, never whom it is for or what it says. The router's
// "attempt finished" line and the gateway's "transaction ended" line both use it, so that
// they read alike and an operator can follow a message from one to the other.
package txlog

import (
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/koukan/koukan/engine/addr"
	"github.com/koukan/koukan/engine/tx"
)

// MaxDomains bounds the domains a line names (an exploder parent may have many); MaxText
// the bytes of a reply's text (a peer's may run to kilobytes).
const (
	MaxDomains = 10
	MaxText    = 200
)

// Domains lists the recipients' domains in lower-case A-labels (as the admin API indexes
// them), each once, in order; past MaxDomains a last entry says how many more there are.
func Domains(rcpts []tx.Mailbox) []string {
	var out []string
	more := map[string]bool{}
	for _, r := range rcpts {
		switch d := addr.DomainOf(r.Address); {
		case d == "" || slices.Contains(out, d):
		case len(out) == MaxDomains:
			more[d] = true
		default:
			out = append(out, d)
		}
	}
	if len(more) > 0 {
		out = append(out, "(and "+strconv.Itoa(len(more))+" more)")
	}
	return out
}

// Deciding is the next hop's reply that decided a transaction: a refusal of MAIL, of the
// only or every recipient, else the reply to the message; while that has not come, the
// first refusal of a recipient or the reply to MAIL. Nil before any reply.
func Deciding(t *tx.Tx) *tx.Response {
	if m := t.MailResponse; m == nil || !m.Ok() {
		return m
	}
	refused := slices.IndexFunc(t.RcptResponse, tx.Response.Err)
	switch {
	case refused == 0 && !slices.ContainsFunc(t.RcptResponse, tx.Response.Ok):
		return &t.RcptResponse[0]
	case t.DataResponse != nil:
		return t.DataResponse
	case refused >= 0:
		return &t.RcptResponse[refused]
	}
	return t.MailResponse
}

// enhancedCode is an RFC 3463 status code at the start of a reply's text.
var enhancedCode = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}(?: +|$)`)

// localPart is the part before the @ of an address in free text: peers often repeat the
// recipient in their replies ("<bob@example.com>: Recipient address rejected").
var localPart = regexp.MustCompile(`[^\s<>()\[\]"',;:]+@`)

// Reply is t's deciding reply as a log group: code, enhanced status code and text, the
// text without the local parts of addresses and cut to MaxText bytes. An empty group,
// which slog leaves out, when there is none.
func Reply(t *tx.Tx) slog.Value {
	r := Deciding(t)
	if r == nil {
		return slog.GroupValue()
	}
	text := r.Message
	enh := enhancedCode.FindString(text)
	text = localPart.ReplaceAllString(text[len(enh):], "*@")
	if len(text) > MaxText {
		cut := MaxText
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "..."
	}
	return slog.GroupValue(slog.Int("code", r.Code), slog.String("enhanced", strings.TrimSpace(enh)), slog.String("message", text))
}
