package inbound

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"github.com/koukan/koukan/engine/tx"
)

// envelopeAddress checks an address go-smtp parsed from MAIL or RCPT and
// writes it as the router should get it. go-smtp takes the quotes off a
// quoted local part ("john doe"@example.com arrives as john doe@...), which
// would be a different, invalid address further on, so such a local part
// is quoted again. Control characters and invalid UTF-8 are refused here
// (the transaction model refuses them anyway, with a less useful reply),
// and so is non-ASCII without SMTPUTF8 (RFC 6531 §3.4).
func envelopeAddress(addr string, utf8OK bool, p phase) (string, error) {
	enh := smtp.EnhancedCode{5, 1, 3} // bad destination address syntax
	if p == phaseMail {
		enh = smtp.EnhancedCode{5, 1, 7} // bad sender address syntax
	}
	if addr == "" {
		return "", nil // the null reverse-path; go-smtp allows it only in MAIL
	}
	if !utf8.ValidString(addr) {
		return "", newReply(501, enh, "Address is not valid UTF-8", nil)
	}
	ascii := true
	for _, r := range addr {
		switch {
		case r < ' ' || r == 0x7f:
			return "", newReply(501, enh, "Control character in address", nil)
		case r > 0x7f:
			ascii = false
		}
	}
	if !ascii && !utf8OK {
		return "", newReply(553, smtp.EnhancedCode{5, 6, 7}, "Non-ASCII address without SMTPUTF8", nil)
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return "", newReply(501, enh, "Address must be local-part@domain", nil)
	}
	local, domain := addr[:at], addr[at+1:]
	if !isDotString(local) {
		local = quote(local)
	}
	return local + "@" + domain, nil
}

// isDotString reports whether s is an RFC 5321 Dot-string (RFC 6531's,
// which also allows UTF-8): atoms of atext joined by single dots.
func isDotString(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if r != '.' && !isAtext(r) {
			return false
		}
	}
	return true
}

func isAtext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r > 0x7f:
		return true
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r)
}

// quote makes s an RFC 5321 Quoted-string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// mailParams are the MAIL parameters passed to the router, rebuilt from
// what go-smtp parsed (it keeps no raw text). AUTH= is dropped: the
// authenticated identity is ours to state, in smtp_meta, and a relay that
// passed on a client's claim would vouch for it (RFC 4954 §5).
func mailParams(o *smtp.MailOptions) []tx.EsmtpParam {
	var ps []tx.EsmtpParam
	if o.Size > 0 {
		ps = append(ps, tx.EsmtpParam{Keyword: "SIZE", Value: strconv.FormatInt(o.Size, 10)})
	}
	if o.Body != "" {
		ps = append(ps, tx.EsmtpParam{Keyword: "BODY", Value: string(o.Body)})
	}
	if o.UTF8 {
		ps = append(ps, tx.EsmtpParam{Keyword: "SMTPUTF8"})
	}
	if o.RequireTLS {
		ps = append(ps, tx.EsmtpParam{Keyword: "REQUIRETLS"})
	}
	if o.Return != "" {
		ps = append(ps, tx.EsmtpParam{Keyword: "RET", Value: string(o.Return)})
	}
	if o.EnvelopeID != "" {
		ps = append(ps, tx.EsmtpParam{Keyword: "ENVID", Value: xtext(o.EnvelopeID)})
	}
	return ps
}

// rcptParams are the RCPT parameters passed to the router: the DSN ones
// (RFC 3461), the only ones go-smtp lets through as configured.
func rcptParams(o *smtp.RcptOptions) []tx.EsmtpParam {
	var ps []tx.EsmtpParam
	if len(o.Notify) > 0 {
		vs := make([]string, len(o.Notify))
		for i, n := range o.Notify {
			vs[i] = string(n)
		}
		ps = append(ps, tx.EsmtpParam{Keyword: "NOTIFY", Value: strings.Join(vs, ",")})
	}
	if o.OriginalRecipient != "" {
		typ := string(o.OriginalRecipientType)
		enc := xtext(o.OriginalRecipient)
		if o.OriginalRecipientType == smtp.DSNAddressTypeUTF8 {
			enc = utf8AddrXtext(o.OriginalRecipient)
		}
		ps = append(ps, tx.EsmtpParam{Keyword: "ORCPT", Value: typ + ";" + enc})
	}
	return ps
}

// xtext encodes s as RFC 3461 §4 xtext: printable ASCII but "+" and "="
// as itself, every other byte as "+HH".
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '!' && c <= '~' && c != '+' && c != '=' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "+%02X", c)
		}
	}
	return b.String()
}

// utf8AddrXtext encodes s as RFC 6533 utf-8-addr-xtext: printable ASCII
// but "+", "=" and "\" as itself, everything else as \x{HEX}.
func utf8AddrXtext(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '!' && r <= '~' && r != '+' && r != '=' && r != '\\' {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, `\x{%X}`, r)
		}
	}
	return b.String()
}
