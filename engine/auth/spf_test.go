package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
)

// mapResolver is a Resolver answering from maps. A name in fail gets that
// error from every lookup; other missing names are NXDOMAIN.
type mapResolver struct {
	txt  map[string][]string
	ip   map[string][]string
	mx   map[string][]string
	ptr  map[string][]string
	fail map[string]error
}

func (m mapResolver) answer(ctx context.Context, name string, records map[string][]string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.fail[name]; err != nil {
		return nil, err
	}
	rrs, ok := records[strings.TrimSuffix(name, ".")]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return rrs, nil
}

func (m mapResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return m.answer(ctx, name, m.txt)
}

func (m mapResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	hosts, err := m.answer(ctx, name, m.mx)
	var mxs []*net.MX
	for _, h := range hosts {
		mxs = append(mxs, &net.MX{Host: h, Pref: 10})
	}
	return mxs, err
}

func (m mapResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ips, err := m.answer(ctx, host, m.ip)
	var addrs []net.IPAddr
	for _, ip := range ips {
		addrs = append(addrs, net.IPAddr{IP: net.ParseIP(ip)})
	}
	return addrs, err
}

func (m mapResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return m.answer(ctx, addr, m.ptr)
}

var _ Resolver = mapResolver{}
var _ Resolver = net.DefaultResolver

