package luabind

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/koukan/koukan/engine/auth"
	lua "github.com/yuin/gopher-lua"
	luar "layeh.com/gopher-luar"
)

// Resolver is what koukan.dns, koukan.spf and koukan.dkim ask; engine/dns.Resolver is one.
type Resolver interface {
	auth.Resolver
	LookupA(ctx context.Context, host string) ([]netip.Addr, error)
	LookupAAAA(ctx context.Context, host string) ([]netip.Addr, error)
}

// Offline is a Resolver that knows no names: `koukan check` smoke-runs scripts with it, so
// that a check never waits on the network.
type Offline struct{}

func (Offline) notFound(name string) error {
	return &net.DNSError{Err: "no such host (offline check)", Name: name, IsNotFound: true}
}
func (o Offline) LookupMX(_ context.Context, n string) ([]*net.MX, error) { return nil, o.notFound(n) }
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

// MX is one mail exchanger as koukan.dns.mx gives it.
type MX struct {
	Host string `luar:"host"`
	Pref int    `luar:"pref"`
}

// dnsError is the second result of a failed koukan.dns lookup: "not found" (NXDOMAIN or no
// records of the type), "timeout", or "temporary" (SERVFAIL and the like), so scripts can
// tell a missing record from a lookup to retry.
func dnsError(err error) lua.LString {
	var de *net.DNSError
	switch {
	case errors.As(err, &de) && de.IsNotFound:
		return "not found"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &de) && de.IsTimeout:
		return "timeout"
	}
	return "temporary"
}

// dnsModule is koukan.dns: mx, a, aaaa, txt and ptr, each returning a list, or nil and why.
func (rt *Runtime) dnsModule(s *state) map[string]lua.LGFunction {
	r := rt.resolver()
	lookup := func(f func(ctx context.Context, name string) (any, error)) lua.LGFunction {
		return func(L *lua.LState) int {
			name := L.CheckString(1)
			v, err := f(s.call.ctx, name)
			if err != nil {
				L.Push(lua.LNil)
				L.Push(dnsError(err))
				return 2
			}
			L.Push(luar.New(L, v))
			return 1
		}
	}
	addrs := func(as []netip.Addr) []string {
		out := make([]string, len(as))
		for i, a := range as {
			out[i] = a.String()
		}
		return out
	}
	return map[string]lua.LGFunction{
		"mx": lookup(func(ctx context.Context, name string) (any, error) {
			mxs, err := r.LookupMX(ctx, name)
			out := make([]MX, len(mxs))
			for i, m := range mxs {
				out[i] = MX{Host: trimDot(m.Host), Pref: int(m.Pref)}
			}
			return out, err
		}),
		"a": lookup(func(ctx context.Context, name string) (any, error) {
			as, err := r.LookupA(ctx, name)
			return addrs(as), err
		}),
		"aaaa": lookup(func(ctx context.Context, name string) (any, error) {
			as, err := r.LookupAAAA(ctx, name)
			return addrs(as), err
		}),
		"txt": lookup(func(ctx context.Context, name string) (any, error) { return r.LookupTXT(ctx, name) }),
		"ptr": lookup(func(ctx context.Context, ip string) (any, error) {
			names, err := r.LookupAddr(ctx, ip)
			for i := range names {
				names[i] = trimDot(names[i])
			}
			return names, err
		}),
	}
}

func trimDot(s string) string {
	if n := len(s); n > 1 && s[n-1] == '.' {
		return s[:n-1]
	}
	return s
}
