package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/koukan/koukan/engine/addr"
)

// DMARC (RFC 7489) is split between Go and Lua: Go finds and parses the
// policy record and knows organizational domains; the dmarc_check script
// combines that with the DKIM and SPF results into a verdict, where
// operators can read and change it.

// DMARCRecord is a parsed DMARC policy record (RFC 7489 §6.3). Tags that
// only matter for reporting are kept as written.
type DMARCRecord struct {
	// Policy (p=) is "none", "quarantine" or "reject".
	Policy string
	// SubdomainPolicy (sp=) is the policy for subdomains of the domain
	// that published the record; "" when absent, which means Policy.
	SubdomainPolicy string
	// ADKIM and ASPF (adkim=, aspf=) are "r" (relaxed, the default) or
	// "s" (strict).
	ADKIM, ASPF string
	// Percent (pct=) is the share of failing messages the policy is meant
	// for, 0 to 100 (default 100).
	Percent int
	// ReportAggregate and ReportFailure are the rua= and ruf= URIs.
	ReportAggregate, ReportFailure []string
	// FailureOptions is fo= ("0" by default).
	FailureOptions string
}

// dmarcVersion matches the v= tag that must open a DMARC record (§6.4:
// "DMARC1" is case-sensitive, the tag name is not).
var dmarcVersion = regexp.MustCompile(`^[ \t]*[vV][ \t]*=[ \t]*DMARC1[ \t]*(;|$)`)

// ParseDMARC parses a DMARC TXT record. Unknown tags are ignored (§6.3). A
// record whose p= (or sp=) is missing or invalid is read as p=none if it
// has a rua= URI, as §6.6.3 step 6 says, and is an error otherwise.
func ParseDMARC(txt string) (*DMARCRecord, error) {
	if !dmarcVersion.MatchString(txt) {
		return nil, errors.New("not a DMARC1 record: it must start with v=DMARC1")
	}
	tags := map[string]string{}
	for spec := range strings.SplitSeq(txt, ";") {
		name, value, ok := strings.Cut(spec, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		if !ok {
			if name != "" {
				return nil, fmt.Errorf("malformed tag %q", strings.TrimSpace(spec))
			}
			continue
		}
		if _, dup := tags[name]; dup {
			return nil, fmt.Errorf("duplicate tag %q", name)
		}
		tags[name] = strings.TrimSpace(value)
	}
	r := &DMARCRecord{ADKIM: "r", ASPF: "r", Percent: 100, FailureOptions: "0"}
	r.ReportAggregate = uriList(tags["rua"])
	r.ReportFailure = uriList(tags["ruf"])
	badPolicy := func(tag string) error {
		if len(r.ReportAggregate) > 0 {
			r.Policy, r.SubdomainPolicy = "none", ""
			return nil
		}
		if v, ok := tags[tag]; ok {
			return fmt.Errorf("invalid %s=%q: want none, quarantine or reject", tag, v)
		}
		return fmt.Errorf("no %s= tag", tag)
	}
	if p, ok := policyValue(tags["p"]); ok {
		r.Policy = p
	} else if err := badPolicy("p"); err != nil {
		return nil, err
	}
	if v, set := tags["sp"]; set {
		if sp, ok := policyValue(v); ok {
			r.SubdomainPolicy = sp
		} else if err := badPolicy("sp"); err != nil {
			return nil, err
		}
	}
	for _, a := range []struct {
		tag string
		to  *string
	}{{"adkim", &r.ADKIM}, {"aspf", &r.ASPF}} {
		if v, set := tags[a.tag]; set {
			switch v = strings.ToLower(v); v {
			case "r", "s":
				*a.to = v
			default:
				return nil, fmt.Errorf("invalid %s=%q: want r or s", a.tag, v)
			}
		}
	}
	if v, set := tags["pct"]; set {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			return nil, fmt.Errorf("invalid pct=%q: want 0 to 100", v)
		}
		r.Percent = n
	}
	if v, set := tags["fo"]; set && v != "" {
		r.FailureOptions = v
	}
	return r, nil
}

func policyValue(v string) (string, bool) {
	switch v = strings.ToLower(v); v {
	case "none", "quarantine", "reject":
		return v, true
	}
	return "", false
}

// uriList splits a rua=/ruf= value, keeping the URIs that have a scheme.
func uriList(v string) []string {
	var out []string
	for u := range strings.SplitSeq(v, ",") {
		u = strings.TrimSpace(u)
		if scheme, rest, ok := strings.Cut(u, ":"); ok && scheme != "" && rest != "" && !strings.ContainsAny(scheme, " \t") {
			out = append(out, u)
		}
	}
	return out
}

