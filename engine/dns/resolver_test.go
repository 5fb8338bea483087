package dns_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/dns"
	"github.com/koukan/koukan/engine/dns/dnstest"
	mdns "github.com/miekg/dns"
)

// netResolver is the part of *net.Resolver that SPF and DKIM libraries are
// written against; both resolvers must satisfy it.
type netResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
	LookupHost(ctx context.Context, host string) ([]string, error)
}

var (
	_ netResolver = (*net.Resolver)(nil)
	_ netResolver = (*dns.Resolver)(nil)
)

// margin is how late a lookup may return after its deadline; generous
// because the race detector slows everything down.
const margin = 500 * time.Millisecond

func dnsError(t *testing.T, err error) *net.DNSError {
	t.Helper()
	var de *net.DNSError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *net.DNSError", err, err)
	}
	return de
}

func newResolver(t *testing.T, o dns.Options) *dns.Resolver {
	t.Helper()
	r, err := dns.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mxStrings(mxs []*net.MX) []string {
	var s []string
	for _, mx := range mxs {
		s = append(s, fmt.Sprintf("%d %s", mx.Pref, mx.Host))
	}
	return s
}

func addrStrings[T fmt.Stringer](addrs []T) []string {
	var s []string
	for _, a := range addrs {
		s = append(s, a.String())
	}
	return s
}

func TestLookupMXSorted(t *testing.T) {
	s := dnstest.Start(t, dnstest.Zone{"example.com": {MX: []dnstest.MX{
		{Pref: 20, Host: "c.example.com"}, {Pref: 10, Host: "b.example.com"}, {Pref: 10, Host: "a.example.com"},
	}}})
	mxs, err := s.Resolver(t).LookupMX(t.Context(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10 a.example.com.", "10 b.example.com.", "20 c.example.com."}
	if got := mxStrings(mxs); !slices.Equal(got, want) {
		t.Errorf("LookupMX = %q, want %q", got, want)
	}
}

func TestLookupMXOrImplicit(t *testing.T) {
	s := dnstest.Start(t, dnstest.Zone{
		"mail.example":  {MX: []dnstest.MX{{Pref: 10, Host: "mx.mail.example"}}},
		"bare.example":  {A: []string{"192.0.2.1"}},
		"null.example":  {MX: []dnstest.MX{{Pref: 0, Host: "."}}},
		"mixed.example": {MX: []dnstest.MX{{Pref: 0, Host: "."}, {Pref: 10, Host: "mx.mail.example"}}},
	})
	r := s.Resolver(t)
	for name, want := range map[string][]string{
		"mail.example":  {"10 mx.mail.example."},
		"bare.example":  {"0 bare.example."},
		"mixed.example": {"10 mx.mail.example."},
	} {
		mxs, err := r.LookupMXOrImplicit(t.Context(), name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if got := mxStrings(mxs); !slices.Equal(got, want) {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
	if _, err := r.LookupMXOrImplicit(t.Context(), "null.example"); !errors.Is(err, dns.ErrNullMX) {
		t.Errorf("null MX: got %v, want ErrNullMX", err)
	}
	// NXDOMAIN must not be mistaken for "no MX records": there is no host.
	_, err := r.LookupMXOrImplicit(t.Context(), "missing.example")
	if de := dnsError(t, err); !de.IsNotFound {
		t.Errorf("missing domain: got %v, want not found", err)
	}
	// Plain LookupMX reports the missing MX instead of inventing one.
	_, err = r.LookupMX(t.Context(), "bare.example")
	if de := dnsError(t, err); !de.IsNotFound {
		t.Errorf("LookupMX without MX records: got %v, want not found", err)
	}
}

func TestLookupTXT(t *testing.T) {
	long := strings.Repeat("a", 300) + strings.Repeat("b", 300) // three character-strings
	special := `v=DKIM1; n="quoted \ back" ü` + "\x01"
	s := dnstest.Start(t, dnstest.Zone{"example.com": {TXT: []string{long, special, "v=spf1 -all"}}})
	got, err := s.Resolver(t).LookupTXT(t.Context(), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{long, special, "v=spf1 -all"}; !slices.Equal(got, want) {
		t.Errorf("LookupTXT = %q, want %q", got, want)
	}
}

func TestLookupAddresses(t *testing.T) {
	s := dnstest.Start(t, dnstest.Zone{
		"host.example": {A: []string{"192.0.2.1", "192.0.2.2"}, AAAA: []string{"2001:db8::1"}},
		"v4.example":   {A: []string{"192.0.2.3"}},
	})
	r := s.Resolver(t)
	ctx := t.Context()

	ipaddrs, err := r.LookupIPAddr(ctx, "host.example")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range ipaddrs {
		got = append(got, a.String())
	}
	want := []string{"192.0.2.1", "192.0.2.2", "2001:db8::1"}
	if !slices.Equal(got, want) {
		t.Errorf("LookupIPAddr = %q, want %q", got, want)
	}
	if got, err := r.LookupHost(ctx, "host.example"); err != nil || !slices.Equal(got, want) {
		t.Errorf("LookupHost = %q, %v; want %q", got, err, want)
	}
	if got, err := r.LookupA(ctx, "host.example"); err != nil || !slices.Equal(addrStrings(got), want[:2]) {
		t.Errorf("LookupA = %v, %v; want %q", got, err, want[:2])
	}
	if got, err := r.LookupAAAA(ctx, "host.example"); err != nil || !slices.Equal(addrStrings(got), want[2:]) {
		t.Errorf("LookupAAAA = %v, %v; want %q", got, err, want[2:])
	}

	// A missing AAAA must not hide the A records.
	if got, err := r.LookupHost(ctx, "v4.example"); err != nil || !slices.Equal(got, []string{"192.0.2.3"}) {
		t.Errorf("LookupHost(v4.example) = %q, %v", got, err)
	}
	_, err = r.LookupAAAA(ctx, "v4.example")
	if de := dnsError(t, err); !de.IsNotFound {
		t.Errorf("LookupAAAA(v4.example): got %v, want not found", err)
	}

	// Literals are answered without a query, as net does.
	before := s.Queries()
	if got, err := r.LookupHost(ctx, "2001:db8::9"); err != nil || !slices.Equal(got, []string{"2001:db8::9"}) {
		t.Errorf("LookupHost(literal) = %q, %v", got, err)
	}
	if s.Queries() != before {
		t.Errorf("a literal caused %d queries", s.Queries()-before)
	}
}

func TestLookupAddr(t *testing.T) {
	s := dnstest.Start(t, dnstest.Zone{
		dnstest.ReverseName("192.0.2.1"):   {PTR: []string{"host.example"}},
		dnstest.ReverseName("2001:db8::1"): {PTR: []string{"host6.example"}},
	})
	r := s.Resolver(t)
	for addr, want := range map[string]string{"192.0.2.1": "host.example.", "2001:db8::1": "host6.example."} {
		got, err := r.LookupAddr(t.Context(), addr)
		if err != nil || !slices.Equal(got, []string{want}) {
			t.Errorf("LookupAddr(%s) = %q, %v; want [%s]", addr, got, err, want)
		}
	}
	if _, err := r.LookupAddr(t.Context(), "not-an-ip"); err == nil {
		t.Error("LookupAddr(not-an-ip) succeeded")
	}
}

func TestIDN(t *testing.T) {
	s := dnstest.Start(t, dnstest.Zone{
		"xn--bcher-kva.example":                {A: []string{"192.0.2.7"}},
		"sel._domainkey.xn--bcher-kva.example": {TXT: []string{"v=DKIM1; p="}},
	})
	r := s.Resolver(t)
	for _, name := range []string{"bücher.example", "BÜCHER.example.", "xn--bcher-kva.example"} {
		got, err := r.LookupA(t.Context(), name)
		if err != nil || !slices.Equal(addrStrings(got), []string{"192.0.2.7"}) {
			t.Errorf("LookupA(%s) = %v, %v", name, got, err)
		}
	}
	// Underscore labels are not host names, yet DKIM needs them to work
	// next to U-labels.
	if got, err := r.LookupTXT(t.Context(), "sel._domainkey.bücher.example"); err != nil || len(got) != 1 {
		t.Errorf("LookupTXT(DKIM key under IDN) = %q, %v", got, err)
	}
	mxs, err := r.LookupMXOrImplicit(t.Context(), "bücher.example")
	if err != nil || !slices.Equal(mxStrings(mxs), []string{"0 xn--bcher-kva.example."}) {
		t.Errorf("implicit MX of an IDN = %q, %v", mxStrings(mxs), err)
	}
}

func TestNotFound(t *testing.T) {
	s := dnstest.Start(t, dnstest.Zone{"exists.example": {A: []string{"192.0.2.1"}}})
	r := s.Resolver(t)
	for _, name := range []string{"exists.example" /* NODATA */, "missing.example" /* NXDOMAIN */} {
		_, err := r.LookupTXT(t.Context(), name)
		if de := dnsError(t, err); !de.IsNotFound || de.Temporary() {
			t.Errorf("%s: got %+v, want a permanent not found", name, de)
		}
	}
	_, err := r.LookupHost(t.Context(), "missing.example")
	if de := dnsError(t, err); !de.IsNotFound || de.Err != "no such host" {
		t.Errorf("LookupHost(missing.example): got %+v, want no such host", de)
	}
	before := s.Queries()
	for _, name := range []string{"bad..name", "bü_cher.example" /* not IDNA */} {
		_, err := r.LookupTXT(t.Context(), name)
		if de := dnsError(t, err); !de.IsNotFound {
			t.Errorf("invalid name %s: got %v, want not found", name, err)
		}
	}
	if s.Queries() != before {
		t.Error("an invalid name was sent to the server")
	}
}

func TestServfailIsTemporary(t *testing.T) {
	s := dnstest.Start(t, dnstest.Zone{"broken.example": {Fail: true}})
	r := s.Resolver(t)
	_, err := r.LookupTXT(t.Context(), "broken.example")
	if de := dnsError(t, err); !de.IsTemporary || de.IsNotFound || de.IsTimeout {
		t.Errorf("SERVFAIL: got %+v, want temporary", de)
	}
	// Both address queries fail; the result must still say "try later".
	_, err = r.LookupIPAddr(t.Context(), "broken.example")
	if de := dnsError(t, err); !de.IsTemporary || de.IsNotFound {
		t.Errorf("LookupIPAddr after SERVFAIL: got %+v, want temporary", de)
	}
}

func TestTimeouts(t *testing.T) {
	s := dnstest.Start(t, dnstest.Zone{"slow.example": {TXT: []string{"late"}, Delay: 10 * time.Second}})

	check := func(t *testing.T, r *dns.Resolver, ctx context.Context, limit time.Duration, cause error) {
		t.Helper()
		start := time.Now()
		_, err := r.LookupTXT(ctx, "slow.example")
		if elapsed := time.Since(start); elapsed > limit+margin {
			t.Errorf("returned after %v, want about %v", elapsed, limit)
		}
		if de := dnsError(t, err); !de.IsTimeout || !de.IsTemporary {
			t.Errorf("got %+v, want a timeout", de)
		}
		if cause != nil && !errors.Is(err, cause) {
			t.Errorf("got %v, want it to wrap %v", err, cause)
		}
	}
	t.Run("ctx deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		check(t, s.Resolver(t), ctx, 200*time.Millisecond, context.DeadlineExceeded)
	})
	t.Run("ctx cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(200*time.Millisecond, cancel)
		check(t, s.Resolver(t), ctx, 200*time.Millisecond, context.Canceled)
	})
	t.Run("per-attempt timeout", func(t *testing.T) {
		r := newResolver(t, dns.Options{Servers: []string{s.Addr}, Timeout: 200 * time.Millisecond, CacheSize: -1})
		check(t, r, t.Context(), 200*time.Millisecond, nil)
	})
}

func TestFailover(t *testing.T) {
	zone := dnstest.Zone{"example.com": {A: []string{"192.0.2.1"}}}
	good := dnstest.Start(t, zone)

	t.Run("silent server", func(t *testing.T) {
		// A socket nobody reads: queries to it vanish, as to a dead server.
		blackhole, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer blackhole.Close()
		r := newResolver(t, dns.Options{
			Servers: []string{blackhole.LocalAddr().String(), good.Addr}, Timeout: 200 * time.Millisecond, CacheSize: -1,
		})
		start := time.Now()
		got, err := r.LookupA(t.Context(), "example.com")
		if err != nil || !slices.Equal(addrStrings(got), []string{"192.0.2.1"}) {
			t.Errorf("LookupA = %v, %v", got, err)
		}
		if elapsed := time.Since(start); elapsed > 200*time.Millisecond+margin {
			t.Errorf("failover took %v", elapsed)
		}
	})
	t.Run("SERVFAIL", func(t *testing.T) {
		bad := dnstest.Start(t, dnstest.Zone{"example.com": {Fail: true}})
		r := newResolver(t, dns.Options{Servers: []string{bad.Addr, good.Addr}, CacheSize: -1})
		got, err := r.LookupA(t.Context(), "example.com")
		if err != nil || !slices.Equal(addrStrings(got), []string{"192.0.2.1"}) {
			t.Errorf("LookupA = %v, %v", got, err)
		}
		if bad.Queries() != 1 {
			t.Errorf("failing server got %d queries, want 1", bad.Queries())
		}
	})
}

// TestIgnoresForgedReplies plays a server that first sends what an off-path
// attacker could: garbage, a wrong ID, a different question. Only the
// genuine reply that follows may be accepted.
func TestIgnoresForgedReplies(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 65535)
		n, client, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		q := new(mdns.Msg)
		if q.Unpack(buf[:n]) != nil {
			return
		}
		send := func(m *mdns.Msg) {
			wire, _ := m.Pack()
			pc.WriteTo(wire, client)
		}
		reply := func(name string, ip string) *mdns.Msg {
			m := new(mdns.Msg).SetReply(q)
			m.Question[0].Name = name
			m.Answer = []mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60},
				A: net.ParseIP(ip)}}
			return m
		}
		pc.WriteTo([]byte("garbage"), client)
		wrongID := reply(q.Question[0].Name, "192.0.2.66")
		wrongID.Id++
		send(wrongID)
		send(reply("evil.example.", "192.0.2.66"))
		send(reply(q.Question[0].Name, "192.0.2.1"))
	}()
	r := newResolver(t, dns.Options{Servers: []string{pc.LocalAddr().String()}, CacheSize: -1})
	got, err := r.LookupA(t.Context(), "example.com")
	if err != nil || !slices.Equal(addrStrings(got), []string{"192.0.2.1"}) {
		t.Errorf("LookupA = %v, %v; want [192.0.2.1]", got, err)
	}
}

