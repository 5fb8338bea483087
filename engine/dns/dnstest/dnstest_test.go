package dnstest_test

import (
	"strings"
	"testing"

	"github.com/koukan/koukan/engine/dns/dnstest"
	mdns "github.com/miekg/dns"
)

// exchange asks s directly, bypassing engine/dns, to check the wire format.
func exchange(t *testing.T, s *dnstest.Server, network, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	q := new(mdns.Msg).SetQuestion(mdns.Fqdn(name), qtype)
	reply, _, err := (&mdns.Client{Net: network}).Exchange(q, s.Addr)
	if err != nil {
		t.Fatalf("%s query for %s: %v", network, name, err)
	}
	return reply
}

func TestLongTXTIsSplitAndTruncatedOnUDP(t *testing.T) {
	long := strings.Repeat("x", 600)
	s := dnstest.Start(t, dnstest.Zone{"example.com": {TXT: []string{long}}})

	// No EDNS in the query: 512 bytes is all UDP may carry.
	if reply := exchange(t, s, "udp", "example.com", mdns.TypeTXT); !reply.Truncated {
		t.Error("UDP answer of over 512 bytes is not truncated")
	}
	reply := exchange(t, s, "tcp", "example.com", mdns.TypeTXT)
	if reply.Truncated || len(reply.Answer) != 1 {
		t.Fatalf("TCP answer: %v", reply)
	}
	var lens []int
	for _, part := range reply.Answer[0].(*mdns.TXT).Txt {
		lens = append(lens, len(part))
	}
	if len(lens) != 3 || lens[0] != 255 || lens[1] != 255 || lens[2] != 90 {
		t.Errorf("character-string lengths = %v, want [255 255 90]", lens)
	}
	if s.Queries() != 2 {
		t.Errorf("Queries() = %d, want 2", s.Queries())
	}
}

func TestNegativeAnswers(t *testing.T) {
	s := dnstest.Start(t, dnstest.Zone{"Exists.Example.": {A: []string{"192.0.2.1"}, TTL: 30}})
	nodata := exchange(t, s, "udp", "exists.example", mdns.TypeMX)
	if nodata.Rcode != mdns.RcodeSuccess || len(nodata.Answer) != 0 || len(nodata.Ns) != 1 {
		t.Errorf("NODATA reply: %v", nodata)
	} else if soa, ok := nodata.Ns[0].(*mdns.SOA); !ok || soa.Minttl != 30 {
		t.Errorf("NODATA authority = %v, want an SOA with minimum 30", nodata.Ns[0])
	}
	nx := exchange(t, s, "udp", "missing.example", mdns.TypeA)
	if nx.Rcode != mdns.RcodeNameError || len(nx.Ns) != 1 {
		t.Errorf("NXDOMAIN reply: %v", nx)
	}
}

func TestReverseName(t *testing.T) {
	for ip, want := range map[string]string{
		"127.0.0.1":   "1.0.0.127.in-addr.arpa",
		"2001:db8::1": "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
	} {
		if got := dnstest.ReverseName(ip); got != want {
			t.Errorf("ReverseName(%s) = %s, want %s", ip, got, want)
		}
	}
}
