package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/koukan/koukan/engine/store"
	"gopkg.in/yaml.v3"
)

// Router is a validated router.yaml (reference §10.1). Defaults are filled in.
type Router struct {
	Global        RouterGlobal
	RestListener  RestListener
	Storage       Storage
	Senders       []Sender
	RestEndpoints []RestEndpoint
	Endpoints     []Endpoint
	Modules       Modules
	Scripts       Scripts
	DNS           DNS
	Logging       Logging
}

// RouterGlobal is the global section of router.yaml.
type RouterGlobal struct {
	// Dequeue picks up retries, recovered transactions and notifications in the
	// background (true).
	Dequeue  bool
	Executor RouterExecutors
	// MailerDaemonMailbox is the From of DSNs and names their domain; it is required when an
	// endpoint sends notifications.
	MailerDaemonMailbox string
	// RestIDEntropy is the number of random bytes in a transaction id (16).
	RestIDEntropy int
}

// RouterExecutors bounds the router's work. The reference's rest pool and watchdogs are
// ignored: REST requests, hanging GETs included, are goroutines bounded by the listener,
// and the chain's timeouts bound each attempt.
type RouterExecutors struct {
	Output Executor
}

// Executor bounds a worker pool.
type Executor struct {
	// MaxInflight is the number of concurrent jobs (256 for output): the dequeue loop
	// starts no more attempts, so a replica leases no more than it runs.
	MaxInflight int
}

// Listener is where a server listens, with TLS when Cert and Key are set (both or neither).
type Listener struct {
	Addr      HostPort
	Cert, Key string
}

// RestAuth is who may call a REST listener (docs/security.md); the zero value lets anyone
// who can connect do anything, as the reference did.
type RestAuth struct {
	// APIKeysFile names the callers and the keys or client certificates they call with;
	// "" checks no keys.
	APIKeysFile string
	// ClientCA requires of every client a certificate signed by it (mutual TLS); it needs
	// the listener's cert and key.
	ClientCA string
}

// RestListener is the router's HTTP listener.
type RestListener struct {
	Listener
	RestAuth
	// SessionURI is the base URI of this replica, for Location headers and redirects.
	SessionURI string
	// ServiceURI is the cluster alias used in finalized blob URIs (SessionURI).
	ServiceURI string
	// ChunkSize is how many bytes of a blob PUT go to the database per write (1 MiB).
	ChunkSize int
	// MaxBodySize bounds a request body, a blob, and so a message (64 MiB; not a reference
	// key). Larger ones get 413.
	MaxBodySize int
}

// Storage is where the router keeps transactions.
type Storage struct {
	// Location is storage.url, parsed; SQLAlchemy URLs are accepted.
	Location store.Location
	// SessionRefreshInterval is the lease heartbeat (30 s); a session expires after 10 of
	// them and a replica aborts itself after 5 without a refresh.
	SessionRefreshInterval time.Duration
	// GCInterval is the garbage collection period; 0 means no garbage collection.
	GCInterval time.Duration
	// GCTTL is how long finished and abandoned transactions are kept (1 day).
	GCTTL time.Duration
	// BlobTxRefreshInterval is how often a blob upload refreshes its transaction (10 s).
	BlobTxRefreshInterval time.Duration
}

// Modules maps names used in chains and policies to the reference's Python plugins
// ("pkg.module[:fn]"); the Lua runtime maps them to scripts.
type Modules struct {
	SyncFilter            map[string]string
	RecipientRouterPolicy map[string]string
	TransactionMatcher    map[string]string
}

// Sender looks up a sender by name.
func (r *Router) Sender(name string) *Sender { return byName(r.Senders, name) }

// Endpoint looks up an endpoint (an output chain) by name.
func (r *Router) Endpoint(name string) *Endpoint { return byName(r.Endpoints, name) }

