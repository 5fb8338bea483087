package inbound

import (
	"context"
	"errors"
	"fmt"
	"github.com/koukan/koukan/engine/metrics"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/koukan/koukan/engine/rest"
	"github.com/koukan/koukan/engine/tx"
)

// reply is an outcome with its SMTP meaning: the code, enhanced code and
// text the client gets, and, for the log only, what caused it. Everything
// the session decides itself, and every answer of the router, is a reply;
// any other error is translated by answer.
type reply struct {
	code  int
	enh   smtp.EnhancedCode
	text  string // safe to show the client
	cause error  // for the log; may be nil
}

func (r *reply) Error() string {
	s := fmt.Sprintf("%d %d.%d.%d %s", r.code, r.enh[0], r.enh[1], r.enh[2], r.text)
	if r.cause != nil {
		s += ": " + r.cause.Error()
	}
	return s
}

func (r *reply) Unwrap() error { return r.cause }

func newReply(code int, enh smtp.EnhancedCode, text string, cause error) *reply {
	return &reply{code: code, enh: enh, text: text, cause: cause}
}

// phase is the command a reply answers; it picks default enhanced codes
// and whether a rejection counts towards MaxErrors.
type phase int

const (
	phaseMail phase = iota + 1
	phaseRcpt
	phaseData
	phaseAuth
	phaseGreeting
)

func (p phase) String() string {
	switch p {
	case phaseMail:
		return "MAIL"
	case phaseRcpt:
		return "RCPT"
	case phaseData:
		return "DATA"
	case phaseAuth:
		return "AUTH"
	case phaseGreeting:
		return "EHLO"
	}
	return "?"
}

// counts reports whether rejections of p count towards MaxErrors: those
// are what a client probing for addresses or secrets collects. A rejected
// message does not count: turning its 5xx into a 421 would make the client
// send it again.
func (p phase) counts() bool { return p == phaseMail || p == phaseRcpt || p == phaseAuth }

// answer is the one place where an outcome becomes what the SMTP client
// hears. go-smtp writes the text of any error that is not an
// *smtp.SMTPError, so nothing else may reach it:
//
//   - a *reply (the router's answer, or the session's own decision) is sent
//     as it is;
//   - a deadline (ours, or a REST call's) is 451 4.4.5;
//   - the router's storage full (507) is 451 4.3.1;
//   - anything else (the router unreachable, a protocol error) is 451 4.3.0
//     with the rest package's safe description and the transaction id, so
//     that the client's report can be found in the log.
//
// It logs the cause, counts rejections towards MaxErrors and turns the
// one past it into 421 4.7.0, which ends the connection.
func (s *session) answer(p phase, id string, err error) error {
	if err == nil {
		return nil
	}
	log := s.log.With("phase", p.String())
	if id != "" {
		log = log.With("tx", id)
	}
	r, ok := errors.AsType[*reply](err)
	if !ok {
		restErr, isRest := errors.AsType[*rest.Error](err)
		switch {
		case isRest && restErr.Kind == rest.KindTimeout, errors.Is(err, context.DeadlineExceeded):
			r = newReply(451, smtp.EnhancedCode{4, 4, 5}, "Timed out waiting for the router, transaction "+id, err)
		case isRest && restErr.Status == http.StatusInsufficientStorage:
			r = newReply(451, smtp.EnhancedCode{4, 3, 1}, "Mail system full, try again later, transaction "+id, err)
		case isRest:
			r = newReply(451, smtp.EnhancedCode{4, 3, 0}, "Temporary failure ("+restErr.Safe()+"), transaction "+id, err)
		default:
			r = newReply(451, smtp.EnhancedCode{4, 3, 0}, "Temporary failure, transaction "+id, err)
		}
		log.Warn("inbound: upstream failure", "reply", r.code, "err", err)
	} else if r.cause != nil {
		log.Info("inbound: rejected", "reply", r.code, "text", r.text, "err", r.cause)
	} else if r.code >= 400 {
		log.Info("inbound: rejected", "reply", r.code, "text", r.text)
	}

	if r.code >= 400 {
		s.refused.Add(1)
	}
	if r.code >= 400 && p.counts() && s.srv.cfg.MaxErrors > 0 {
		if n := s.nc.errors.Add(1); n > int64(s.srv.cfg.MaxErrors) {
			log.Warn("inbound: too many errors, closing the connection", "errors", n)
			r = tooManyErrors(r)
		}
	}
	if r.code == 421 {
		// Whatever the client pipelined after this command is not read.
		s.nc.closeAfterReply()
	}
	return &smtp.SMTPError{Code: r.code, EnhancedCode: r.enh, Message: r.text}
}

func tooManyErrors(last *reply) *reply {
	return newReply(421, smtp.EnhancedCode{4, 7, 0}, fmt.Sprintf("Too many errors, closing the connection (last: %d %d.%d.%d %s)",
		last.code, last.enh[0], last.enh[1], last.enh[2], last.text), nil)
}

// enhancedRE is an RFC 3463 code at the start of a reply text.
var enhancedRE = regexp.MustCompile(`^([245])\.([0-9]{1,3})\.([0-9]{1,3})(?:[ \t]+|$)`)

// maxReplyText keeps a reply line within RFC 5321's 512 octets.
const maxReplyText = 400

// upstreamReply checks that the router's response is an SMTP reply and
// makes it one the client can be given: a 2xx, 4xx or 5xx code (internal
// codes such as 600 never reach a client), an enhanced code of the same
// class (from the text if it starts with one, else X.0.0 or the usual one
// for the phase), and one line of printable ASCII text, not too long, so
// that the router cannot put a line break or a second reply into the
// stream.
func upstreamReply(resp tx.Response, p phase) (*reply, error) {
	class := resp.Code / 100
	if resp.Code < 200 || resp.Code > 599 || class == 3 {
		return nil, fmt.Errorf("the router answered %s with code %d, not an SMTP reply code", p, resp.Code)
	}
	enh := defaultEnhanced(class, p)
	text := resp.Message
	if m := enhancedRE.FindStringSubmatch(text); m != nil {
		subject, _ := strconv.Atoi(m[2])
		detail, _ := strconv.Atoi(m[3])
		// A class that contradicts the code is the code's mistake to
		// correct, not ours to pass on: clients act on the class.
		enh = smtp.EnhancedCode{class, subject, detail}
		text = text[len(m[0]):]
	}
	text = replyText(text)
	if text == "" {
		text = tx.DefaultMessage(resp.Code)
	}
	metrics.SMTPReplies.WithLabelValues("inbound", metrics.Class(resp.Code)).Inc()
	return newReply(resp.Code, enh, text, nil), nil
}

func defaultEnhanced(class int, p phase) smtp.EnhancedCode {
	switch {
	case class == 2 && p == phaseMail:
		return smtp.EnhancedCode{2, 1, 0}
	case class == 2 && p == phaseRcpt:
		return smtp.EnhancedCode{2, 1, 5}
	}
	return smtp.EnhancedCode{class, 0, 0}
}

// replyText makes s one line of printable ASCII of bounded length.
func replyText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < ' ' || r == 0x7f:
			b.WriteByte(' ')
		case r > '~':
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
		if b.Len() >= maxReplyText {
			b.WriteString("...")
			break
		}
	}
	return strings.TrimSpace(b.String())
}
