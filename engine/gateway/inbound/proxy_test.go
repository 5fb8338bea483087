package inbound

import (
	"net"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/koukan/koukan/engine/gateway/proxyproto"
	"github.com/koukan/koukan/engine/rest/resttest"
)

func proxied(t *testing.T, e *env, header []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(header); err != nil {
		t.Fatal(err)
	}
	return c
}

func tcpAddr(s string) *net.TCPAddr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		panic(err)
	}
	return a
}

func TestProxyProtocol(t *testing.T) {
	t.Parallel()
	e := start(t, Options{ProxyProtocolTimeout: 500 * time.Millisecond, MaxConnsPerIP: 1}, resttest.Options{})

	h1 := proxyproto.Header{Source: tcpAddr("203.0.113.9:41000"), Destination: tcpAddr("192.0.2.1:25")}
	v1, _ := h1.AppendV1(nil)
	c1 := smtp.NewClient(proxied(t, e, v1))
	if err := c1.Hello("client.test"); err != nil {
		t.Fatal(err)
	}

	// Another client behind the same proxy: its own address, its own
	// limit.
	h2 := proxyproto.Header{Source: tcpAddr("[2001:db8::9]:5000"), Destination: tcpAddr("[2001:db8::1]:587")}
	v2, _ := h2.AppendV2(nil, []byte{0x04, 0, 0}) // a NOOP TLV
	c2 := smtp.NewClient(proxied(t, e, v2))
	if err := c2.Hello("client2.test"); err != nil {
		t.Fatal(err)
	}

	// The first client's address is at its limit.
	r := newRaw(t, proxied(t, e, v1))
	r.expect("421 4.7.0")

	for _, c := range []*smtp.Client{c1, c2} {
		if _, err := send(c, "a@example.com", []string{"b@example.com"}, "x\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	txs := e.finished(2)
	for i, want := range [][2]string{{"203.0.113.9:41000", "192.0.2.1:25"}, {"2001:db8::9:5000", "2001:db8::1:587"}} {
		st := txs[i].Tx
		got := [2]string{st.RemoteHost.Host + ":" + itoa(st.RemoteHost.Port), st.LocalHost.Host + ":" + itoa(st.LocalHost.Port)}
		if got != want {
			t.Errorf("transaction %d: remote/local %v, want %v", i, got, want)
		}
	}

	// No header, a garbage one, or one too late: closed without a word.
	for _, send := range []string{"EHLO client.test\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", "PROXY TCP4 "} {
		r := newRaw(t, proxied(t, e, []byte(send)))
		r.closed()
	}
	c1.Quit()
	c2.Quit()
}
