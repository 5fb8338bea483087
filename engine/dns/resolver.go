// Package dns is koukan's DNS resolver, used for MX routing, SPF, DKIM key
// lookups and the koukan.dns.* Lua functions.
//
// It exists, rather than using net.Resolver, because an MTA needs what the
// standard library does not give: its own choice of nameservers, answers
// cached for their TTL (including negative answers, which SPF and DKIM
// produce a lot of), per-attempt timeouts with failover, the distinction
// between "no such domain" and "no MX records" that RFC 5321 5.1 routing
// depends on, and static host overrides for tests and split horizons. Its
// Lookup methods have the signatures of *net.Resolver's and its errors are
// *net.DNSError, so code written for net (blitiri.com.ar/go/spf, DKIM
// verifiers) can use it unchanged.
package dns

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

const (
	defaultTimeout   = 2 * time.Second
	defaultCacheSize = 10000
	// maxCNAMEs bounds CNAME chains so a loop in a reply cannot spin us.
	maxCNAMEs = 8
)

// ErrNullMX means the domain has published a null MX (RFC 7505): it accepts
// no mail at all, so delivery must fail permanently instead of being retried.
var ErrNullMX = errors.New("domain does not accept mail (null MX, RFC 7505)")

// Sentinels behind the two kinds of "not found", reachable with errors.Is
// through net.DNSError.Unwrap; only implicit-MX needs to tell them apart.
var (
	errNXDomain = errors.New("no such host")
	errNoData   = errors.New("no records of the requested type")
)

// Resolver is a caching stub resolver. It is safe for concurrent use.
//
// Its lookup methods deliberately have the signatures of *net.Resolver's,
// so blitiri.com.ar/go/spf (spf.WithResolver) and DKIM verification can use
// it directly.
type Resolver struct {
	servers []string
	timeout time.Duration
	static  map[string][]netip.Addr // keyed by canonical FQDN
	cache   *cache                  // nil when caching is disabled
}

// Options configures a Resolver; the zero value gives the system resolvers,
// a 2s timeout and a 10000-answer cache.
type Options struct {
	// Servers are "host:port" nameservers to ask in order (a bare IP means
	// port 53); empty reads /etc/resolv.conf, falling back to 127.0.0.1:53.
	Servers []string
	// Timeout bounds each attempt (default 2s); the ctx deadline always wins.
	Timeout time.Duration
	// Static maps host names to addresses that answer A/AAAA lookups
	// without asking DNS. Such names have no MX records, so
	// LookupMXOrImplicit routes to them through the implicit MX.
	Static map[string][]netip.Addr
	// CacheSize is the maximum number of cached answers (0 means 10000,
	// negative disables caching). Answers are kept for their smallest TTL,
	// negative ones for the SOA minimum capped at 5 minutes.
	CacheSize int
}

// New returns a Resolver configured by o.
func New(o Options) (*Resolver, error) {
	r := &Resolver{timeout: o.Timeout, static: make(map[string][]netip.Addr, len(o.Static))}
	if r.timeout <= 0 {
		r.timeout = defaultTimeout
	}
	servers := o.Servers
	if len(servers) == 0 {
		servers = systemServers()
	}
	for _, s := range servers {
		addr, err := serverAddr(s)
		if err != nil {
			return nil, err
		}
		r.servers = append(r.servers, addr)
	}
	for name, addrs := range o.Static {
		fqdn, err := canonical(name)
		if err != nil {
			return nil, fmt.Errorf("dns: static name %q: %w", name, err)
		}
		for _, a := range addrs {
			r.static[fqdn] = append(r.static[fqdn], a.Unmap())
		}
	}
	switch {
	case o.CacheSize == 0:
		r.cache = newCache(defaultCacheSize)
	case o.CacheSize > 0:
		r.cache = newCache(o.CacheSize)
	}
	return r, nil
}

// systemServers reads the nameservers the host is configured with.
func systemServers() []string {
	conf, err := mdns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil || len(conf.Servers) == 0 {
		return []string{"127.0.0.1:53"}
	}
	servers := make([]string, len(conf.Servers))
	for i, s := range conf.Servers {
		servers[i] = net.JoinHostPort(s, "53")
	}
	return servers
}

func serverAddr(s string) (string, error) {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s, nil
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return net.JoinHostPort(s, "53"), nil
	}
	return "", fmt.Errorf("dns: bad server address %q, want host:port", s)
}

// LookupMX returns the MX records of name sorted by preference, then host
// (unlike net, which shuffles equal preferences, so that routing is
// reproducible). Hosts are FQDNs with the trailing dot, as net returns them.
func (r *Resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	fqdn, err := canonical(name)
	if err != nil {
		return nil, invalidName(name, err)
	}
	if _, ok := r.fixed(fqdn); ok {
		return nil, notFound(name, "", false)
	}
	rrs, err := r.lookup(ctx, name, fqdn, mdns.TypeMX)
	if err != nil {
		return nil, err
	}
	var mxs []*net.MX
	for _, rr := range rrs {
		if mx, ok := rr.(*mdns.MX); ok {
			mxs = append(mxs, &net.MX{Host: mx.Mx, Pref: mx.Preference})
		}
	}
	slices.SortFunc(mxs, func(a, b *net.MX) int {
		return cmp.Or(cmp.Compare(a.Pref, b.Pref), strings.Compare(a.Host, b.Host))
	})
	return mxs, nil
}

