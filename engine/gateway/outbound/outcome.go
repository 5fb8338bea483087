package outbound

import (
	"context"
	"errors"
	"github.com/koukan/koukan/engine/metrics"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/koukan/koukan/engine/tx"
)

// maxText bounds the text of a response taken from a peer's reply.
const maxText = 400

var (
	// errShutdown is what a transaction in flight gets when the server closes.
	errShutdown = errors.New("gateway shutting down")
	// errInternal is a failure of the gateway itself (a panic).
	errInternal = errors.New("internal error")
)

// outcome is the one place where what happened on the SMTP side becomes a response the
// router reads: the peer's reply to op (r, when the exchange completed), or the failure that
// kept it from completing (err). want is the reply code op expects on success (250 for MAIL,
// 354 for DATA); a reply that is neither that nor a 4xx or 5xx is a protocol error.
//
// The peer's replies go through as they are (with an enhanced code added when the peer gave
// none), since reporting the remote server's real answer is what the router is for. Every
// other failure gets a fixed text that names the phase and, for connects, the address; the
// Go error goes only to the log.
func outcome(op string, want int, r *reply, err error, txID string) tx.Response {
	resp := translate(op, want, r, err, txID)
	metrics.SMTPReplies.WithLabelValues("outbound", metrics.Class(resp.Code)).Inc()
	return resp
}

// translate is outcome without the counting.
func translate(op string, want int, r *reply, err error, txID string) tx.Response {
	if err == nil && r != nil {
		switch {
		case r.code == want, r.class() == 2 && want/100 == 2, r.class() == 4, r.class() == 5:
			return fromReply(r)
		}
		return temp("4.5.0", "unexpected reply "+strconv.Itoa(r.code)+" from the next hop to "+op)
	}
	var (
		ce *connectError
		te *tlsError
		re *replyError
		pe *protocolError
		ie *ioError
	)
	if errors.As(err, &ie) {
		op = ie.op
	}
	switch {
	case errors.Is(err, errShutdown):
		return temp("4.3.2", "the gateway is shutting down; try again")
	case errors.As(err, &re):
		return fromReply(re.r)
	case errors.As(err, &ce):
		switch {
		case isTimeout(ce.err):
			return temp("4.4.1", "connection to "+ce.addr+" timed out")
		case errors.Is(ce.err, syscall.ECONNREFUSED):
			return temp("4.4.1", "connection to "+ce.addr+" refused")
		}
		return temp("4.4.1", "cannot connect to "+ce.addr)
	case errors.As(err, &te):
		switch te.kind {
		case tlsNotOffered:
			return temp("4.7.4", "TLS is required but the next hop does not offer STARTTLS")
		case tlsRefused:
			return temp("4.7.4", "TLS is required but the next hop refused STARTTLS")
		case tlsUnverified:
			return temp("4.7.5", "the next hop's TLS certificate did not verify")
		}
		return temp("4.7.5", "TLS handshake with the next hop failed")
	case errors.As(err, &pe):
		return temp("4.5.0", "protocol error from the next hop during "+op)
	case isTimeout(err):
		return temp("4.4.2", "timeout waiting for the next hop during "+op)
	case isConnLost(err):
		return temp("4.4.2", "connection to the next hop lost during "+op)
	}
	return temp("4.3.0", "internal error (transaction "+txID+")")
}

func temp(enh, text string) tx.Response { return tx.Response{Code: 451, Message: enh + " " + text} }

// fromReply is a peer's reply as a response: its code, its enhanced code (or the class's
// undefined one, X.0.0), and its text made safe to repeat.
func fromReply(r *reply) tx.Response {
	enh := r.enh
	if enh == "" {
		enh = strconv.Itoa(r.class()) + ".0.0"
	}
	text := cleanText(r.text())
	if text == "" {
		text = tx.DefaultMessage(r.code)
	}
	return tx.Response{Code: r.code, Message: enh + " " + text}
}

// cleanText keeps a peer's text printable and short: it ends up in JSON, in logs, and in the
// reply line of another SMTP server.
func cleanText(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c == utf8.RuneError, !unicode.IsPrint(c) && c != ' ':
			b.WriteByte(' ')
		default:
			b.WriteRune(c)
		}
		if b.Len() > maxText {
			return strings.TrimSpace(b.String()) + "..."
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

func isConnLost(err error) bool {
	var oe *net.OpError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.As(err, &oe)
}
