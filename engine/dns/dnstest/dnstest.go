// Package dnstest runs a fake DNS server on loopback, so tests of SPF, DKIM,
// MX routing and Lua scripts go through the real resolver, real sockets
// included, without depending on the Internet or the host's DNS.
//
// The server answers from a Zone as if it were a recursive resolver that
// has already chased every CNAME: unknown names get NXDOMAIN, known names
// without the asked type get NODATA with an SOA (so negative caching can be
// tested), and UDP answers larger than the client's buffer (512 bytes
// without EDNS) come back truncated so the TCP fallback gets exercised.
package dnstest

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/dns"
	mdns "github.com/miekg/dns"
)

const defaultTTL = 60

// Zone maps a lower-case FQDN without the trailing dot to its records, e.g.
//
//	Zone{
//		"example.com":    {MX: []MX{{Pref: 10, Host: "mx.example.com"}}, TXT: []string{"v=spf1 ip4:127.0.0.1 -all"}},
//		"mx.example.com": {A: []string{"127.0.0.1"}},
//	}
//
// PTR records live under the reverse name; see ReverseName.
type Zone map[string]Records

// Records are the data of one name.
type Records struct {
	A, AAAA []string
	MX      []MX
	// TXT strings may be of any length; longer than 255 bytes they are
	// sent as several character-strings, as a real zone would.
	TXT []string
	PTR []string
	// CNAME, when set, replaces all other data: the server follows it
	// within the zone, like a recursive resolver.
	CNAME string
	// TTL of the records and of the SOA sent with NODATA (0 means 60).
	TTL uint32
	// Fail answers SERVFAIL.
	Fail bool
	// Delay holds the answer back, for timeout tests.
	Delay time.Duration
}

// MX is one mail exchanger; Host "." makes a null MX (RFC 7505).
type MX struct {
	Pref uint16
	Host string
}

// Server is a running fake DNS server.
type Server struct {
	// Addr is "127.0.0.1:port", the same port for UDP and TCP.
	Addr string

	t       testing.TB
	done    chan struct{} // closed at cleanup, to release delayed answers
	queries atomic.Int64
	mu      sync.Mutex
	zone    Zone
}

// Start serves zone on a random UDP and TCP port of 127.0.0.1 until t's
// cleanup.
func Start(t testing.TB, zone Zone) *Server {
	t.Helper()
	s := &Server{t: t, done: make(chan struct{}), zone: make(Zone, len(zone))}
	for name, recs := range zone {
		s.Set(name, recs)
	}
	pc, l := listen(t)
	s.Addr = pc.LocalAddr().String()
	handler := mdns.HandlerFunc(s.serve)
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: handler}, {Listener: l, Handler: handler}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		failed := make(chan error, 1)
		go func() { failed <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-failed:
			t.Fatalf("dnstest: serving: %v", err)
		}
		t.Cleanup(func() { srv.Shutdown() })
	}
	t.Cleanup(func() { close(s.done) }) // runs first: cleanups are LIFO
	return s
}

// listen binds UDP and TCP to one loopback port, as a real nameserver
// listens; a port free for UDP may be taken for TCP, hence the retries.
func listen(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("dnstest: %v", err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l
		}
		pc.Close()
	}
	t.Fatal("dnstest: found no port free for both UDP and TCP")
	return nil, nil
}