// LookupMXOrImplicit returns the hosts to deliver mail for domain to,
// following RFC 5321 5.1: a domain that exists but has no MX records is its
// own mail host (an implicit MX of preference 0). A null MX (RFC 7505)
// yields an error wrapping ErrNullMX.
func (r *Resolver) LookupMXOrImplicit(ctx context.Context, domain string) ([]*net.MX, error) {
	mxs, err := r.LookupMX(ctx, domain)
	if errors.Is(err, errNoData) {
		fqdn, _ := canonical(domain) // LookupMX got past it already
		return []*net.MX{{Host: fqdn, Pref: 0}}, nil
	}
	if err != nil {
		return nil, err
	}
	// RFC 7505 forbids mixing "." with real hosts; if a domain does it
	// anyway, the real hosts are the better guess.
	mxs = slices.DeleteFunc(mxs, func(mx *net.MX) bool { return mx.Host == "." })
	if len(mxs) == 0 {
		return nil, fmt.Errorf("%s: %w", domain, ErrNullMX)
	}
	return mxs, nil
}

// LookupTXT returns name's TXT records, each with its character-strings
// joined, as SPF (RFC 7208 3.3) and DKIM (RFC 6376 3.6.2.2) require.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.resolve(ctx, name, mdns.TypeTXT)
	if err != nil {
		return nil, err
	}
	var txts []string
	for _, rr := range rrs {
		if txt, ok := rr.(*mdns.TXT); ok {
			var b strings.Builder
			for _, s := range txt.Txt {
				b.WriteString(unescapeTXT(s))
			}
			txts = append(txts, b.String())
		}
	}
	return txts, nil
}

// LookupAddr returns the PTR names of addr, with the trailing dot as net
// returns them.
func (r *Resolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: "unrecognized address", Name: addr}
	}
	arpa, _ := mdns.ReverseAddr(ip.WithZone("").Unmap().String()) // cannot fail for a parsed address
	rrs, err := r.resolve(ctx, arpa, mdns.TypePTR)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, rr := range rrs {
		if ptr, ok := rr.(*mdns.PTR); ok {
			names = append(names, ptr.Ptr)
		}
	}
	return names, nil
}

// LookupIPAddr returns host's IPv4 and IPv6 addresses, asking for both at
// once. An IP literal is returned as is.
func (r *Resolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	addrs, err := r.lookupBoth(ctx, host)
	if err != nil {
		return nil, err
	}
	ipaddrs := make([]net.IPAddr, len(addrs))
	for i, a := range addrs {
		ipaddrs[i] = net.IPAddr{IP: a.AsSlice(), Zone: a.Zone()}
	}
	return ipaddrs, nil
}

// LookupHost is LookupIPAddr with the addresses as strings.
func (r *Resolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	addrs, err := r.lookupBoth(ctx, host)
	if err != nil {
		return nil, err
	}
	hosts := make([]string, len(addrs))
	for i, a := range addrs {
		hosts[i] = a.String()
	}
	return hosts, nil
}

// LookupA returns host's IPv4 addresses.
func (r *Resolver) LookupA(ctx context.Context, host string) ([]netip.Addr, error) {
	return r.lookupIP(ctx, host, mdns.TypeA)
}

// LookupAAAA returns host's IPv6 addresses.
func (r *Resolver) LookupAAAA(ctx context.Context, host string) ([]netip.Addr, error) {
	return r.lookupIP(ctx, host, mdns.TypeAAAA)
}

func (r *Resolver) lookupBoth(ctx context.Context, host string) ([]netip.Addr, error) {
	var v6 []netip.Addr
	var err6 error
	done := make(chan struct{})
	go func() {
		defer close(done)
		v6, err6 = r.lookupIP(ctx, host, mdns.TypeAAAA)
	}()
	v4, err4 := r.lookupIP(ctx, host, mdns.TypeA)
	<-done
	if addrs := append(v4, v6...); len(addrs) > 0 {
		return addrs, nil
	}
	return nil, worse(err4, err6)
}

// worse picks the error to report when neither A nor AAAA gave addresses: a
// failure beats "not found" (the caller should retry rather than bounce),
// and NXDOMAIN beats NODATA.
func worse(a, b error) error {
	var da, db *net.DNSError
	if !errors.As(a, &da) || !da.IsNotFound {
		return a
	}
	if !errors.As(b, &db) || !db.IsNotFound {
		return b
	}
	if errors.Is(b, errNXDomain) {
		return b
	}
	return a
}

// loopback answers "localhost" and names under it, which RFC 6761 §6.3 has resolvers
// answer themselves, without a query.
var loopback = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}