func TestTruncationRetriesOverTCP(t *testing.T) {
	// Over the 1232 bytes the resolver accepts on UDP, so the UDP answer
	// is truncated and only TCP can deliver it whole.
	big := strings.Repeat("0123456789", 300)
	s := dnstest.Start(t, dnstest.Zone{"big.example": {TXT: []string{big}}})
	got, err := s.Resolver(t).LookupTXT(t.Context(), "big.example")
	if err != nil || !slices.Equal(got, []string{big}) {
		t.Fatalf("LookupTXT = %d records, %v; want the 3000-byte record", len(got), err)
	}
	if s.Queries() != 2 {
		t.Errorf("server got %d queries, want 2 (UDP, then TCP)", s.Queries())
	}
}

func TestCache(t *testing.T) {
	s := dnstest.Start(t, dnstest.Zone{"example.com": {TXT: []string{"one"}, TTL: 1}})
	r := newResolver(t, dns.Options{Servers: []string{s.Addr}})
	lookup := func(name, want string) {
		t.Helper()
		if got, err := r.LookupTXT(t.Context(), name); err != nil || !slices.Equal(got, []string{want}) {
			t.Fatalf("LookupTXT(%s) = %q, %v; want [%s]", name, got, err, want)
		}
	}
	lookup("example.com", "one")
	s.Set("example.com", dnstest.Records{TXT: []string{"two"}, TTL: 1})
	lookup("EXAMPLE.com.", "one") // any spelling of the name hits the cache
	if s.Queries() != 1 {
		t.Fatalf("server got %d queries, want 1", s.Queries())
	}
	time.Sleep(1100 * time.Millisecond)
	lookup("example.com", "two")
	if s.Queries() != 2 {
		t.Fatalf("after the TTL the server got %d queries, want 2", s.Queries())
	}

	for range 2 {
		if _, err := r.LookupTXT(t.Context(), "missing.example"); err == nil {
			t.Fatal("missing name found")
		}
	}
	if s.Queries() != 3 {
		t.Errorf("NXDOMAIN twice: server got %d queries in all, want 3", s.Queries())
	}
}