// Set replaces the records of name while the server runs, e.g. to show that
// a cached answer outlives the change.
func (s *Server) Set(name string, r Records) {
	if err := check(r); err != nil {
		s.t.Fatalf("dnstest: %s: %v", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zone[key(name)] = r
}

// check rejects addresses that would otherwise only show up as a server
// unable to pack its answer.
func check(r Records) error {
	for _, a := range r.A {
		if ip, err := netip.ParseAddr(a); err != nil || !ip.Is4() {
			return fmt.Errorf("bad A address %q", a)
		}
	}
	for _, a := range r.AAAA {
		if ip, err := netip.ParseAddr(a); err != nil || !ip.Is6() {
			return fmt.Errorf("bad AAAA address %q", a)
		}
	}
	return nil
}

// Queries reports how many queries the server has received, over UDP and
// TCP together, so tests can prove an answer came from a cache.
func (s *Server) Queries() int {
	return int(s.queries.Load())
}

// Resolver returns a resolver that asks only this server, with caching
// disabled so every lookup reaches the zone as it is now.
func (s *Server) Resolver(t testing.TB) *dns.Resolver {
	t.Helper()
	r, err := dns.New(dns.Options{Servers: []string{s.Addr}, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ReverseName returns the in-addr.arpa or ip6.arpa name (without the
// trailing dot) under which the PTR records of ip go in a Zone.
func ReverseName(ip string) string {
	arpa, err := mdns.ReverseAddr(ip)
	if err != nil {
		panic("dnstest: ReverseName: " + err.Error())
	}
	return strings.TrimSuffix(arpa, ".")
}

func key(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

func (s *Server) lookup(name string) (Records, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.zone[key(name)]
	return r, ok
}

func (s *Server) serve(w mdns.ResponseWriter, req *mdns.Msg) {
	s.queries.Add(1)
	m := new(mdns.Msg)
	m.SetReply(req)
	if len(req.Question) != 1 {
		m.Rcode = mdns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := q.Name
	recs, found := s.lookup(name)
	if recs.Delay > 0 {
		select {
		case <-time.After(recs.Delay):
		case <-s.done:
			return
		}
	}
	if recs.Fail {
		m.Rcode = mdns.RcodeServerFailure
		w.WriteMsg(m)
		return
	}
	m.Authoritative = true
	m.RecursionAvailable = true
	for hops := 0; found && recs.CNAME != "" && q.Qtype != mdns.TypeCNAME && hops < 8; hops++ {
		target := mdns.Fqdn(strings.ToLower(recs.CNAME))
		m.Answer = append(m.Answer, &mdns.CNAME{Hdr: header(name, mdns.TypeCNAME, recs), Target: target})
		name = target
		recs, found = s.lookup(name)
	}
	var rrs []mdns.RR
	if found {
		rrs = recs.rrs(name, q.Qtype)
	} else {
		m.Rcode = mdns.RcodeNameError
	}
	m.Answer = append(m.Answer, rrs...)
	if len(rrs) == 0 { // NXDOMAIN or NODATA: the SOA says how long to remember it
		m.Ns = []mdns.RR{&mdns.SOA{Hdr: header(".", mdns.TypeSOA, recs), Ns: "ns.dnstest.",
			Mbox: "hostmaster.dnstest.", Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: recs.ttl()}}
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := mdns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
			m.SetEdns0(opt.UDPSize(), false)
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

func header(name string, rrtype uint16, r Records) mdns.RR_Header {
	return mdns.RR_Header{Name: name, Rrtype: rrtype, Class: mdns.ClassINET, Ttl: r.ttl()}
}

func (r Records) ttl() uint32 {
	if r.TTL == 0 {
		return defaultTTL
	}
	return r.TTL
}

// rrs returns r's records of type qtype, owned by name.
func (r Records) rrs(name string, qtype uint16) []mdns.RR {
	h := header(name, qtype, r)
	var out []mdns.RR
	switch qtype {
	case mdns.TypeA:
		for _, a := range r.A {
			out = append(out, &mdns.A{Hdr: h, A: net.ParseIP(a)})
		}
	case mdns.TypeAAAA:
		for _, a := range r.AAAA {
			out = append(out, &mdns.AAAA{Hdr: h, AAAA: net.ParseIP(a)})
		}
	case mdns.TypeMX:
		for _, mx := range r.MX {
			out = append(out, &mdns.MX{Hdr: h, Preference: mx.Pref, Mx: mdns.Fqdn(mx.Host)})
		}
	case mdns.TypeTXT:
		for _, txt := range r.TXT {
			out = append(out, &mdns.TXT{Hdr: h, Txt: characterStrings(txt)})
		}
	case mdns.TypePTR:
		for _, p := range r.PTR {
			out = append(out, &mdns.PTR{Hdr: h, Ptr: mdns.Fqdn(p)})
		}
	case mdns.TypeCNAME:
		if r.CNAME != "" {
			out = append(out, &mdns.CNAME{Hdr: h, Target: mdns.Fqdn(r.CNAME)})
		}
	}
	return out
}

// characterStrings splits s into the 255-byte pieces a TXT record is made
// of, escaped because miekg/dns reads backslashes as escapes when packing.
func characterStrings(s string) []string {
	var parts []string
	for len(s) > 255 {
		parts = append(parts, s[:255])
		s = s[255:]
	}
	parts = append(parts, s)
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, `\`, `\\`)
	}
	return parts
}