func TestCheckSPF(t *testing.T) {
	dns := mapResolver{
		txt: map[string][]string{
			"example.com":           {"some other record", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"},
			"soft.example":          {"v=spf1 ip4:192.0.2.1 ~all"},
			"neutral.example":       {"v=spf1 ?all"},
			"empty.example":         {"v=spf1"},
			"nospf.example":         {"google-site-verification=xyz"},
			"bad.example":           {"v=spf1 ip4:999.0.0.1 -all"},
			"twice.example":         {"v=spf1 -all", "v=spf1 +all"},
			"amx.example":           {"v=spf1 a mx -all"},
			"incl.example":          {"v=spf1 include:broken.example -all"},
			"mail.example.org":      {"v=spf1 exists:%{l}.%{d}.check.example -all"},
			"xn--bcher-kva.example": {"v=spf1 ip4:192.0.2.77 -all"},
			"slow.example":          {"v=spf1 a:slow-host.example -all"},
		},
		ip: map[string][]string{
			"amx.example":     {"198.51.100.1"},
			"mx1.amx.example": {"198.51.100.2", "2001:db8:1::2"},
			"postmaster.mail.example.org.check.example": {"127.0.0.2"},
		},
		mx: map[string][]string{
			"amx.example": {"mx1.amx.example"},
		},
		fail: map[string]error{
			"servfail.example":  fmt.Errorf("engine/dns: %w", errors.New("SERVFAIL")),
			"broken.example":    &net.DNSError{Err: "server misbehaving", Name: "broken.example"},
			"slow-host.example": &net.DNSError{Err: "i/o timeout", IsTimeout: true},
		},
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name     string
		ctx      context.Context
		ip       string
		helo     string
		mailFrom string
		want     SPFResult
	}{
		{"pass", nil, "192.0.2.10", "mx.example.com", "alice@example.com", SPFResult{"pass", "example.com", "matched ip"}},
		{"pass in brackets", nil, "192.0.2.10", "mx.example.com", "<alice@example.com>", SPFResult{"pass", "example.com", "matched ip"}},
		{"pass IPv6", nil, "2001:db8::25", "mx.example.com", "alice@EXAMPLE.com", SPFResult{"pass", "example.com", "matched ip"}},
		{"fail", nil, "203.0.113.5", "mx.example.com", "alice@example.com", SPFResult{"fail", "example.com", "matched all"}},
		{"softfail", nil, "203.0.113.5", "h", "bob@soft.example", SPFResult{"softfail", "soft.example", "matched all"}},
		{"neutral", nil, "203.0.113.5", "h", "bob@neutral.example", SPFResult{"neutral", "neutral.example", "matched all"}},
		{"neutral, empty record", nil, "203.0.113.5", "h", "bob@empty.example", SPFResult{"neutral", "empty.example", "no mechanism matched"}},
		{"none, no SPF record", nil, "203.0.113.5", "h", "bob@nospf.example", SPFResult{"none", "nospf.example", "no DNS record found"}},
		{"none, NXDOMAIN", nil, "203.0.113.5", "h", "bob@nowhere.example", SPFResult{"none", "nowhere.example", "no DNS record found"}},
		{"a and mx", nil, "198.51.100.1", "h", "bob@amx.example", SPFResult{"pass", "amx.example", "matched a"}},
		{"mx host", nil, "198.51.100.2", "h", "bob@amx.example", SPFResult{"pass", "amx.example", "matched mx"}},
		{"mx host IPv6", nil, "2001:db8:1::2", "h", "bob@amx.example", SPFResult{"pass", "amx.example", "matched mx"}},
		{"IDN sender domain", nil, "192.0.2.77", "h", "jörg@bücher.example", SPFResult{"pass", "xn--bcher-kva.example", "matched ip"}},
		{"permerror, bad record", nil, "192.0.2.10", "h", "bob@bad.example", SPFResult{"permerror", "bad.example", "invalid ipX value"}},
		{"permerror, two records", nil, "192.0.2.10", "h", "bob@twice.example", SPFResult{"permerror", "twice.example", "multiple matching DNS records"}},
		{"temperror, wrapped resolver error", nil, "192.0.2.10", "h", "bob@servfail.example", SPFResult{"temperror", "servfail.example", "lookup servfail.example: engine/dns: SERVFAIL"}},
		{"temperror, include lookup", nil, "192.0.2.10", "h", "bob@incl.example", SPFResult{"temperror", "incl.example", "lookup broken.example: server misbehaving"}},
		{"temperror, timeout", nil, "192.0.2.10", "h", "bob@slow.example", SPFResult{"temperror", "slow.example", "lookup slow-host.example: i/o timeout"}},
		{"temperror, context canceled", canceled, "192.0.2.10", "h", "alice@example.com", SPFResult{"temperror", "example.com", "lookup example.com: context canceled"}},
		// RFC 7208 §2.4: the null path is checked as postmaster@helo; the
		// record's %{l} macro shows the local part used.
		{"null path uses helo", nil, "192.0.2.10", "mail.example.org", "<>", SPFResult{"pass", "mail.example.org", "matched exists"}},
		{"empty sender uses helo", nil, "192.0.2.10", "mail.example.org", "", SPFResult{"pass", "mail.example.org", "matched exists"}},
		{"null path, helo fails", nil, "203.0.113.5", "mx.example.com", "<>", SPFResult{"none", "mx.example.com", "no DNS record found"}},
		{"null path, literal helo", nil, "192.0.2.10", "[192.0.2.10]", "<>", SPFResult{"none", "", "null sender and HELO [192.0.2.10] is an address literal"}},
		{"null path, no helo", nil, "192.0.2.10", "", "<>", SPFResult{"none", "", "null sender and no HELO name"}},
		{"null path, bad helo", nil, "192.0.2.10", "bad_name", "<>", SPFResult{"none", "", `null sender and HELO "bad_name" is not a domain: invalid character '_' in domain label "bad_name"`}},
		{"malformed sender", nil, "192.0.2.10", "h", "alice", SPFResult{"none", "", `malformed MAIL FROM "alice": missing '@' in address`}},
		{"literal sender domain", nil, "192.0.2.10", "h", "a@[192.0.2.10]", SPFResult{"none", "[192.0.2.10]", "MAIL FROM domain is an address literal"}},
		{"no IP", nil, "", "mx.example.com", "alice@example.com", SPFResult{"none", "example.com", "no client IP address to check (message not received over SMTP)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			var ip net.IP
			if tt.ip != "" {
				ip = net.ParseIP(tt.ip)
			}
			if got := CheckSPF(ctx, dns, ip, tt.helo, tt.mailFrom); got != tt.want {
				t.Errorf("CheckSPF(%s, %q, %q) = %+v, want %+v", tt.ip, tt.helo, tt.mailFrom, got, tt.want)
			}
		})
	}
}

func TestDNSError(t *testing.T) {
	notFound := &net.DNSError{Err: "no such host", Name: "x", Server: "127.0.0.53:53", IsNotFound: true}
	tests := []struct {
		in                  error
		notFound, temporary bool
	}{
		{notFound, true, false},
		{fmt.Errorf("wrapped: %w", notFound), true, false},
		{&net.DNSError{Err: "server misbehaving"}, false, true},
		{&net.DNSError{Err: "i/o timeout", IsTimeout: true}, false, true},
		{errors.New("SERVFAIL"), false, true},
		{context.DeadlineExceeded, false, true},
	}
	for _, tt := range tests {
		err := dnsError("name.example", tt.in)
		de, ok := err.(*net.DNSError)
		if !ok {
			t.Fatalf("dnsError(%v) = %T, want *net.DNSError", tt.in, err)
		}
		if de.IsNotFound != tt.notFound || de.Temporary() != tt.temporary || de.Name != "name.example" {
			t.Errorf("dnsError(%v) = %+v", tt.in, de)
		}
	}
	if err := dnsError("x", nil); err != nil {
		t.Errorf("dnsError(nil) = %v", err)
	}
}
