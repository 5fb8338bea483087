// Package addr parses and formats email addresses as an MTA meets them:
// RFC 5321 paths in the SMTP envelope (with the RFC 6531 SMTPUTF8
// extension) and RFC 5322 address lists in header fields. Lua scripts reach
// it through koukan.addr, policies call it directly.
package addr

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Size limits from RFC 5321 §4.5.3.1. Longer addresses may be valid
// RFC 5322 but other MTAs are allowed to reject them, so we do too.
const (
	maxLocalLen  = 64
	maxDomainLen = 255
	maxLabelLen  = 63
	maxPathLen   = 256 // including the angle brackets
)

// Mailbox is an RFC 5321 path address split into parts.
type Mailbox struct {
	// Local is the local part in unquoted form: surrounding quotes removed
	// and backslash escapes resolved, so that equal addresses compare equal
	// however they were quoted.
	Local string
	// Domain is the domain as written: U-labels, A-labels or an address
	// literal such as "[127.0.0.1]".
	Domain string
}

// ParseMailbox parses an RFC 5321 Mailbox (local@domain, no angle
// brackets). UTF-8 is accepted as RFC 6531 allows. Use ParsePath for
// envelope arguments that may be "<>".
func ParseMailbox(s string) (Mailbox, error) {
	m, err := parseMailbox(s)
	if err != nil {
		return Mailbox{}, err
	}
	if n := len(s) + 2; n > maxPathLen {
		return Mailbox{}, fmt.Errorf("path too long: %d > %d octets", n, maxPathLen)
	}
	return m, nil
}

// ParsePath parses an RFC 5321 reverse or forward path: "<a@b>", a bare
// "a@b" (which many clients send), or the null path "<>", for which it
// returns the zero Mailbox and null = true. A source route ("<@r1,@r2:a@b>")
// is checked and discarded, as RFC 5321 §4.1.2 requires.
func ParsePath(s string) (m Mailbox, null bool, err error) {
	if s == "<>" {
		return Mailbox{}, true, nil
	}
	if !strings.HasPrefix(s, "<") {
		m, err = ParseMailbox(s)
		return m, false, err
	}
	if len(s) < 2 || !strings.HasSuffix(s, ">") {
		return Mailbox{}, false, errors.New("path missing closing '>'")
	}
	inner, err := stripSourceRoute(s[1 : len(s)-1])
	if err != nil {
		return Mailbox{}, false, err
	}
	if m, err = parseMailbox(inner); err != nil {
		return Mailbox{}, false, err
	}
	if len(s) > maxPathLen {
		return Mailbox{}, false, fmt.Errorf("path too long: %d > %d octets", len(s), maxPathLen)
	}
	return m, false, nil
}

// stripSourceRoute removes an RFC 5321 A-d-l ("@a,@b:") from the start of a
// path. Its domains are still checked so that garbage is not let through.
func stripSourceRoute(s string) (string, error) {
	if !strings.HasPrefix(s, "@") {
		return s, nil
	}
	route, rest, ok := strings.Cut(s, ":")
	if !ok {
		return "", errors.New("source route missing ':'")
	}
	for hop := range strings.SplitSeq(route, ",") {
		d, ok := strings.CutPrefix(hop, "@")
		if !ok {
			return "", fmt.Errorf("source route hop %q missing '@'", hop)
		}
		if _, err := domainToASCII(d); err != nil {
			return "", fmt.Errorf("source route: %w", err)
		}
	}
	return rest, nil
}

// parseMailbox checks the syntax and part lengths of local@domain; the
// caller checks the total path length since it knows about the brackets.
func parseMailbox(s string) (Mailbox, error) {
	if s == "" {
		return Mailbox{}, errors.New("empty address")
	}
	if !utf8.ValidString(s) {
		return Mailbox{}, errors.New("address is not valid UTF-8")
	}
	var local, rest string
	if s[0] == '"' {
		var err error
		if local, rest, err = unquote(s); err != nil {
			return Mailbox{}, err
		}
	} else {
		i := strings.IndexByte(s, '@')
		if i < 0 {
			return Mailbox{}, errors.New("missing '@' in address")
		}
		local, rest = s[:i], s[i:]
		if err := checkDotString(local); err != nil {
			return Mailbox{}, err
		}
	}
	if n := len(s) - len(rest); n > maxLocalLen {
		return Mailbox{}, fmt.Errorf("local part too long: %d > %d octets", n, maxLocalLen)
	}
	domain, ok := strings.CutPrefix(rest, "@")
	if !ok {
		return Mailbox{}, errors.New("missing '@' after quoted local part")
	}
	if err := checkDomain(domain); err != nil {
		return Mailbox{}, err
	}
	return Mailbox{Local: local, Domain: domain}, nil
}

