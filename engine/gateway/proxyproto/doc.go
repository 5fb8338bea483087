// Package proxyproto reads the PROXY protocol header (HAProxy's versions 1
// and 2) that a load balancer or TCP proxy puts in front of a connection it
// forwards, so that the SMTP gateway behind it sees the client's address and
// not the proxy's. Koukan's policies key on the client address (the
// remote_host of a transaction: SPF, rDNS, per-IP limits), so without the
// header every connection would look like it came from the proxy.
//
// A Listener wraps a net.Listener. Each accepted connection must start with a
// header, which is read on a goroutine of its own within a timeout, so a
// client that sends nothing can hold neither Accept nor a slot for long;
// Accept returns only connections whose header was good, with RemoteAddr and
// LocalAddr taken from it.
//
// Invariants:
//
//   - A connection with a missing, late, malformed or oversized header is
//     closed and never returned: the header is the proxy's word on who the
//     client is, and a guess would be worse than a refusal. Garbage is not
//     passed through as data.
//   - Exactly the header is consumed; bytes after it (a TLS ClientHello, say)
//     are delivered by the returned connection's Read.
//   - A LOCAL header (v2), UNKNOWN (v1), or an address family the header does
//     not give an IP for (AF_UNSPEC, AF_UNIX) keeps the socket's own
//     addresses: that is what the proxy means by them (health checks, or an
//     origin it cannot describe). Datagram families are refused: a stream
//     listener cannot be proxying UDP.
//   - The parser never reads more than one header's worth of bytes it does
//     not need: a v1 line is at most 107 bytes, a v2 header at most
//     MaxV2Length bytes after its fixed 16.
//
// The proxy is trusted by construction: anyone who can connect to a
// Listener can claim any address, so only put one where the proxy is the
// only way in.
package proxyproto