func TestCacheEviction(t *testing.T) {
	s := dnstest.Start(t, dnstest.Zone{"a.example": {TXT: []string{"a"}}, "b.example": {TXT: []string{"b"}}})
	r := newResolver(t, dns.Options{Servers: []string{s.Addr}, CacheSize: 1})
	for _, name := range []string{"a.example", "b.example", "a.example"} {
		if _, err := r.LookupTXT(t.Context(), name); err != nil {
			t.Fatal(err)
		}
	}
	if s.Queries() != 3 {
		t.Errorf("server got %d queries, want 3: a.example should have been evicted", s.Queries())
	}
}

func TestCacheDisabled(t *testing.T) {
	s := dnstest.Start(t, dnstest.Zone{"example.com": {TXT: []string{"x"}}})
	r := s.Resolver(t)
	for range 2 {
		if _, err := r.LookupTXT(t.Context(), "example.com"); err != nil {
			t.Fatal(err)
		}
	}
	if s.Queries() != 2 {
		t.Errorf("server got %d queries, want 2", s.Queries())
	}
}

func TestStatic(t *testing.T) {
	s := dnstest.Start(t, dnstest.Zone{"mx.example.com": {A: []string{"127.0.0.1"}}})
	r := newResolver(t, dns.Options{Servers: []string{s.Addr}, Static: map[string][]netip.Addr{
		"MX.example.com.": {netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::5")},
		"v4.example":      {netip.MustParseAddr("192.0.2.2")},
	}})
	ctx := t.Context()
	if got, err := r.LookupA(ctx, "mx.example.com"); err != nil || !slices.Equal(addrStrings(got), []string{"192.0.2.1"}) {
		t.Errorf("LookupA = %v, %v", got, err)
	}
	if got, err := r.LookupHost(ctx, "mx.example.com"); err != nil || !slices.Equal(got, []string{"192.0.2.1", "2001:db8::5"}) {
		t.Errorf("LookupHost = %q, %v", got, err)
	}
	mxs, err := r.LookupMXOrImplicit(ctx, "mx.example.com")
	if err != nil || !slices.Equal(mxStrings(mxs), []string{"0 mx.example.com."}) {
		t.Errorf("LookupMXOrImplicit = %q, %v", mxStrings(mxs), err)
	}
	_, err = r.LookupAAAA(ctx, "v4.example")
	if de := dnsError(t, err); !de.IsNotFound {
		t.Errorf("LookupAAAA of a v4-only static name: got %v, want not found", err)
	}
	if s.Queries() != 0 {
		t.Errorf("static names caused %d queries", s.Queries())
	}
}

func TestCNAME(t *testing.T) {
	s := dnstest.Start(t, dnstest.Zone{
		"alias.example":    {CNAME: "host.example"},
		"host.example":     {A: []string{"192.0.2.1"}, TXT: []string{"hello"}},
		"dangling.example": {CNAME: "missing.example"},
	})
	r := s.Resolver(t)
	if got, err := r.LookupA(t.Context(), "alias.example"); err != nil || !slices.Equal(addrStrings(got), []string{"192.0.2.1"}) {
		t.Errorf("LookupA(alias) = %v, %v", got, err)
	}
	if got, err := r.LookupTXT(t.Context(), "alias.example"); err != nil || !slices.Equal(got, []string{"hello"}) {
		t.Errorf("LookupTXT(alias) = %q, %v", got, err)
	}
	_, err := r.LookupA(t.Context(), "dangling.example")
	if de := dnsError(t, err); !de.IsNotFound {
		t.Errorf("dangling CNAME: got %v, want not found", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := dnstest.Start(t, dnstest.Zone{
		"a.example": {A: []string{"192.0.2.1"}, TXT: []string{"a"}},
		"b.example": {AAAA: []string{"2001:db8::1"}},
	})
	r := newResolver(t, dns.Options{Servers: []string{s.Addr}, CacheSize: 2})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for _, name := range []string{"a.example", "b.example", "c.example"} {
				if _, err := r.LookupHost(t.Context(), name); (err == nil) == (name == "c.example") {
					t.Errorf("goroutine %d: LookupHost(%s): %v", i, name, err)
				}
				r.LookupTXT(t.Context(), name)
			}
		})
	}
	wg.Wait()
}

