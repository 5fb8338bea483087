package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
)

// Header is what a PROXY protocol header says about a connection.
type Header struct {
	// Version is 1 (the text form) or 2 (the binary form).
	Version int
	// Source is the client's address and Destination the address it
	// connected to, both nil when the header does not give them (LOCAL,
	// UNKNOWN, AF_UNSPEC, AF_UNIX): the socket's own addresses stand then.
	Source, Destination *net.TCPAddr
}

// HasAddresses reports whether the header gives the connection's addresses.
func (h *Header) HasAddresses() bool { return h.Source != nil && h.Destination != nil }

// Limits of the formats.
const (
	// maxV1 is the longest v1 line, CRLF included (the spec's 107).
	maxV1 = 107
	// MaxV2Length is the most address and TLV bytes a v2 header may carry
	// here. The format allows 65535; proxies send far less (addresses plus
	// a few TLVs), and every pending connection may hold this much.
	MaxV2Length = 4096
)

// v2Signature starts every v2 header.
var v2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// v1Prefix starts every v1 header.
var v1Prefix = []byte("PROXY ")

// ErrNotProxy is the error for a connection that does not start with a
// PROXY header at all.
var ErrNotProxy = errors.New("proxyproto: no PROXY protocol header")

// FormatError is a header that starts like one but is malformed.
type FormatError struct {
	Version int
	Reason  string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("proxyproto: bad v%d header: %s", e.Version, e.Reason)
}

func bad(v int, format string, args ...any) error {
	return &FormatError{Version: v, Reason: fmt.Sprintf(format, args...)}
}

// Read reads one header from r, consuming exactly its bytes. r's buffer must
// hold at least 107 bytes, the longest v1 line (bufio's default is 4096). An EOF before the
// header is complete is io.ErrUnexpectedEOF (io.EOF if r was empty).
func Read(r *bufio.Reader) (*Header, error) {
	first, err := r.Peek(1)
	if err != nil {
		return nil, err
	}
	switch first[0] {
	case v1Prefix[0]:
		return readV1(r)
	case v2Signature[0]:
		return readV2(r)
	}
	return nil, ErrNotProxy
}

// readV1 reads "PROXY TCP4 src dst sport dport\r\n" (or TCP6, or UNKNOWN
// followed by anything up to CRLF).
func readV1(r *bufio.Reader) (*Header, error) {
	// Peek, one more byte at a time, until LF: never consume past the line.
	var line []byte
	for n := 1; ; n++ {
		p, err := r.Peek(n)
		if err != nil {
			// The bytes before this one were checked already.
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if n <= len(v1Prefix) && p[n-1] != v1Prefix[n-1] {
			return nil, ErrNotProxy
		}
		if p[n-1] == '\n' {
			line = p
			break
		}
		if n >= maxV1 {
			return nil, bad(1, "no CRLF within %d bytes", maxV1)
		}
	}
	h, err := parseV1(line)
	if err != nil {
		return nil, err
	}
	_, _ = r.Discard(len(line))
	return h, nil
}

// parseV1 parses a whole v1 line, CRLF included.
func parseV1(line []byte) (*Header, error) {
	body, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return nil, bad(1, "the line does not end in CRLF")
	}
	body = body[len(v1Prefix):]
	fields := bytes.Split(body, []byte(" "))
	switch string(fields[0]) {
	case "UNKNOWN":
		// The proxy cannot describe the origin; whatever follows is to be
		// ignored, but it must still be text.
		for _, c := range body {
			if c < ' ' || c > '~' {
				return nil, bad(1, "a control or non-ASCII byte")
			}
		}
		return &Header{Version: 1}, nil
	case "TCP4", "TCP6":
	default:
		return nil, bad(1, "unknown protocol %q", printable(fields[0]))
	}
	if len(fields) != 5 {
		return nil, bad(1, "want 5 space-separated fields, got %d", len(fields))
	}
	v6 := string(fields[0]) == "TCP6"
	src, err1 := v1Addr(fields[1], v6)
	dst, err2 := v1Addr(fields[2], v6)
	sport, err3 := v1Port(fields[3])
	dport, err4 := v1Port(fields[4])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, err
	}
	return &Header{
		Version:     1,
		Source:      net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, sport)),
		Destination: net.TCPAddrFromAddrPort(netip.AddrPortFrom(dst, dport)),
	}, nil
}