// RestEndpoint looks up a rest_endpoint by name.
func (r *Router) RestEndpoint(name string) *RestEndpoint { return byName(r.RestEndpoints, name) }

func byName[T interface{ name() string }](items []T, name string) *T {
	for i := range items {
		if items[i].name() == name {
			return &items[i]
		}
	}
	return nil
}

func (s Sender) name() string       { return s.Name }
func (e Endpoint) name() string     { return e.Name }
func (e RestEndpoint) name() string { return e.Name }

const mib = 1 << 20

func (d *decoder) router(p path, n *yaml.Node) *Router {
	return config(d, func() *Router { return d.routerConfig(p, n) })
}

func (d *decoder) routerConfig(p path, n *yaml.Node) *Router {
	r := &Router{
		Global: RouterGlobal{
			Dequeue: true,
			// The reference's pools were threads; output attempts here are goroutines that
			// mostly wait on the network, so far more of them may run.
			Executor:      RouterExecutors{Output: Executor{256}},
			RestIDEntropy: 16,
		},
		RestListener: RestListener{ChunkSize: mib, MaxBodySize: 64 * mib},
		Storage: Storage{
			SessionRefreshInterval: 30 * time.Second,
			GCTTL:                  24 * time.Hour,
			BlobTxRefreshInterval:  10 * time.Second,
		},
		Scripts: defaultScripts(),
		DNS:     DNS{Timeout: 2 * time.Second},
		Logging: defaultLogging,
	}
	g, l, s := &r.Global, &r.RestListener, &r.Storage
	d.fields(p, n,
		group("global",
			scalar("dequeue", &g.Dequeue, boolean),
			group("executor",
				ignored("rest", "REST requests are goroutines bounded by the listener, not a pool"),
				group("output",
					scalar("max_inflight", &g.Executor.Output.MaxInflight, integer(1, maxInt)),
					ignored("watchdog_timeout", "the chain's timeouts bound each attempt"))),
			scalar("mailer_daemon_mailbox", &g.MailerDaemonMailbox, mailbox),
			scalar("rest_id_entropy", &g.RestIDEntropy, integer(1, 64)),
			ignored("gc_interval", "garbage collection is set by storage.gc_interval"),
			ignored("tx_idle_timeout", "the reference never read it"),
		),
		sub("rest_listener", func(d *decoder, p path, n *yaml.Node) {
			d.fields(p, n, append(restListenerFields(&l.Listener, &l.RestAuth),
				scalar("session_uri", &l.SessionURI, httpURL).must(),
				scalar("service_uri", &l.ServiceURI, httpURL),
				scalar("chunk_size", &l.ChunkSize, integer(1, maxInt)),
				scalar("max_body_size", &l.MaxBodySize, integer(1, maxInt)))...)
			d.checkRestListener(p, n, &l.Listener, &l.RestAuth)
		}).must(),
		group("storage",
			scalar("url", &s.Location, storageURL).must(),
			scalar("session_refresh_interval", &s.SessionRefreshInterval, positiveSeconds),
			scalar("gc_interval", &s.GCInterval, seconds),
			scalar("gc_ttl", &s.GCTTL, positiveSeconds),
			scalar("blob_tx_refresh_interval", &s.BlobTxRefreshInterval, positiveSeconds),
			ignored("cache_ttl", "Koukan's version cache needs no expiry setting"),
		).must(),
		listOf("sender", &r.Senders, (*decoder).sender),
		listOf("rest_endpoint", &r.RestEndpoints, (*decoder).restEndpoint),
		listOf("endpoint", &r.Endpoints, (*decoder).endpoint),
		group("modules",
			sub("sync_filter", moduleMap(&r.Modules.SyncFilter)),
			sub("recipient_router_policy", moduleMap(&r.Modules.RecipientRouterPolicy)),
			sub("transaction_matcher", moduleMap(&r.Modules.TransactionMatcher)),
		),
		group("scripts", scriptsFields(&r.Scripts)...),
		group("dns", dnsFields(&r.DNS)...),
		sub("logging", func(d *decoder, p path, n *yaml.Node) { r.Logging = d.logging(p, n) }),
	)
	if l.ServiceURI == "" {
		l.ServiceURI = l.SessionURI
	}
	d.checkEndpointURLs(p.key("rest_endpoint"), r.RestEndpoints)
	if r.Scripts.Paths == nil {
		r.Scripts.Paths = []string{filepath.Join(filepath.Dir(d.file), "scripts")}
	}
	d.validateRouter(p, r)
	return r
}

