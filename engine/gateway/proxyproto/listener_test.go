package proxyproto

import (
	"bufio"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

func sameAddr(a, b *net.TCPAddr) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.IP.Equal(b.IP) && a.Port == b.Port
}

type drops struct {
	mu   sync.Mutex
	errs []error
}

func (d *drops) add(_ net.Addr, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.errs = append(d.errs, err)
}

func (d *drops) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.errs)
}

func listen(t *testing.T, opts Options) *Listener {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(inner, opts)
	t.Cleanup(func() { l.Close() })
	return l
}

func dial(t *testing.T, l net.Listener, send []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if len(send) > 0 {
		if _, err := c.Write(send); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

type accepted struct {
	c   net.Conn
	err error
}

func acceptAsync(l net.Listener) chan accepted {
	ch := make(chan accepted, 1)
	go func() {
		c, err := l.Accept()
		ch <- accepted{c, err}
	}()
	return ch
}

func TestListenerGoodHeaders(t *testing.T) {
	t.Parallel()
	l := listen(t, Options{Timeout: 2 * time.Second})
	h := Header{Source: tcp("203.0.113.9:41000"), Destination: tcp("192.0.2.1:25")}
	v1, _ := h.AppendV1(nil)
	h6 := Header{Source: tcp("[2001:db8::9]:5000"), Destination: tcp("[2001:db8::1]:587")}
	v2wire, _ := h6.AppendV2(nil, []byte{4, 0, 0})
	local, _ := (&Header{}).AppendV2(nil, nil)

	for _, c := range []struct {
		name     string
		wire     []byte
		src, dst string // "" for the socket's own
	}{
		{"v1", v1, "203.0.113.9:41000", "192.0.2.1:25"},
		{"v2", v2wire, "[2001:db8::9]:5000", "[2001:db8::1]:587"},
		{"v2 local", local, "", ""},
	} {
		ch := acceptAsync(l)
		client := dial(t, l, append(c.wire, "after the header"...))
		a := <-ch
		if a.err != nil {
			t.Fatalf("%s: %v", c.name, a.err)
		}
		pc := a.c.(*Conn)
		wantSrc, wantDst := c.src, c.dst
		if wantSrc == "" {
			wantSrc, wantDst = client.LocalAddr().String(), client.RemoteAddr().String()
		}
		if pc.RemoteAddr().String() != wantSrc || pc.LocalAddr().String() != wantDst {
			t.Errorf("%s: remote %s local %s, want %s %s", c.name, pc.RemoteAddr(), pc.LocalAddr(), wantSrc, wantDst)
		}
		buf := make([]byte, len("after the header"))
		if _, err := io.ReadFull(pc, buf); err != nil || string(buf) != "after the header" {
			t.Errorf("%s: read %q, %v", c.name, buf, err)
		}
		// The header's deadline is gone: the connection reads on.
		go client.Write([]byte("more"))
		pc.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadFull(pc, buf[:4]); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		pc.Close()
	}
}

func TestListenerDropsBadConnections(t *testing.T) {
	t.Parallel()
	d := &drops{}
	l := listen(t, Options{Timeout: 300 * time.Millisecond, OnDrop: d.add})
	ch := acceptAsync(l)

	garbage := dial(t, l, []byte("EHLO me\r\n"))
	slow := dial(t, l, []byte("PROXY TCP4 1.2.3.4 "))
	silent := dial(t, l, nil)
	for _, c := range []net.Conn{garbage, slow, silent} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := bufio.NewReader(c).ReadByte(); err == nil {
			t.Errorf("got %q, want the connection closed", n)
		}
	}
	if d.count() != 3 || l.Dropped() != 3 {
		t.Errorf("%d drops reported, %d counted; want 3", d.count(), l.Dropped())
	}

	// A good connection still gets through afterwards.
	h := Header{Source: tcp("198.51.100.7:1234"), Destination: tcp("192.0.2.1:25")}
	wire, _ := h.AppendV1(nil)
	dial(t, l, wire)
	select {
	case a := <-ch:
		if a.err != nil || a.c.RemoteAddr().String() != "198.51.100.7:1234" {
			t.Fatalf("accepted %v, %v", a.c.RemoteAddr(), a.err)
		}
		a.c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
	}
}

func TestListenerClose(t *testing.T) {
	t.Parallel()
	l := listen(t, Options{Timeout: time.Hour})
	ch := acceptAsync(l)
	c := dial(t, l, []byte("PROXY")) // pending, header incomplete
	time.Sleep(50 * time.Millisecond)
	done := make(chan struct{})
	go func() { l.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waits for a pending header")
	}
	if a := <-ch; a.err == nil {
		t.Error("Accept after Close: no error")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the pending connection was not closed")
	}
}