func v1Addr(b []byte, v6 bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(string(b))
	switch {
	case err != nil:
		return a, bad(1, "address %q", printable(b))
	case a.Zone() != "":
		return a, bad(1, "address %q has a zone", printable(b))
	case v6 && !a.Is6():
		return a, bad(1, "TCP6 with address %q", printable(b))
	case !v6 && !a.Is4():
		return a, bad(1, "TCP4 with address %q", printable(b))
	}
	return a, nil
}

// v1Port is a decimal port with no sign and no leading zero.
func v1Port(b []byte) (uint16, error) {
	if len(b) == 0 || len(b) > 5 || (b[0] == '0' && len(b) > 1) {
		return 0, bad(1, "port %q", printable(b))
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, bad(1, "port %q", printable(b))
		}
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n > 65535 {
		return 0, bad(1, "port %q", printable(b))
	}
	return uint16(n), nil
}

// printable keeps error text free of what a client sent raw.
func printable(b []byte) string {
	if len(b) > 40 {
		b = b[:40]
	}
	return strconv.QuoteToASCII(string(b))
}

// v2 command, family and protocol values.
const (
	cmdLocal = 0x0
	cmdProxy = 0x1

	famUnspec = 0x0
	famInet   = 0x1
	famInet6  = 0x2
	famUnix   = 0x3

	protoUnspec = 0x0
	protoStream = 0x1
	protoDgram  = 0x2
)

// readV2 reads the 16-byte fixed part and the variable part it announces.
func readV2(r *bufio.Reader) (*Header, error) {
	fixed, err := r.Peek(16)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if !bytes.HasPrefix(v2Signature, fixed[:min(len(fixed), len(v2Signature))]) {
			return nil, ErrNotProxy
		}
		return nil, err
	}
	if !bytes.Equal(fixed[:12], v2Signature) {
		return nil, ErrNotProxy
	}
	verCmd, famProto := fixed[12], fixed[13]
	length := int(binary.BigEndian.Uint16(fixed[14:16]))
	if verCmd>>4 != 2 {
		return nil, bad(2, "version %d", verCmd>>4)
	}
	cmd := verCmd & 0xf
	if cmd != cmdLocal && cmd != cmdProxy {
		return nil, bad(2, "command %d", cmd)
	}
	if length > MaxV2Length {
		return nil, bad(2, "%d bytes after the fixed part, more than %d", length, MaxV2Length)
	}
	if _, err := r.Discard(16); err != nil {
		return nil, err
	}
	rest := make([]byte, length)
	if _, err := io.ReadFull(r, rest); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return parseV2(cmd, famProto, rest)
}

