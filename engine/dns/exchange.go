package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// ednsSize is the UDP payload size we advertise (the DNS Flag Day 2020
// value): big enough for typical SPF and DKIM answers, small enough to avoid
// IP fragmentation, which middleboxes drop.
const ednsSize = 1232

var errMismatch = errors.New("reply does not match the query")

// query asks each server in turn until one gives an answer (NOERROR or
// NXDOMAIN); timeouts, network errors and other rcodes move on to the next.
// name is only used in errors.
func (r *Resolver) query(ctx context.Context, name, fqdn string, qtype uint16) (*mdns.Msg, string, error) {
	q := new(mdns.Msg)
	q.SetQuestion(fqdn, qtype) // also sets RD: our servers are recursive resolvers
	q.SetEdns0(ednsSize, false)
	var lastErr error
	for _, server := range r.servers {
		q.Id = mdns.Id() // a fresh ID per server, so a late reply from the previous one is ignored
		reply, err := r.ask(ctx, server, q)
		if err == nil && (reply.Rcode == mdns.RcodeSuccess || reply.Rcode == mdns.RcodeNameError) {
			return reply, server, nil
		}
		if cerr := ctxErr(ctx); cerr != nil {
			return nil, server, &net.DNSError{Err: cerr.Error(), Name: name, Server: server,
				IsTimeout: true, IsTemporary: true, UnwrapErr: cerr}
		}
		if err != nil {
			var ne net.Error
			lastErr = &net.DNSError{Err: err.Error(), Name: name, Server: server,
				IsTimeout: errors.As(err, &ne) && ne.Timeout(), IsTemporary: true}
			continue
		}
		// SERVFAIL, and also REFUSED and the like: those mean our own
		// resolver is unwell or misconfigured, which is no reason to bounce
		// mail, so they are temporary too.
		lastErr = &net.DNSError{Err: "server misbehaving: " + mdns.RcodeToString[reply.Rcode],
			Name: name, Server: server, IsTemporary: true}
	}
	return nil, "", lastErr
}

// ctxErr is ctx.Err, except that it also reports a deadline that has
// passed but whose timer has not fired yet: the socket deadline set from it
// can beat the context's own timer.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// ask sends q over UDP and repeats it over TCP when the answer did not fit.
func (r *Resolver) ask(ctx context.Context, server string, q *mdns.Msg) (*mdns.Msg, error) {
	reply, err := r.exchange(ctx, "udp", server, q)
	if err != nil || !reply.Truncated {
		return reply, err
	}
	return r.exchange(ctx, "tcp", server, q)
}

// exchange runs one attempt, bounded by both the per-attempt timeout and ctx.
func (r *Resolver) exchange(ctx context.Context, network, server string, q *mdns.Msg) (*mdns.Msg, error) {
	deadline := time.Now().Add(r.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dialer := net.Dialer{Deadline: deadline}
	conn, err := dialer.DialContext(ctx, network, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	// A deadline is the only way to interrupt a blocked read, so a
	// cancellation is turned into one.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	wire, err := q.Pack()
	if err != nil {
		return nil, err
	}
	if network == "tcp" {
		return exchangeTCP(conn, q, wire)
	}
	return exchangeUDP(conn, q, wire)
}

func exchangeUDP(conn net.Conn, q *mdns.Msg, wire []byte) (*mdns.Msg, error) {
	if _, err := conn.Write(wire); err != nil {
		return nil, err
	}
	// Room for any datagram, as some servers ignore the size we advertise.
	buf := make([]byte, mdns.MaxMsgSize)
	for {
		// The socket is connected, so only the server's datagrams arrive.
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		// Garbage and replies to other questions are skipped, not fatal: a
		// spoofer must then guess ID and question instead of merely making
		// us give up on the server.
		reply := new(mdns.Msg)
		if reply.Unpack(buf[:n]) == nil && answers(q, reply) {
			return reply, nil
		}
	}
}

// exchangeTCP uses the RFC 1035 4.2.2 framing: a two-byte length prefix.
func exchangeTCP(conn net.Conn, q *mdns.Msg, wire []byte) (*mdns.Msg, error) {
	framed := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(wire)), uint16(len(wire)))
	if _, err := conn.Write(append(framed, wire...)); err != nil {
		return nil, err
	}
	var size [2]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(size[:]))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return nil, err
	}
	reply := new(mdns.Msg)
	if err := reply.Unpack(buf); err != nil {
		return nil, err
	}
	if !answers(q, reply) {
		return nil, errMismatch
	}
	return reply, nil
}

// answers reports whether reply is the response to q (RFC 5452 checks).
func answers(q, reply *mdns.Msg) bool {
	if !reply.Response || reply.Id != q.Id || len(reply.Question) != 1 {
		return false
	}
	a, b := q.Question[0], reply.Question[0]
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}