// DMARCPolicy is the policy that applies to an author (header From) domain.
type DMARCPolicy struct {
	Record *DMARCRecord
	// AuthorDomain is the domain asked about, OrgDomain its organizational
	// domain and Domain the one whose _dmarc record was found: the author
	// domain or, failing that, the organizational domain. All in A-labels.
	AuthorDomain, OrgDomain, Domain string
	// Policy is the one for AuthorDomain: the record's sp= (or p=) when the
	// record was found at the organizational domain, its p= otherwise.
	Policy string
}

// DMARCError is why no policy applies, as an RFC 8601 dmarc result:
// "none" (no record), "temperror" (DNS trouble) or "permerror" (a broken
// or ambiguous record).
type DMARCError struct {
	Result string
	Reason string
}

func (e *DMARCError) Error() string { return "dmarc: " + e.Reason }

// LookupDMARC finds the DMARC policy for an author domain as RFC 7489
// §6.6.3 says: the record at _dmarc.<domain>, else the one at
// _dmarc.<organizational domain>. Failures are *DMARCError.
func LookupDMARC(ctx context.Context, lookupTXT func(ctx context.Context, name string) ([]string, error), domain string) (*DMARCPolicy, error) {
	author, err := asciiDomain(domain)
	if err != nil {
		return nil, &DMARCError{Result: "permerror", Reason: err.Error()}
	}
	org, err := OrganizationalDomain(author)
	if err != nil {
		return nil, &DMARCError{Result: "permerror", Reason: err.Error()}
	}
	at := author
	rec, err := dmarcRecordAt(ctx, lookupTXT, at)
	if err == nil && rec == nil && org != author {
		at = org
		rec, err = dmarcRecordAt(ctx, lookupTXT, at)
	}
	switch {
	case err != nil:
		return nil, err
	case rec == nil:
		return nil, &DMARCError{Result: "none", Reason: "no DMARC record for " + author}
	}
	p := &DMARCPolicy{Record: rec, AuthorDomain: author, OrgDomain: org, Domain: at, Policy: rec.Policy}
	if at != author && rec.SubdomainPolicy != "" {
		p.Policy = rec.SubdomainPolicy
	}
	return p, nil
}

// dmarcRecordAt returns the one DMARC record at _dmarc.<d>, or nil if there
// is none.
func dmarcRecordAt(ctx context.Context, lookupTXT func(ctx context.Context, name string) ([]string, error), d string) (*DMARCRecord, error) {
	name := "_dmarc." + d
	txts, err := lookupTXT(ctx, name)
	if err != nil {
		var de *net.DNSError
		if errors.As(dnsError(name, err), &de) && de.IsNotFound {
			return nil, nil
		}
		return nil, &DMARCError{Result: "temperror", Reason: fmt.Sprintf("looking up %s: %v", name, err)}
	}
	var found []string
	for _, txt := range txts {
		if dmarcVersion.MatchString(txt) {
			found = append(found, txt)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, &DMARCError{Result: "permerror", Reason: fmt.Sprintf("%s has %d DMARC records", name, len(found))}
	}
	rec, err := ParseDMARC(found[0])
	if err != nil {
		return nil, &DMARCError{Result: "permerror", Reason: fmt.Sprintf("%s: %v", name, err)}
	}
	return rec, nil
}

// OrganizationalDomain returns the organizational domain of d (RFC 7489
// §3.2): its registrable part under the public suffix list, e.g.
// example.co.uk for mail.example.co.uk, in lower-case A-labels. A public
// suffix itself is its own organizational domain.
func OrganizationalDomain(d string) (string, error) {
	a, err := asciiDomain(d)
	if err != nil {
		return "", err
	}
	org, err := publicsuffix.EffectiveTLDPlusOne(a)
	if err != nil {
		return a, nil
	}
	return org, nil
}

// Aligned reports whether two domains are in DMARC identifier alignment
// (RFC 7489 §3.1): equal in strict mode, with the same organizational
// domain in relaxed mode.
func Aligned(a, b string, strict bool) (bool, error) {
	a, err := asciiDomain(a)
	if err != nil {
		return false, err
	}
	b, err = asciiDomain(b)
	if err != nil {
		return false, err
	}
	if a == b || strict {
		return a == b, nil
	}
	oa, _ := OrganizationalDomain(a)
	ob, _ := OrganizationalDomain(b)
	return oa == ob, nil
}

// asciiDomain is d in lower-case A-labels without a trailing dot; address
// literals and malformed names are errors.
func asciiDomain(d string) (string, error) {
	d = strings.TrimSuffix(strings.TrimSpace(d), ".")
	if d == "" {
		return "", errors.New("empty domain")
	}
	a, err := addr.Mailbox{Domain: d}.ASCIIDomain()
	if err != nil {
		return "", fmt.Errorf("domain %q: %w", d, err)
	}
	if strings.HasPrefix(a, "[") {
		return "", fmt.Errorf("%s is an address literal, not a domain", d)
	}
	return a, nil
}