// parseV2 reads the addresses and checks the TLV framing after them.
func parseV2(cmd, famProto byte, rest []byte) (*Header, error) {
	h := &Header{Version: 2}
	fam, proto := famProto>>4, famProto&0xf
	if fam > famUnix || proto > protoDgram {
		return nil, bad(2, "address family/protocol byte %#02x", famProto)
	}
	if cmd == cmdLocal {
		// The proxy speaks for itself (a health check): no addresses, and
		// whatever it sent after the fixed part is to be skipped.
		return h, nil
	}
	if proto == protoDgram {
		return nil, bad(2, "a datagram protocol on a stream connection")
	}
	var addrLen int
	switch fam {
	case famInet:
		addrLen = 12
	case famInet6:
		addrLen = 36
	case famUnix:
		addrLen = 216
	}
	if fam != famUnspec && proto == protoUnspec {
		return nil, bad(2, "an address family without a protocol")
	}
	if len(rest) < addrLen {
		return nil, bad(2, "%d address bytes, want %d", len(rest), addrLen)
	}
	switch fam {
	case famInet:
		src := netip.AddrFrom4([4]byte(rest[0:4]))
		dst := netip.AddrFrom4([4]byte(rest[4:8]))
		h.Source = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, binary.BigEndian.Uint16(rest[8:10])))
		h.Destination = net.TCPAddrFromAddrPort(netip.AddrPortFrom(dst, binary.BigEndian.Uint16(rest[10:12])))
	case famInet6:
		src := netip.AddrFrom16([16]byte(rest[0:16]))
		dst := netip.AddrFrom16([16]byte(rest[16:32]))
		h.Source = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, binary.BigEndian.Uint16(rest[32:34])))
		h.Destination = net.TCPAddrFromAddrPort(netip.AddrPortFrom(dst, binary.BigEndian.Uint16(rest[34:36])))
	}
	if fam == famUnspec {
		// No addresses: the rest, if any, is not ours to interpret.
		return h, nil
	}
	if err := checkTLVs(rest[addrLen:]); err != nil {
		return nil, err
	}
	return h, nil
}

// checkTLVs checks that the bytes after the addresses are whole TLVs (type,
// 16-bit length, value). Their content is not used.
func checkTLVs(b []byte) error {
	for len(b) > 0 {
		if len(b) < 3 {
			return bad(2, "a truncated TLV")
		}
		n := int(binary.BigEndian.Uint16(b[1:3]))
		if len(b) < 3+n {
			return bad(2, "a TLV of %d bytes with %d left", n, len(b)-3)
		}
		b = b[3+n:]
	}
	return nil
}

// AppendV1 appends h as a v1 line; without addresses it is "PROXY
// UNKNOWN". It is what a proxy sends, for tests and tools.
func (h *Header) AppendV1(b []byte) ([]byte, error) {
	if !h.HasAddresses() {
		return append(b, "PROXY UNKNOWN\r\n"...), nil
	}
	src, dst := h.Source.AddrPort(), h.Destination.AddrPort()
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	proto := "TCP4"
	switch {
	case src.Addr().Is4() != dst.Addr().Is4():
		return nil, errors.New("proxyproto: source and destination families differ")
	case src.Addr().Is6():
		proto = "TCP6"
	}
	return fmt.Appendf(b, "PROXY %s %s %s %d %d\r\n", proto, src.Addr(), dst.Addr(), src.Port(), dst.Port()), nil
}

// AppendV2 appends h as a v2 header with the PROXY command (LOCAL without
// addresses) and then tlvs, which must be whole TLVs.
func (h *Header) AppendV2(b []byte, tlvs []byte) ([]byte, error) {
	b = append(b, v2Signature...)
	if !h.HasAddresses() {
		b = append(b, 0x20|cmdLocal, famUnspec<<4|protoUnspec)
		b = binary.BigEndian.AppendUint16(b, uint16(len(tlvs)))
		return append(b, tlvs...), nil
	}
	src, dst := h.Source.AddrPort(), h.Destination.AddrPort()
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	if src.Addr().Is4() != dst.Addr().Is4() {
		return nil, errors.New("proxyproto: source and destination families differ")
	}
	if len(tlvs) > MaxV2Length-36 {
		return nil, errors.New("proxyproto: too many TLV bytes")
	}
	if src.Addr().Is4() {
		b = append(b, 0x20|cmdProxy, famInet<<4|protoStream)
		b = binary.BigEndian.AppendUint16(b, uint16(12+len(tlvs)))
		s4, d4 := src.Addr().As4(), dst.Addr().As4()
		b = append(b, s4[:]...)
		b = append(b, d4[:]...)
	} else {
		b = append(b, 0x20|cmdProxy, famInet6<<4|protoStream)
		b = binary.BigEndian.AppendUint16(b, uint16(36+len(tlvs)))
		s16, d16 := src.Addr().As16(), dst.Addr().As16()
		b = append(b, s16[:]...)
		b = append(b, d16[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	return append(b, tlvs...), nil
}
