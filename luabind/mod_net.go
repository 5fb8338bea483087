package luabind

import (
	"fmt"
	"net/netip"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

func init() {
	extraModules["net"] = func(*Runtime, *state) map[string]lua.LGFunction { return netModule }
}

// netModule is koukan.net: IP address and network checks for matchers (network_address).
var netModule = map[string]lua.LGFunction{
	// koukan.net.parse_cidr(s) is the network s names, canonical ("10.0.0.0/8",
	// "2001:db8::/32"), or nil and why. A bare address is a network of one address; host
	// bits past the prefix are dropped ("10.1.2.3/8" is 10.0.0.0/8).
	"parse_cidr": func(L *lua.LState) int {
		p, err := parsePrefix(L.CheckString(1))
		if err != nil {
			return fail(L, err)
		}
		L.Push(lua.LString(p.String()))
		return 1
	},
	// koukan.net.cidr_contains(cidr, ip) tells whether ip is in the network cidr, or
	// returns nil and why when either does not parse. An IPv4 address written as IPv6
	// (::ffff:192.0.2.1) is the IPv4 address.
	"cidr_contains": func(L *lua.LState) int {
		p, err := parsePrefix(L.CheckString(1))
		if err != nil {
			return fail(L, err)
		}
		ip, err := parseIP(L.CheckString(2))
		if err != nil {
			return fail(L, err)
		}
		L.Push(lua.LBool(p.Contains(ip)))
		return 1
	},
}

// parseIP reads an address, without a zone, IPv4-mapped IPv6 as IPv4.
func parseIP(s string) (netip.Addr, error) {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "["), "]")
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("not an IP address: %q", s)
	}
	return ip.WithZone("").Unmap(), nil
}

// parsePrefix reads "address/bits" or a bare address, with the host bits cleared.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		ip, err := parseIP(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not a CIDR network or IP address: %q", s)
		}
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not a CIDR network: %q", s)
	}
	ip := p.Addr().WithZone("")
	if ip.Is4In6() && p.Bits() >= 96 {
		// ::ffff:192.0.2.0/120 is 192.0.2.0/24.
		return netip.PrefixFrom(ip.Unmap(), p.Bits()-96).Masked(), nil
	}
	return netip.PrefixFrom(ip, p.Bits()).Masked(), nil
}
