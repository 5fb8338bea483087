package inbound

import (
	"net/netip"
	"sync"
	"time"
)

// authThrottle slows down and then stops password guessing: it counts failed AUTH attempts
// per client address, makes each failure's reply wait longer than the last, and once an
// address has failed max times, refuses its AUTH until it has been quiet for window.
// Refused attempts are not counted: the ban ends window after the last real failure.
//
// Memory is bounded: at most maxThrottled addresses are remembered, expired ones are
// dropped first when it is full, and an IPv6 client counts as its /64, which is what one
// client usually holds.
type authThrottle struct {
	max           int
	window, delay time.Duration
	now           func() time.Time

	mu      sync.Mutex
	entries map[netip.Prefix]*authFailures
	swept   time.Time // the last sweep for expired entries
}

type authFailures struct {
	n    int
	last time.Time
}

const (
	// maxThrottled bounds the addresses remembered (about 100 bytes each).
	maxThrottled = 10000
	// maxAuthDelay bounds the wait before a failure's reply.
	maxAuthDelay = 30 * time.Second
)

// newAuthThrottle counts max failures within window; max 0 turns it off (nil).
func newAuthThrottle(max int, window, delay time.Duration) *authThrottle {
	if max <= 0 {
		return nil
	}
	return &authThrottle{max: max, window: window, delay: delay, now: time.Now, entries: map[netip.Prefix]*authFailures{}}
}

// throttleKey is the unit of counting: an IPv4 address, an IPv6 /64.
func throttleKey(ip string) netip.Prefix {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Prefix{} // not an IP (a test's pipe): all such clients share one count
	}
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// blocked reports whether ip has failed too often lately.
func (t *authThrottle) blocked(ip string) bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[throttleKey(ip)]
	return e != nil && t.now().Sub(e.last) < t.window && e.n >= t.max
}

// failed records a failure of ip; it returns how many there have been lately and how long
// the reply to this one waits (delay, doubled per earlier failure, at most maxAuthDelay).
func (t *authThrottle) failed(ip string) (int, time.Duration) {
	if t == nil {
		return 0, 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now, key := t.now(), throttleKey(ip)
	e := t.entries[key]
	switch {
	case e == nil:
		t.makeRoom(now)
		e = &authFailures{}
		t.entries[key] = e
	case now.Sub(e.last) >= t.window:
		e.n = 0
	}
	e.n++
	e.last = now
	d := t.delay
	for i := 1; i < e.n && d < maxAuthDelay; i++ {
		d *= 2
	}
	return e.n, min(d, maxAuthDelay)
}

// makeRoom keeps the map under maxThrottled: expired entries go first (looked for at most
// once a second), then any one.
func (t *authThrottle) makeRoom(now time.Time) {
	if len(t.entries) < maxThrottled {
		return
	}
	if now.Sub(t.swept) >= time.Second {
		t.swept = now
		for k, e := range t.entries {
			if now.Sub(e.last) >= t.window {
				delete(t.entries, k)
			}
		}
	}
	for k := range t.entries {
		if len(t.entries) < maxThrottled {
			break
		}
		delete(t.entries, k)
	}
}
