package config

import (
	"net"
	"path/filepath"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Scripts configures the Lua runtime that runs every policy-bearing chain step (a Koukan
// extension: the reference loaded Python modules instead).
type Scripts struct {
	// Paths are directories searched in order for filters/, policies/ and matchers/; a
	// relative path is relative to the config file's directory ("scripts" next to it by
	// default). The scripts shipped in the binary are searched last unless Builtin is false.
	Paths   []string
	Builtin bool
	// CallTimeout is the deadline of one call into a script (1 s).
	CallTimeout time.Duration
	// PoolSize bounds the Lua states that run calls at once (32); a call waits for one.
	PoolSize int
	// MaxUses retires a state after that many calls (10000), bounding what a script can
	// accumulate in it.
	MaxUses int
	// Reload watches Paths and swaps in changed scripts that pass every check (true).
	Reload bool
	// PollInterval also rescans Paths this often, for file systems without change events;
	// 0 turns polling off.
	PollInterval time.Duration
}

// DNS configures the resolver of routing and of the koukan.dns Lua module (an extension).
type DNS struct {
	// Servers are "host:port" nameservers asked in order; empty uses /etc/resolv.conf.
	Servers []string
	// Timeout bounds one query to one server (2 s); a caller's deadline still wins.
	Timeout time.Duration
}

func defaultScripts() Scripts {
	return Scripts{Builtin: true, CallTimeout: time.Second, PoolSize: 32, MaxUses: 10000, Reload: true}
}

func scriptsFields(s *Scripts) []field {
	return []field{
		sub("paths", func(d *decoder, p path, n *yaml.Node) {
			s.Paths = nil
			d.list(p, n, func(i int, n *yaml.Node) {
				if dir, ok := text(d, p.item(strconv.Itoa(i)), n); ok {
					if !filepath.IsAbs(dir) && d.file != "" {
						dir = filepath.Join(filepath.Dir(d.file), dir)
					}
					s.Paths = append(s.Paths, dir)
				}
			})
		}),
		scalar("builtin", &s.Builtin, boolean),
		scalar("call_timeout", &s.CallTimeout, positiveSeconds),
		scalar("pool_size", &s.PoolSize, integer(1, 4096)),
		scalar("max_uses", &s.MaxUses, integer(1, maxInt)),
		scalar("reload", &s.Reload, boolean),
		scalar("poll_interval", &s.PollInterval, seconds),
	}
}

func dnsFields(c *DNS) []field {
	return []field{
		sub("servers", func(d *decoder, p path, n *yaml.Node) {
			d.list(p, n, func(i int, n *yaml.Node) {
				s, ok := text(d, p.item(strconv.Itoa(i)), n)
				if !ok {
					return
				}
				if _, _, err := net.SplitHostPort(s); err != nil {
					s = net.JoinHostPort(s, "53")
				}
				if host, _, _ := net.SplitHostPort(s); net.ParseIP(host) == nil {
					d.errorf(n, p.item(strconv.Itoa(i)), "expected an IP address with an optional :port, got %q", n.Value)
					return
				}
				c.Servers = append(c.Servers, s)
			})
		}),
		scalar("timeout", &c.Timeout, positiveSeconds),
	}
}
