package outbound

import (
	"strconv"
	"strings"

	"github.com/koukan/koukan/engine/tx"
)

// This file decides which ESMTP parameters of the router's MAIL and RCPT go to the peer,
// given what the peer said in EHLO. The rules and their reasons are in the package comment.

// mailPlan is what MAIL will say, and what follows from it for the rest of the transaction.
type mailPlan struct {
	params []string
	// utf8: SMTPUTF8 was sent, so recipients may be internationalized.
	utf8 bool
	// binary: BODY=BINARYMIME was sent, so the message must go by BDAT.
	binary bool
}

func reject(code int, text string) *tx.Response { return &tx.Response{Code: code, Message: text} }

// planMail checks the sender's parameters against the peer. A non-nil response refuses MAIL
// without sending it.
func planMail(mb tx.Mailbox, s *session) (mailPlan, *tx.Response) {
	var p mailPlan
	if r := checkAddress(mb.Address); r != nil {
		return p, r
	}
	seen := map[string]bool{}
	for _, e := range mb.Esmtp {
		kw := strings.ToUpper(e.Keyword)
		if seen[kw] {
			return p, reject(501, "5.5.4 duplicate MAIL parameter "+kw)
		}
		seen[kw] = true
		switch kw {
		case "SIZE":
			n, err := strconv.ParseUint(e.Value, 10, 63)
			if err != nil {
				return p, reject(501, "5.5.4 SIZE must be a number of bytes")
			}
			lim, has := s.ext["SIZE"]
			if !has {
				continue // advisory: the peer checks the real size at the end of data
			}
			if limit, err := strconv.ParseUint(lim, 10, 63); err == nil && limit > 0 && n > limit {
				return p, reject(552, "5.3.4 message size exceeds the limit of the next hop ("+lim+" bytes)")
			}
			p.params = append(p.params, "SIZE="+e.Value)
		case "BODY":
			switch v := strings.ToUpper(e.Value); v {
			case "7BIT":
				if s.has("8BITMIME") { // a peer without 8BITMIME may not know BODY at all
					p.params = append(p.params, "BODY=7BIT")
				}
			case "8BITMIME":
				if !s.has("8BITMIME") {
					return p, reject(550, "5.6.3 the next hop does not accept 8-bit messages (8BITMIME) and the gateway does not convert")
				}
				p.params = append(p.params, "BODY=8BITMIME")
			case "BINARYMIME":
				if !s.has("BINARYMIME") || !s.has("CHUNKING") {
					return p, reject(550, "5.6.3 the next hop does not accept binary messages (BINARYMIME) and the gateway does not convert")
				}
				p.params = append(p.params, "BODY=BINARYMIME")
				p.binary = true
			default:
				return p, reject(501, "5.5.4 unknown BODY value")
			}
		case "SMTPUTF8":
			if e.Value != "" {
				return p, reject(501, "5.5.4 SMTPUTF8 takes no value")
			}
			p.utf8 = true
		case "RET":
			if v := strings.ToUpper(e.Value); v != "FULL" && v != "HDRS" {
				return p, reject(501, "5.5.4 RET must be FULL or HDRS")
			}
			if s.has("DSN") {
				p.params = append(p.params, "RET="+strings.ToUpper(e.Value))
			}
		case "ENVID":
			if e.Value == "" {
				return p, reject(501, "5.5.4 ENVID needs a value")
			}
			if s.has("DSN") {
				p.params = append(p.params, "ENVID="+e.Value)
			}
		case "AUTH":
			// The gateway does not authenticate to the peer, so it has no identity to vouch for.
		case "REQUIRETLS":
			if !s.has("REQUIRETLS") || !s.verified {
				return p, reject(550, "5.7.30 REQUIRETLS needs a next hop that supports it over verified TLS")
			}
			p.params = append(p.params, "REQUIRETLS")
		default:
			if !s.has(kw) {
				return p, reject(555, "5.5.4 MAIL parameter "+kw+" is not supported by the next hop")
			}
			p.params = append(p.params, e.String())
		}
	}
	if !isASCII(mb.Address) {
		p.utf8 = true
	}
	if p.utf8 {
		if !s.has("SMTPUTF8") {
			if !isASCII(mb.Address) {
				return p, reject(553, "5.6.7 the next hop does not accept internationalized addresses (SMTPUTF8)")
			}
			return p, reject(550, "5.6.9 the next hop does not accept internationalized messages (SMTPUTF8)")
		}
		p.params = append(p.params, "SMTPUTF8")
	}
	return p, nil
}

// planRcpt checks a recipient's parameters against the peer; it returns the parameters to
// send, or a response refusing the recipient without sending it.
func planRcpt(mb tx.Mailbox, s *session, mail mailPlan) ([]string, *tx.Response) {
	if r := checkAddress(mb.Address); r != nil {
		return nil, r
	}
	if mb.Address == "" {
		return nil, reject(501, "5.1.3 empty recipient address")
	}
	if !isASCII(mb.Address) && !mail.utf8 {
		return nil, reject(553, "5.6.7 internationalized recipient address, but the transaction is not SMTPUTF8 at the next hop")
	}
	var out []string
	seen := map[string]bool{}
	for _, e := range mb.Esmtp {
		kw := strings.ToUpper(e.Keyword)
		if seen[kw] {
			return nil, reject(501, "5.5.4 duplicate RCPT parameter "+kw)
		}
		seen[kw] = true
		switch kw {
		case "NOTIFY", "ORCPT":
			if e.Value == "" {
				return nil, reject(501, "5.5.4 "+kw+" needs a value")
			}
			if s.has("DSN") {
				out = append(out, kw+"="+e.Value)
			}
		default:
			if !s.has(kw) {
				return nil, reject(555, "5.5.4 RCPT parameter "+kw+" is not supported by the next hop")
			}
			out = append(out, e.String())
		}
	}
	return out, nil
}

// checkAddress keeps an address from closing the path early and smuggling parameters or
// commands onto the line; tx.Parse has already refused control characters.
func checkAddress(a string) *tx.Response {
	if strings.ContainsAny(a, "<>\r\n") {
		return reject(501, "5.1.3 bad address syntax")
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func pathLine(verb, addr string, params []string) string {
	var b strings.Builder
	b.WriteString(verb)
	b.WriteString(":<")
	b.WriteString(addr)
	b.WriteString(">")
	for _, p := range params {
		b.WriteString(" ")
		b.WriteString(p)
	}
	return b.String()
}