// unquote decodes the RFC 5321 Quoted-string at the start of s and returns
// its content and what follows the closing quote.
func unquote(s string) (content, rest string, err error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), s[i+1:], nil
		case c == '\\':
			i++
			if i == len(s) {
				return "", "", errors.New("unterminated quoted string")
			}
			// quoted-pairSMTP only escapes printable ASCII and space.
			if c = s[i]; c < ' ' || c > '~' {
				return "", "", fmt.Errorf("invalid escaped character %q in quoted string", c)
			}
		case c < ' ' || c == 0x7f:
			return "", "", fmt.Errorf("invalid character %q in quoted string", c)
		}
		b.WriteByte(c)
	}
	return "", "", errors.New("unterminated quoted string")
}

// checkDotString reports whether local is an RFC 5321 Dot-string, with
// RFC 6531 allowing any non-ASCII UTF-8 in atoms.
func checkDotString(local string) error {
	switch {
	case local == "":
		return errors.New("local part empty")
	case local[0] == '.':
		return errors.New("local part starts with '.'")
	case local[len(local)-1] == '.':
		return errors.New("local part ends with '.'")
	case strings.Contains(local, ".."):
		return errors.New("local part has consecutive dots")
	}
	for _, r := range local {
		if r != '.' && r < utf8.RuneSelf && !isAtext(byte(r)) {
			return fmt.Errorf("invalid character %q in local part (it needs quoting)", r)
		}
	}
	return nil
}

// isAtext reports whether c is an RFC 5322 atext character.
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// checkDomain validates a domain name or address literal as written.
func checkDomain(d string) error {
	if strings.HasPrefix(d, "[") {
		return checkAddressLiteral(d)
	}
	_, err := domainToASCII(d)
	return err
}

// domainToASCII validates a domain name (not a literal) and converts it to
// lower-case A-labels. ASCII labels are checked before IDNA conversion so
// that the errors name the actual problem rather than an IDNA rule.
func domainToASCII(d string) (string, error) {
	if d == "" {
		return "", errors.New("domain empty")
	}
	if len(d) > maxDomainLen {
		return "", fmt.Errorf("domain too long: %d > %d octets", len(d), maxDomainLen)
	}
	for label := range strings.SplitSeq(d, ".") {
		if err := checkLabel(label, true); err != nil {
			return "", err
		}
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return "", fmt.Errorf("invalid domain: %v", err)
	}
	if len(a) > maxDomainLen {
		return "", fmt.Errorf("domain too long: %d > %d octets as A-labels", len(a), maxDomainLen)
	}
	// IDNA mapping can create labels (e.g. from U+3002 IDEOGRAPHIC FULL
	// STOP) and lengthen them, so the result is checked again.
	for label := range strings.SplitSeq(a, ".") {
		if err := checkLabel(label, false); err != nil {
			return "", err
		}
	}
	return a, nil
}

// checkLabel checks an RFC 5321 sub-domain: letters, digits and inner
// hyphens, 1 to 63 octets. Non-ASCII labels are left to IDNA when
// allowUnicode is set.
func checkLabel(label string, allowUnicode bool) error {
	if label == "" {
		return errors.New("domain label empty")
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		switch {
		case c >= utf8.RuneSelf && allowUnicode:
			return nil
		case c == '-', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		default:
			r, _ := utf8.DecodeRuneInString(label[i:])
			return fmt.Errorf("invalid character %q in domain label %q", r, label)
		}
	}
	if len(label) > maxLabelLen {
		return fmt.Errorf("domain label too long: %d > %d octets", len(label), maxLabelLen)
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return fmt.Errorf("domain label %q starts or ends with '-'", label)
	}
	return nil
}

// parseAddressLiteral validates "[1.2.3.4]" or "[IPv6:...]" and returns
// the address. General (other tag) literals are refused since nothing
// could deliver to them.
func parseAddressLiteral(d string) (netip.Addr, error) {
	inner, ok := strings.CutSuffix(d[1:], "]")
	if !ok {
		return netip.Addr{}, errors.New("address literal missing closing ']'")
	}
	tag, v6, ok := strings.Cut(inner, ":")
	if !ok {
		ip, err := netip.ParseAddr(inner)
		if err != nil || !ip.Is4() {
			return netip.Addr{}, fmt.Errorf("invalid IPv4 address literal %q", d)
		}
		return ip, nil
	}
	if !strings.EqualFold(tag, "IPv6") {
		if ip, err := netip.ParseAddr(inner); err == nil && ip.Is6() {
			return netip.Addr{}, fmt.Errorf("IPv6 address literal %q missing the \"IPv6:\" tag", d)
		}
		return netip.Addr{}, fmt.Errorf("unsupported address literal tag %q", tag)
	}
	ip, err := netip.ParseAddr(v6)
	if err != nil || !ip.Is6() || ip.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("invalid IPv6 address literal %q", d)
	}
	return ip, nil
}

