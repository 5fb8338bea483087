package dns

import (
	"errors"
	"strings"

	mdns "github.com/miekg/dns"
	"golang.org/x/net/idna"
)

var errInvalidName = errors.New("invalid domain name")

// canonical turns a caller's name (U-labels or A-labels, any case, with or
// without the trailing dot) into the lower-case A-label FQDN put on the wire.
// Only non-ASCII labels go through IDNA: the Lookup profile enforces STD3
// host-name rules and would reject the underscore labels that DKIM
// ("sel._domainkey") and DMARC ("_dmarc") depend on.
func canonical(name string) (string, error) {
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return "", errInvalidName
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if isASCII(l) {
			labels[i] = strings.ToLower(l)
			continue
		}
		a, err := idna.Lookup.ToASCII(l)
		if err != nil {
			return "", err
		}
		labels[i] = a
	}
	fqdn := strings.Join(labels, ".") + "."
	if _, ok := mdns.IsDomainName(fqdn); !ok {
		return "", errInvalidName
	}
	return fqdn, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// unescapeTXT undoes the presentation-format escaping (\" \\ \DDD) that
// miekg/dns applies when it unpacks a character-string, so callers get the
// raw bytes, as net.Resolver.LookupTXT returns them.
func unescapeTXT(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b = append(b, s[i])
			continue
		}
		i++
		if i+2 < len(s) && isDigit(s[i]) && isDigit(s[i+1]) && isDigit(s[i+2]) {
			b = append(b, (s[i]-'0')*100+(s[i+1]-'0')*10+(s[i+2]-'0'))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
