package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

func readString(t *testing.T, s string) (*Header, string, error) {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(s))
	h, err := Read(br)
	rest, _ := io.ReadAll(br)
	return h, string(rest), err
}

func tcp(s string) *net.TCPAddr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		panic(err)
	}
	return a
}

func TestV1(t *testing.T) {
	t.Parallel()
	good := []struct {
		in       string
		src, dst string // "" for none
	}{
		{"PROXY TCP4 203.0.113.9 192.0.2.1 41000 25\r\n", "203.0.113.9:41000", "192.0.2.1:25"},
		{"PROXY TCP6 2001:db8::9 2001:db8::1 65535 0\r\n", "[2001:db8::9]:65535", "[2001:db8::1]:0"},
		{"PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n", "1.2.3.4:1", "[::1]:2"}, // a mapped address reads as IPv4
		{"PROXY UNKNOWN\r\n", "", ""},
		{"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", "", ""},
	}
	for _, c := range good {
		h, rest, err := readString(t, c.in+"EHLO x\r\n")
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if rest != "EHLO x\r\n" {
			t.Errorf("%q: left %q after the header", c.in, rest)
		}
		if h.Version != 1 {
			t.Errorf("%q: version %d", c.in, h.Version)
		}
		if got := addrString(h.Source); got != c.src {
			t.Errorf("%q: source %q, want %q", c.in, got, c.src)
		}
		if got := addrString(h.Destination); got != c.dst {
			t.Errorf("%q: destination %q, want %q", c.in, got, c.dst)
		}
	}

	badInputs := []string{
		"PROXY TCP4 203.0.113.9 192.0.2.1 41000 25\n",    // bare LF
		"PROXY TCP4 203.0.113.9 192.0.2.1 41000\r\n",     // a field short
		"PROXY TCP4 203.0.113.9  192.0.2.1 41000 25\r\n", // two spaces
		"PROXY TCP4 2001:db8::1 192.0.2.1 41000 25\r\n",  // family mismatch
		"PROXY TCP6 203.0.113.9 2001:db8::1 1 2\r\n",
		"PROXY TCP4 203.0.113.9 192.0.2.1 65536 25\r\n", // port range
		"PROXY TCP4 203.0.113.9 192.0.2.1 041000 25\r\n",
		"PROXY TCP4 203.0.113.9 192.0.2.1 +4 25\r\n",
		"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", // zone
		"PROXY UDP4 203.0.113.9 192.0.2.1 41000 25\r\n",
		"PROXY UNKNOWN \x01\r\n",
		"PROXY TCP4 " + strings.Repeat("1", 100) + "\r\n", // over 107 bytes
	}
	for _, in := range badInputs {
		_, _, err := readString(t, in)
		if _, ok := errors.AsType[*FormatError](err); !ok {
			t.Errorf("%q: got %v, want a FormatError", in, err)
		}
	}

	for _, in := range []string{"EHLO x\r\n", "PROXZ TCP4\r\n", "\x16\x03\x01", "P\r\n"} {
		if _, _, err := readString(t, in); !errors.Is(err, ErrNotProxy) {
			t.Errorf("%q: got %v, want ErrNotProxy", in, err)
		}
	}
	for _, in := range []string{"PROXY TCP4 1.2.3.4", "PRO"} {
		if _, _, err := readString(t, in); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%q: got %v, want ErrUnexpectedEOF", in, err)
		}
	}
}