func checkAddressLiteral(d string) error {
	_, err := parseAddressLiteral(d)
	return err
}

func isLiteral(d string) bool { return strings.HasPrefix(d, "[") }

// String formats m as an RFC 5321 Mailbox, quoting the local part only when
// it is not a valid Dot-string. The zero Mailbox (the null path) formats as
// "".
func (m Mailbox) String() string {
	if m == (Mailbox{}) {
		return ""
	}
	if checkDotString(m.Local) == nil {
		return m.Local + "@" + m.Domain
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(m.Local); i++ {
		if c := m.Local[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(m.Local[i])
	}
	b.WriteString(`"@`)
	b.WriteString(m.Domain)
	return b.String()
}

// ASCIIDomain returns the domain in lower-case A-labels (IDNA Lookup
// profile), the form DNS lookups and non-SMTPUTF8 peers need. Address
// literals are returned unchanged.
func (m Mailbox) ASCIIDomain() (string, error) {
	if isLiteral(m.Domain) {
		return m.Domain, checkAddressLiteral(m.Domain)
	}
	return domainToASCII(m.Domain)
}

// UnicodeDomain returns the domain in U-labels, for display and for
// SMTPUTF8 peers. Address literals are returned unchanged.
// DomainOf is the domain of address as queues and metrics group by it: lower-case A-labels,
// the raw text after the last "@" lower-cased when the address does not parse, and "" for
// a bare local part ("postmaster").
func DomainOf(address string) string {
	if m, err := ParseMailbox(address); err == nil {
		if d, err := m.ASCIIDomain(); err == nil {
			return d
		}
	}
	if i := strings.LastIndexByte(address, '@'); i >= 0 {
		return strings.ToLower(address[i+1:])
	}
	return ""
}

func (m Mailbox) UnicodeDomain() (string, error) {
	if isLiteral(m.Domain) {
		return m.Domain, checkAddressLiteral(m.Domain)
	}
	a, err := domainToASCII(m.Domain)
	if err != nil {
		return "", err
	}
	return idna.Lookup.ToUnicode(a)
}

// NeedsSMTPUTF8 reports whether relaying to m requires the SMTPUTF8
// extension. Only the local part counts: the domain can always be sent as
// A-labels.
func (m Mailbox) NeedsSMTPUTF8() bool {
	for i := 0; i < len(m.Local); i++ {
		if m.Local[i] >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// NormalizeOptions selects the lossy parts of Normalize. Both are off by
// default because RFC 5321 leaves the local part's meaning to the
// destination.
type NormalizeOptions struct {
	// FoldLocalCase lower-cases the local part, for destinations known to
	// treat it case-insensitively (most do).
	FoldLocalCase bool
	// StripSubaddress removes everything from the first occurrence of this
	// separator (e.g. "+" turns "a+tag@x" into "a@x"); "" keeps it. A local
	// part starting with the separator is kept whole.
	StripSubaddress string
}

// Normalize returns a canonical form of the path or mailbox s for use as a
// lookup key (allow lists, rate limits): A-label lower-case domain,
// canonical address literal, minimally quoted local part. The null path
// "<>" normalizes to "".
func Normalize(s string, o NormalizeOptions) (string, error) {
	m, null, err := ParsePath(s)
	if err != nil || null {
		return "", err
	}
	var d string
	if isLiteral(m.Domain) {
		ip, err := parseAddressLiteral(m.Domain)
		if err != nil {
			return "", err
		}
		d = "[" + ip.String() + "]"
		if !ip.Is4() {
			d = "[IPv6:" + ip.String() + "]"
		}
	} else if d, err = domainToASCII(m.Domain); err != nil {
		return "", err
	}
	local := m.Local
	if o.StripSubaddress != "" {
		if i := strings.Index(local, o.StripSubaddress); i > 0 {
			local = local[:i]
		}
	}
	if o.FoldLocalCase {
		local = strings.ToLower(local)
	}
	return Mailbox{Local: local, Domain: d}.String(), nil
}
