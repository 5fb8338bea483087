package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"blitiri.com.ar/go/spf"

	"github.com/koukan/koukan/engine/addr"
)

// Resolver is the subset of *net.Resolver SPF needs; engine/dns.Resolver
// has the same method set, so either can be passed.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// SPFResult is the outcome of an SPF check, in the terms of RFC 7208 §2.6
// and of an RFC 8601 "spf" method.
type SPFResult struct {
	// Result is "none", "neutral", "pass", "fail", "softfail",
	// "temperror" or "permerror".
	Result string
	// Domain is the domain whose policy was checked (A-labels): the MAIL
	// FROM domain, or the HELO domain for the null path.
	Domain string
	// Explanation says how the result came about, for logs and the
	// Received-SPF comment. It is not the record's exp= text, which the SPF
	// library does not fetch.
	Explanation string
}

// CheckSPF evaluates RFC 7208 check_host() for a client at ip that said
// helo and gave mailFrom ("a@b", "<a@b>", or "" / "<>" for the null path,
// for which postmaster@helo is checked as §2.4 says). Every outcome,
// including DNS trouble, is expressed in the result rather than an error.
// A nil ip (a message injected over REST) gives "none".
func CheckSPF(ctx context.Context, r Resolver, ip net.IP, helo, mailFrom string) SPFResult {
	sender, domain, why := spfIdentity(helo, mailFrom)
	if why != "" {
		return SPFResult{Result: string(spf.None), Domain: domain, Explanation: why}
	}
	if ip == nil {
		return SPFResult{Result: string(spf.None), Domain: domain, Explanation: "no client IP address to check (message not received over SMTP)"}
	}
	asciiHelo, err := addr.Mailbox{Domain: helo}.ASCIIDomain()
	if err != nil {
		// Only used for the %{h} macro; pass it on as given.
		asciiHelo = helo
	}
	res, err := spf.CheckHostWithSender(ip, asciiHelo, sender,
		spf.WithContext(ctx), spf.WithResolver(spfResolver{r}))
	return SPFResult{Result: string(res), Domain: domain, Explanation: spfExplanation(res, err)}
}

// spfIdentity returns the sender to check and its domain in A-labels, or
// why there is nothing to check, which RFC 7208 §4.3 makes "none".
func spfIdentity(helo, mailFrom string) (sender, domain, why string) {
	if mailFrom == "" || mailFrom == "<>" {
		d, err := addr.Mailbox{Domain: helo}.ASCIIDomain()
		switch {
		case helo == "":
			return "", "", "null sender and no HELO name"
		case err != nil:
			return "", "", fmt.Sprintf("null sender and HELO %q is not a domain: %v", helo, err)
		case strings.HasPrefix(d, "["):
			return "", "", fmt.Sprintf("null sender and HELO %s is an address literal", helo)
		}
		return "postmaster@" + d, d, ""
	}
	m, _, err := addr.ParsePath(mailFrom)
	if err != nil {
		return "", "", fmt.Sprintf("malformed MAIL FROM %q: %v", mailFrom, err)
	}
	d, err := m.ASCIIDomain()
	if err != nil {
		return "", "", fmt.Sprintf("malformed MAIL FROM domain %q: %v", m.Domain, err)
	}
	if strings.HasPrefix(d, "[") {
		return "", d, "MAIL FROM domain is an address literal"
	}
	return m.Local + "@" + d, d, ""
}

// spfExplanation turns the library's diagnostic error into text.
func spfExplanation(res spf.Result, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case res == spf.Neutral:
		return "no mechanism matched"
	}
	return ""
}

// spfResolver adapts errors from a Resolver for the SPF library, which
// tells "not found" from temporary failures by asserting *net.DNSError.
type spfResolver struct{ r Resolver }

func (s spfResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	txts, err := s.r.LookupTXT(ctx, name)
	return txts, dnsError(name, err)
}

func (s spfResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	mxs, err := s.r.LookupMX(ctx, name)
	return mxs, dnsError(name, err)
}

func (s spfResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ips, err := s.r.LookupIPAddr(ctx, host)
	return ips, dnsError(host, err)
}

func (s spfResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	names, err := s.r.LookupAddr(ctx, addr)
	return names, dnsError(addr, err)
}

// dnsError reshapes a resolver error into the bare *net.DNSError both
// go-msgauth and the SPF library classify by type assertion, so wrapped
// errors (from engine/dns, say) are understood. Only "not found" stays
// permanent; anything else – SERVFAIL, timeouts, a cancelled context – is
// temporary, as RFC 6376 §6.1.2 and RFC 7208 §5 want. nil stays nil.
func dnsError(name string, err error) error {
	if err == nil {
		return nil
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return &net.DNSError{Err: de.Err, Name: name, Server: de.Server, IsNotFound: de.IsNotFound, IsTemporary: !de.IsNotFound}
	}
	return &net.DNSError{Err: err.Error(), Name: name, IsTemporary: true}
}