func TestNewOptions(t *testing.T) {
	if _, err := dns.New(dns.Options{Servers: []string{"not an address"}}); err == nil {
		t.Error("New accepted a malformed server")
	}
	if _, err := dns.New(dns.Options{Static: map[string][]netip.Addr{"bad..name": nil}}); err == nil {
		t.Error("New accepted a malformed static name")
	}
	if _, err := dns.New(dns.Options{Servers: []string{"192.0.2.53", "[2001:db8::53]:5353"}}); err != nil {
		t.Errorf("New: %v", err)
	}
	if _, err := dns.New(dns.Options{}); err != nil { // the system's configuration
		t.Errorf("New: %v", err)
	}
}

// localhost and names under it are answered without a query (RFC 6761 §6.3).
func TestLocalhost(t *testing.T) {
	srv := dnstest.Start(t, dnstest.Zone{})
	r := srv.Resolver(t)
	for _, name := range []string{"localhost", "LocalHost.", "mail.localhost"} {
		addrs, err := r.LookupIPAddr(context.Background(), name)
		if err != nil || len(addrs) != 2 {
			t.Errorf("%s: %v %v", name, addrs, err)
		}
		mxs, err := r.LookupMXOrImplicit(context.Background(), name)
		if err != nil || len(mxs) != 1 {
			t.Errorf("%s MX: %v %v", name, mxs, err)
		}
		var de *net.DNSError
		if _, err := r.LookupTXT(context.Background(), name); !errors.As(err, &de) || !de.IsNotFound {
			t.Errorf("%s TXT: %v", name, err)
		}
	}
	if n := srv.Queries(); n != 0 {
		t.Errorf("%d queries reached the server", n)
	}
}
