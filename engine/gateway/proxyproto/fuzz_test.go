package proxyproto

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzRead feeds arbitrary bytes to the parser: it must not panic, must not
// consume more than the header, and what it accepts must describe itself
// again (a v1 or v2 rendering of the header parses back to the same
// addresses).
func FuzzRead(f *testing.F) {
	for _, s := range []string{
		"PROXY TCP4 203.0.113.9 192.0.2.1 41000 25\r\nEHLO x\r\n",
		"PROXY TCP6 2001:db8::9 2001:db8::1 65535 0\r\n",
		"PROXY UNKNOWN\r\n",
		"PROXY TCP4 1.2.3.4",
		"EHLO x\r\n",
		string(v2(cmdProxy, famInet<<4|protoStream, []byte{1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2, 4, 0, 1, 'x'})),
		string(v2(cmdProxy, famInet6<<4|protoStream, make([]byte, 40))),
		string(v2(cmdLocal, 0, nil)) + "\x16\x03",
		string(v2(cmdProxy, famUnix<<4|protoStream, make([]byte, 216))),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReader(bytes.NewReader(data))
		h, err := Read(br)
		if err != nil {
			if h != nil {
				t.Fatal("a header with an error")
			}
			if !errors.Is(err, ErrNotProxy) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) && !isFormatError(err) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		rest, _ := io.ReadAll(br)
		used := len(data) - len(rest)
		if used <= 0 || !bytes.Equal(data[used:], rest) {
			t.Fatalf("consumed %d of %d bytes", used, len(data))
		}
		if (h.Source == nil) != (h.Destination == nil) {
			t.Fatalf("one address without the other: %+v", h)
		}
		for _, render := range []func() ([]byte, error){
			func() ([]byte, error) { return h.AppendV1(nil) },
			func() ([]byte, error) { return h.AppendV2(nil, nil) },
		} {
			wire, err := render()
			if err != nil {
				t.Fatalf("rendering %+v: %v", h, err)
			}
			again, err := Read(bufio.NewReader(bytes.NewReader(wire)))
			if err != nil {
				t.Fatalf("%q does not parse back: %v", wire, err)
			}
			if !sameAddr(again.Source, h.Source) || !sameAddr(again.Destination, h.Destination) {
				t.Fatalf("%q parses back to %+v, not %+v", wire, again, h)
			}
		}
	})
}
