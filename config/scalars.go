package config

import (
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// This file holds the parsers for single values; decode.go applies them to keys.

// text accepts any scalar but a boolean or null (a number is taken as written).
func text(d *decoder, p path, n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!bool" || isNull(n) {
		d.errorf(n, p, "expected a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// name accepts the name of a sender, tag, endpoint and the like: it may be a URL path segment.
func name(d *decoder, p path, n *yaml.Node) (string, bool) {
	s, ok := text(d, p, n)
	if ok && (s == "" || strings.ContainsAny(s, "/?#% \t\r\n")) {
		d.errorf(n, p, "expected a name without spaces or any of /?#%%, got %q", s)
		return "", false
	}
	return s, ok
}

// boolean accepts true/false and, like the PyYAML the reference used, yes/no/on/off.
func boolean(d *decoder, p path, n *yaml.Node) (bool, bool) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		d.errorf(n, p, "expected true or false, got %s", describe(n))
		return false, false
	}
	return b, true
}

// integer accepts a whole number in [lo, hi].
func integer(lo, hi int) parser[int] {
	return func(d *decoder, p path, n *yaml.Node) (int, bool) {
		var i int
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.errorf(n, p, "expected a whole number, got %s", describe(n))
			return 0, false
		}
		switch {
		case i >= lo && i <= hi:
			return i, true
		case hi == maxInt:
			d.errorf(n, p, "must be at least %d, got %d", lo, i)
		default:
			d.errorf(n, p, "must be between %d and %d, got %d", lo, hi, i)
		}
		return 0, false
	}
}

// integer64 accepts a whole number of at least lo, such as a size in bytes.
func integer64(lo int64) parser[int64] {
	return func(d *decoder, p path, n *yaml.Node) (int64, bool) {
		i, ok := integer(int(lo), maxInt)(d, p, n)
		return int64(i), ok
	}
}

// number accepts an int or float above lo.
func number(lo float64) parser[float64] {
	return func(d *decoder, p path, n *yaml.Node) (float64, bool) {
		f, ok := float(d, p, n, "a number")
		if ok && !(f > lo) {
			d.errorf(n, p, "must be more than %g, got %s", lo, n.Value)
			return 0, false
		}
		return f, ok
	}
}

const maxInt = math.MaxInt

// maxSeconds bounds durations far below time.Duration's overflow (about 292 years).
const maxSeconds = 100 * 365 * 24 * 3600

// seconds accepts a number of seconds, int or float, zero included.
func seconds(d *decoder, p path, n *yaml.Node) (time.Duration, bool) {
	f, ok := float(d, p, n, "a number of seconds")
	switch {
	case !ok:
		return 0, false
	case !(f >= 0):
		d.errorf(n, p, "must not be negative, got %s", n.Value)
	case f > maxSeconds:
		d.errorf(n, p, "is too large: %s seconds", n.Value)
	default:
		return time.Duration(f * float64(time.Second)), true
	}
	return 0, false
}

// positiveSeconds is seconds for periods and timeouts, where zero would mean "spin" or
// "give up at once".
func positiveSeconds(d *decoder, p path, n *yaml.Node) (time.Duration, bool) {
	t, ok := seconds(d, p, n)
	if ok && t == 0 {
		d.errorf(n, p, "must be more than 0 seconds")
		return 0, false
	}
	return t, ok
}

func float(d *decoder, p path, n *yaml.Node, what string) (float64, bool) {
	var f float64
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode || tag != "!!int" && tag != "!!float" || n.Decode(&f) != nil {
		d.errorf(n, p, "expected %s, got %s", what, describe(n))
		return 0, false
	}
	return f, true
}

// httpURL accepts an absolute http:// or https:// URL.
func httpURL(d *decoder, p path, n *yaml.Node) (string, bool) {
	s, ok := text(d, p, n)
	if !ok {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		d.errorf(n, p, "expected an http:// or https:// URL, got %q", s)
		return "", false
	}
	return s, true
}

// oneOf accepts one of the given words.
func oneOf(words ...string) parser[string] {
	return func(d *decoder, p path, n *yaml.Node) (string, bool) {
		s, ok := text(d, p, n)
		for _, w := range words {
			if ok && s == w {
				return s, true
			}
		}
		if ok {
			d.errorf(n, p, "expected one of %s, got %q", strings.Join(words, ", "), s)
		}
		return "", false
	}
}

// HostPort is a host name or IP address and a TCP port.
type HostPort struct {
	Host string
	Port int
}

// String joins host and port, bracketing IPv6 addresses.
func (h HostPort) String() string { return net.JoinHostPort(h.Host, strconv.Itoa(h.Port)) }

var port = integer(1, 65535)

// hostPortPair accepts the listener form [host, port]. A bracketed IPv6 host such as "[::]"
// loses its brackets.
func hostPortPair(d *decoder, p path, n *yaml.Node) (HostPort, bool) {
	if n.Kind != yaml.SequenceNode || len(n.Content) != 2 {
		d.errorf(n, p, "expected [host, port], got %s", describe(n))
		return HostPort{}, false
	}
	h, hostOK := text(d, p, deref(n.Content[0]))
	pt, portOK := port(d, p, deref(n.Content[1]))
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return HostPort{Host: h, Port: pt}, hostOK && portOK
}

// hostPortMap decodes the {host, port} form of destinations and static hosts; port defaults
// to 25.
func hostPortMap(d *decoder, p path, n *yaml.Node) HostPort {
	hp := HostPort{Port: 25}
	d.fields(p, n, scalar("host", &hp.Host, text).must(), scalar("port", &hp.Port, port))
	return hp
}