// group decodes key as a mapping with the given fields.
func group(key string, fs ...field) field {
	return sub(key, func(d *decoder, p path, n *yaml.Node) { d.fields(p, n, fs...) })
}

// listenerFields are the keys every listener has; the address is remembered so that two
// listeners on one address are caught.
func listenerFields(l *Listener) []field {
	return []field{
		sub("addr", func(d *decoder, p path, n *yaml.Node) {
			if hp, ok := hostPortPair(d, p, deref(n)); ok {
				l.Addr = hp
				d.listens = append(d.listens, listenAddr{hp, d.pos(deref(n)), p})
			}
		}).must(),
		scalar("cert", &l.Cert, text),
		scalar("key", &l.Key, text),
	}
}

func (d *decoder) checkTLS(p path, n *yaml.Node, l *Listener) {
	if (l.Cert == "") != (l.Key == "") {
		d.errorf(deref(n), p, "cert and key go together: set both for TLS, or neither")
	}
}

// restListenerFields are the keys of a REST listener: a listener's and who may call it.
func restListenerFields(l *Listener, a *RestAuth) []field {
	return append(listenerFields(l),
		scalar("api_keys_file", &a.APIKeysFile, text),
		scalar("client_ca", &a.ClientCA, text))
}

func (d *decoder) checkRestListener(p path, n *yaml.Node, l *Listener, a *RestAuth) {
	d.checkTLS(p, n, l)
	switch {
	case a.ClientCA != "" && l.Cert == "":
		d.errorf(deref(n), p, "client_ca needs cert and key: client certificates are asked for in the TLS handshake")
	case a.APIKeysFile != "" && l.Cert == "" && !isLoopback(l.Addr.Host):
		d.warnf(deref(n), p, "API keys would cross the network in clear text: set cert and key")
	}
}

// isLoopback reports whether host is this machine only.
func isLoopback(host string) bool {
	ip, err := netip.ParseAddr(host)
	return host == "localhost" || err == nil && ip.IsLoopback()
}

func storageURL(d *decoder, p path, n *yaml.Node) (store.Location, bool) {
	s, ok := text(d, p, n)
	if !ok {
		return store.Location{}, false
	}
	loc, err := store.ParseURL(s)
	if err != nil { // the path already says where: drop ParseURL's own prefix
		d.errorf(n, p, "%s", strings.TrimPrefix(err.Error(), fmt.Sprintf("storage url %q: ", s)))
		return store.Location{}, false
	}
	return loc, true
}

// mailbox accepts an address of the form local@domain.
func mailbox(d *decoder, p path, n *yaml.Node) (string, bool) {
	s, ok := text(d, p, n)
	at := strings.LastIndexByte(s, '@')
	if ok && (at <= 0 || at == len(s)-1 || strings.ContainsAny(s, " <>")) {
		d.errorf(n, p, "expected a mailbox like mailer-daemon@example.com, got %q", s)
		return "", false
	}
	return s, ok
}

func moduleMap(dst *map[string]string) func(d *decoder, p path, n *yaml.Node) {
	return func(d *decoder, p path, n *yaml.Node) {
		*dst = map[string]string{}
		d.mapping(p, n, func(k, v *yaml.Node) {
			if s, ok := text(d, p.key(k.Value), v); ok {
				(*dst)[k.Value] = s
			}
		})
	}
}
