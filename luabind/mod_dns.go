package luabind

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/koukan/koukan/engine/auth"
	"github.com/koukan/koukan/engine/dns"
	lua "github.com/yuin/gopher-lua"
)

// Resolver is what koukan.dns, koukan.spf and koukan.dkim ask; engine/dns.Resolver is one.
type Resolver interface {
	auth.Resolver
	LookupA(ctx context.Context, host string) ([]netip.Addr, error)
	LookupAAAA(ctx context.Context, host string) ([]netip.Addr, error)
	// LookupMXOrImplicit gives the mail exchangers of a domain by RFC 5321 5.1: a domain
	// without MX records is its own (an implicit MX of preference 0); a null MX (RFC 7505)
	// is an error wrapping dns.ErrNullMX.
	LookupMXOrImplicit(ctx context.Context, domain string) ([]*net.MX, error)
}

// Offline is a Resolver that knows no names: `koukan check` smoke-runs scripts with it, so
// that a check never waits on the network.
type Offline struct{}

func (Offline) notFound(name string) error {
	return &net.DNSError{Err: "no such host (offline check)", Name: name, IsNotFound: true}
}
func (o Offline) LookupMX(_ context.Context, n string) ([]*net.MX, error) { return nil, o.notFound(n) }
func (o Offline) LookupMXOrImplicit(_ context.Context, n string) ([]*net.MX, error) {
	return nil, o.notFound(n)
}
func (o Offline) LookupTXT(_ context.Context, n string) ([]string, error) { return nil, o.notFound(n) }
func (o Offline) LookupA(_ context.Context, n string) ([]netip.Addr, error) {
	return nil, o.notFound(n)
}
func (o Offline) LookupAAAA(_ context.Context, n string) ([]netip.Addr, error) {
	return nil, o.notFound(n)
}
func (o Offline) LookupAddr(_ context.Context, n string) ([]string, error) { return nil, o.notFound(n) }
func (o Offline) LookupIPAddr(_ context.Context, n string) ([]net.IPAddr, error) {
	return nil, o.notFound(n)
}

// resolver is the configured Resolver, or Offline when there is none.
func (rt *Runtime) resolver() Resolver {
	if rt.opts.Services.Resolver != nil {
		return rt.opts.Services.Resolver
	}
	return Offline{}
}

// dnsError is the second result of a failed koukan.dns lookup: "not found" (NXDOMAIN or no
// records of the type), "timeout", or "temporary" (SERVFAIL and the like), so scripts can
// tell a missing record from a lookup to retry.
func dnsError(err error) lua.LString {
	var de *net.DNSError
	switch {
	case errors.Is(err, dns.ErrNullMX):
		return "null mx"
	case errors.As(err, &de) && de.IsNotFound:
		return "not found"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &de) && de.IsTimeout:
		return "timeout"
	}
	return "temporary"
}

// dnsModule is koukan.dns: mx, mail_hosts, a, aaaa, txt and ptr, each returning a list
// (a plain table, which ipairs walks and tx:set_signal takes), or nil and why.
func (rt *Runtime) dnsModule(s *state) map[string]lua.LGFunction {
	r := rt.resolver()
	lookup := func(f func(ctx context.Context, name string) ([]any, error)) lua.LGFunction {
		return func(L *lua.LState) int {
			name := L.CheckString(1)
			ctx, cancel := s.call.netCtx()
			v, err := f(ctx, name)
			cancel()
			if err != nil {
				L.Push(lua.LNil)
				L.Push(dnsError(err))
				return 2
			}
			L.Push(toLua(L, v, false))
			return 1
		}
	}
	// mxList is MX records as {host, pref} tables, host without the trailing dot.
	mxList := func(mxs []*net.MX, err error) ([]any, error) {
		out := make([]any, len(mxs))
		for i, m := range mxs {
			out[i] = map[string]any{"host": trimDot(m.Host), "pref": int(m.Pref)}
		}
		return out, err
	}
	addrs := func(as []netip.Addr, err error) ([]any, error) {
		out := make([]any, len(as))
		for i, a := range as {
			out[i] = a.String()
		}
		return out, err
	}
	strs := func(ss []string, err error) ([]any, error) {
		out := make([]any, len(ss))
		for i, s := range ss {
			out[i] = trimDot(s)
		}
		return out, err
	}
	return map[string]lua.LGFunction{
		"mx": lookup(func(ctx context.Context, name string) ([]any, error) { return mxList(r.LookupMX(ctx, name)) }),
		// koukan.dns.mail_hosts(domain) is where mail for domain goes (RFC 5321 5.1): its MX
		// hosts by preference, or {host = domain, pref = 0} when it has none (the implicit
		// MX). It fails with "not found" when the domain does not exist (NXDOMAIN) and with
		// "null mx" when it accepts no mail (RFC 7505).
		"mail_hosts": lookup(func(ctx context.Context, domain string) ([]any, error) {
			return mxList(r.LookupMXOrImplicit(ctx, domain))
		}),
		"a":    lookup(func(ctx context.Context, name string) ([]any, error) { return addrs(r.LookupA(ctx, name)) }),
		"aaaa": lookup(func(ctx context.Context, name string) ([]any, error) { return addrs(r.LookupAAAA(ctx, name)) }),
		"txt": lookup(func(ctx context.Context, name string) ([]any, error) {
			txts, err := r.LookupTXT(ctx, name)
			out := make([]any, len(txts))
			for i, t := range txts {
				out[i] = t
			}
			return out, err
		}),
		"ptr": lookup(func(ctx context.Context, ip string) ([]any, error) { return strs(r.LookupAddr(ctx, ip)) }),
	}
}

func trimDot(s string) string {
	if n := len(s); n > 1 && s[n-1] == '.' {
		return s[:n-1]
	}
	return s
}
