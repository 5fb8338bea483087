package dns

import (
	"container/list"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// maxNegativeTTL caps how long NXDOMAIN/NODATA is remembered, so a record
// that has just been published (a new DKIM key, an SPF fix) is seen soon.
const maxNegativeTTL = 5 * 60

// cacheKey identifies one question; the name is the canonical FQDN so that
// differently spelled queries for the same name share an entry.
type cacheKey struct {
	name  string
	qtype uint16
}

// entry is an answer reduced to what the lookups need: the records of the
// asked type (after CNAMEs), or the rcode of a negative answer.
type entry struct {
	key     cacheKey
	rrs     []mdns.RR
	rcode   int
	server  string
	expires time.Time
}

// cache is a size-bounded LRU of answers. A nil *cache is a disabled cache,
// which keeps the callers free of "is caching on" checks.
type cache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *entry, most recently used first
	byKey map[cacheKey]*list.Element
}

func newCache(max int) *cache {
	return &cache{max: max, order: list.New(), byKey: make(map[cacheKey]*list.Element)}
}

// get returns a live entry; entries are shared, so callers must not modify rrs.
func (c *cache) get(k cacheKey) (*entry, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[k]
	if !ok {
		return nil, false
	}
	e := el.Value.(*entry)
	if !time.Now().Before(e.expires) {
		c.order.Remove(el)
		delete(c.byKey, k)
		return nil, false
	}
	c.order.MoveToFront(el)
	return e, true
}

// put stores e for ttl seconds; a zero TTL means the answer must not be reused.
func (c *cache) put(e *entry, ttl uint32) {
	if c == nil || ttl == 0 {
		return
	}
	e.expires = time.Now().Add(time.Duration(ttl) * time.Second)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[e.key]; ok {
		el.Value = e
		c.order.MoveToFront(el)
		return
	}
	c.byKey[e.key] = c.order.PushFront(e)
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.byKey, oldest.Value.(*entry).key)
	}
}