func addrString(a *net.TCPAddr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func v2(cmd, fam byte, payload []byte) []byte {
	b := append([]byte{}, v2Signature...)
	b = append(b, 0x20|cmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
	return append(b, payload...)
}

func TestV2(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		h        Header
		tlvs     []byte
		src, dst string
	}{
		{"ipv4", Header{Source: tcp("203.0.113.9:41000"), Destination: tcp("192.0.2.1:25")}, nil, "203.0.113.9:41000", "192.0.2.1:25"},
		{"ipv6 with TLVs", Header{Source: tcp("[2001:db8::9]:1"), Destination: tcp("[2001:db8::1]:587")},
			[]byte{0x04, 0, 2, 'h', 'i', 0x20, 0, 0}, "[2001:db8::9]:1", "[2001:db8::1]:587"},
		{"local", Header{}, []byte{0x04, 0, 1, 0}, "", ""},
	} {
		wire, err := c.h.AppendV2(nil, c.tlvs)
		if err != nil {
			t.Fatal(err)
		}
		h, rest, err := readString(t, string(wire)+"\x16\x03\x01")
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if rest != "\x16\x03\x01" {
			t.Errorf("%s: left %q", c.name, rest)
		}
		if h.Version != 2 || addrString(h.Source) != c.src || addrString(h.Destination) != c.dst {
			t.Errorf("%s: got %+v", c.name, h)
		}
	}

	ipv4 := []byte{203, 0, 113, 9, 192, 0, 2, 1, 0xa0, 0x28, 0, 25}
	unix := make([]byte, 216)
	// AF_UNIX and AF_UNSPEC proxies give no IP: the socket's addresses stand.
	for _, in := range [][]byte{v2(cmdProxy, famUnix<<4|protoStream, unix), v2(cmdProxy, 0, []byte{1, 2, 3})} {
		h, _, err := readString(t, string(in))
		if err != nil || h.HasAddresses() {
			t.Errorf("%q: %+v, %v", in, h, err)
		}
	}

	badInputs := map[string][]byte{
		"version 1":       append(append(append([]byte{}, v2Signature...), 0x11, 0x11, 0, 12), ipv4...),
		"command 2":       v2(2, famInet<<4|protoStream, ipv4),
		"udp":             v2(cmdProxy, famInet<<4|protoDgram, ipv4),
		"family 4":        v2(cmdProxy, 4<<4|protoStream, ipv4),
		"short addresses": v2(cmdProxy, famInet6<<4|protoStream, ipv4),
		"truncated TLV":   v2(cmdProxy, famInet<<4|protoStream, append(append([]byte{}, ipv4...), 1, 0, 5, 'x')),
		"half a TLV":      v2(cmdProxy, famInet<<4|protoStream, append(append([]byte{}, ipv4...), 1, 0)),
		"no protocol":     v2(cmdProxy, famInet<<4, ipv4),
		"too long":        v2(cmdProxy, famInet<<4|protoStream, make([]byte, MaxV2Length+1)),
	}
	for name, in := range badInputs {
		if _, _, err := readString(t, string(in)); !isFormatError(err) {
			t.Errorf("%s: got %v, want a FormatError", name, err)
		}
	}
	if _, _, err := readString(t, string(v2(cmdProxy, famInet<<4|protoStream, ipv4))[:20]); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated: %v", err)
	}
	if _, _, err := readString(t, "\r\n\r\n\x00\r\nQUIX\nxxxxx"); !errors.Is(err, ErrNotProxy) {
		t.Errorf("bad signature: %v", err)
	}
}

func isFormatError(err error) bool {
	_, ok := errors.AsType[*FormatError](err)
	return ok
}

func TestAppendV1RoundTrip(t *testing.T) {
	t.Parallel()
	for _, h := range []Header{
		{Source: tcp("203.0.113.9:41000"), Destination: tcp("192.0.2.1:25")},
		{Source: tcp("[2001:db8::9]:1"), Destination: tcp("[2001:db8::1]:587")},
		{},
	} {
		wire, err := h.AppendV1(nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := readString(t, string(wire))
		if err != nil {
			t.Fatalf("%q: %v", wire, err)
		}
		if addrString(got.Source) != addrString(h.Source) || addrString(got.Destination) != addrString(h.Destination) {
			t.Errorf("%q: got %+v", wire, got)
		}
	}
	mixed := Header{Source: tcp("203.0.113.9:1"), Destination: tcp("[2001:db8::1]:2")}
	if _, err := mixed.AppendV1(nil); err == nil {
		t.Error("mixed families: no error")
	}
	if !bytes.HasPrefix(v2Signature, []byte("\r\n")) {
		t.Error("the signature")
	}
}
