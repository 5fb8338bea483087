package outbound

import (
	"crypto/x509"
	"sync"
	"time"
)

// maxIdlePerKey bounds the idle connections kept for one destination; a burst of parallel
// transactions leaves at most this many behind.
const maxIdlePerKey = 8

// poolKey is what a session can be reused for: the same peer, greeted with the same name, in
// the same protocol, under the same TLS policy.
type poolKey struct {
	addr       string
	ehlo       string
	lmtp       bool
	requireTLS bool
	verifyTLS  bool
	serverName string
	roots      *x509.CertPool
}

func keyFor(addr string, h Host) poolKey {
	return poolKey{addr: addr, ehlo: h.EHLOHost, lmtp: h.LMTP, requireTLS: h.RequireTLS,
		verifyTLS: h.VerifyTLS, serverName: h.TLSServerName, roots: h.RootCAs}
}

// pool holds sessions between transactions. A session enters it after RSET and leaves it for
// the next transaction to the same key, or with QUIT once it has idled ReuseIdle.
type pool struct {
	mu     sync.Mutex
	idle   map[poolKey][]*idleSession
	closed bool
	// recovered counts panics in idle timers.
	recovered func(any)
}

type idleSession struct {
	s     *session
	timer *time.Timer
}

func newPool(recovered func(any)) *pool {
	return &pool{idle: map[poolKey][]*idleSession{}, recovered: recovered}
}

// get takes the most recently used idle session for key, or returns nil.
func (p *pool) get(key poolKey) *session {
	p.mu.Lock()
	defer p.mu.Unlock()
	for l := p.idle[key]; len(l) > 0; {
		is := l[len(l)-1]
		l = l[:len(l)-1]
		if len(l) == 0 {
			delete(p.idle, key)
		} else {
			p.idle[key] = l
		}
		if is.timer.Stop() {
			return is.s
		}
		// Its timer has fired and waits for the lock to end the session, which it will
		// not find now: end it here.
		is.s.close()
	}
	return nil
}

// put keeps s for reuse for idle; it reports false (and keeps nothing) when the pool is
// closed or full, and the caller ends the session.
func (p *pool) put(s *session, idle time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle[s.key]) >= maxIdlePerKey {
		return false
	}
	is := &idleSession{s: s}
	is.timer = time.AfterFunc(idle, func() {
		defer func() {
			if r := recover(); r != nil {
				p.recovered(r)
			}
		}()
		if p.remove(is) {
			is.s.quit()
		}
	})
	p.idle[s.key] = append(p.idle[s.key], is)
	return true
}

func (p *pool) remove(is *idleSession) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.idle[is.s.key]
	for i, x := range l {
		if x == is {
			p.idle[is.s.key] = append(l[:i:i], l[i+1:]...)
			if len(p.idle[is.s.key]) == 0 {
				delete(p.idle, is.s.key)
			}
			return true
		}
	}
	return false
}

// close ends every idle session with QUIT, in parallel, and refuses sessions from then on.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	var all []*session
	for _, l := range p.idle {
		for _, is := range l {
			// A timer that has fired already will not find its session: it is ours too.
			is.timer.Stop()
			all = append(all, is.s)
		}
	}
	p.idle = map[poolKey][]*idleSession{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() {
			defer func() {
				if r := recover(); r != nil {
					p.recovered(r)
				}
			}()
			s.quit()
		})
	}
	wg.Wait()
}

// size is the number of idle sessions, for tests.
func (p *pool) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.idle {
		n += len(l)
	}
	return n
}