// fixed gives the addresses of a name that is not looked up: one in Static, or localhost.
func (r *Resolver) fixed(fqdn string) ([]netip.Addr, bool) {
	if addrs, ok := r.static[fqdn]; ok {
		return addrs, true
	}
	if name := strings.TrimSuffix(fqdn, "."); name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return loopback, true
	}
	return nil, false
}

// lookupIP answers A (qtype TypeA) or AAAA lookups from literals, Static or DNS.
func (r *Resolver) lookupIP(ctx context.Context, host string, qtype uint16) ([]netip.Addr, error) {
	want4 := qtype == mdns.TypeA
	if ip, err := netip.ParseAddr(host); err == nil {
		return family([]netip.Addr{ip.Unmap()}, want4, host)
	}
	fqdn, err := canonical(host)
	if err != nil {
		return nil, invalidName(host, err)
	}
	if addrs, ok := r.fixed(fqdn); ok {
		return family(addrs, want4, host)
	}
	rrs, err := r.lookup(ctx, host, fqdn, qtype)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	for _, rr := range rrs {
		var ip net.IP
		switch rr := rr.(type) {
		case *mdns.A:
			ip = rr.A
		case *mdns.AAAA:
			ip = rr.AAAA
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			addrs = append(addrs, a.Unmap())
		}
	}
	return addrs, nil
}

// family keeps the addresses of one IP version; none left is NODATA, just
// as if DNS had been asked.
func family(addrs []netip.Addr, want4 bool, name string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, a := range addrs {
		if a.Is4() == want4 {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, notFound(name, "", false)
	}
	return out, nil
}

func (r *Resolver) resolve(ctx context.Context, name string, qtype uint16) ([]mdns.RR, error) {
	fqdn, err := canonical(name)
	if err != nil {
		return nil, invalidName(name, err)
	}
	return r.lookup(ctx, name, fqdn, qtype)
}

// lookup answers one question from the cache or the servers. It returns the
// records of qtype found at the end of any CNAME chain, or an error; never
// an empty list. name is the caller's spelling, for errors.
func (r *Resolver) lookup(ctx context.Context, name, fqdn string, qtype uint16) ([]mdns.RR, error) {
	if _, ok := r.fixed(fqdn); ok {
		return nil, notFound(name, "", false) // not an address query: no such record
	}
	key := cacheKey{name: fqdn, qtype: qtype}
	e, ok := r.cache.get(key)
	if !ok {
		reply, server, err := r.query(ctx, name, fqdn, qtype)
		if err != nil {
			return nil, err
		}
		e = &entry{key: key, rcode: reply.Rcode, server: server}
		var ttl uint32
		e.rrs, ttl = pick(reply, fqdn, qtype)
		if len(e.rrs) == 0 {
			ttl = negativeTTL(reply)
		}
		r.cache.put(e, ttl)
	}
	if len(e.rrs) == 0 {
		return nil, notFound(name, e.server, e.rcode == mdns.RcodeNameError)
	}
	return e.rrs, nil
}

// pick follows the CNAME chain from fqdn through the answer section (the
// recursive server has already chased it) and returns the qtype records at
// its end, with the smallest TTL seen along the chain. Records owned by
// other names are ignored, so a reply cannot slip in data for names we did
// not ask about.
func pick(reply *mdns.Msg, fqdn string, qtype uint16) ([]mdns.RR, uint32) {
	owner, chainTTL := fqdn, uint32(math.MaxUint32)
	for range maxCNAMEs + 1 {
		var rrs []mdns.RR
		var next string
		var cnameTTL uint32
		ttl := chainTTL
		for _, rr := range reply.Answer {
			h := rr.Header()
			if h.Class != mdns.ClassINET || !strings.EqualFold(h.Name, owner) {
				continue
			}
			if h.Rrtype == qtype {
				rrs = append(rrs, rr)
				ttl = min(ttl, h.Ttl)
			} else if c, ok := rr.(*mdns.CNAME); ok {
				next, cnameTTL = c.Target, h.Ttl
			}
		}
		if len(rrs) > 0 {
			return rrs, ttl
		}
		if next == "" {
			break
		}
		owner, chainTTL = next, min(chainTTL, cnameTTL)
	}
	return nil, 0
}

// negativeTTL is how long a NXDOMAIN/NODATA reply may be reused (RFC 2308
// 5); without an SOA it must not be cached at all.
func negativeTTL(reply *mdns.Msg) uint32 {
	for _, rr := range reply.Ns {
		if soa, ok := rr.(*mdns.SOA); ok {
			return min(soa.Hdr.Ttl, soa.Minttl, maxNegativeTTL)
		}
	}
	return 0
}

// notFound builds the error for NXDOMAIN and NODATA. Both are IsNotFound,
// as net reports them, so net-style callers treat them alike.
func notFound(name, server string, nxdomain bool) error {
	cause := errNoData
	if nxdomain {
		cause = errNXDomain
	}
	return &net.DNSError{Err: cause.Error(), Name: name, Server: server, IsNotFound: true, UnwrapErr: cause}
}

// invalidName reports a name that cannot be queried as not found, as net does.
func invalidName(name string, err error) error {
	return &net.DNSError{Err: err.Error(), Name: name, IsNotFound: true, UnwrapErr: err}
}
