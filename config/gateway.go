package config

import (
	"time"

	"gopkg.in/yaml.v3"
)

// Gateway is a validated gateway.yaml (reference §10.2). Defaults are filled in.
type Gateway struct {
	// RestListener receives the router's transactions to send by SMTP; nil when the gateway
	// only listens for SMTP.
	RestListener *GatewayRestListener
	// SMTPHosts are the SMTP client settings, by the REST sender tag that selects them.
	SMTPHosts    map[string]SMTPHost
	SMTPServices []SMTPService
	RestOutputs  []RestOutput
	Logging      Logging
}

// GatewayRestListener is the gateway's HTTP listener. Its transactions live in memory.
type GatewayRestListener struct {
	Listener
	RestAuth
	// SessionURI is the base URI of Location headers.
	SessionURI    string
	RestIDEntropy int // random bytes in a transaction id (16)
	// Idle transactions are dropped after GCTxTTL (600 s), finished ones after GCDoneTTL
	// (10 s); the check runs every GCInterval (5 s).
	GCInterval, GCTxTTL, GCDoneTTL time.Duration
}

// SMTPHost is how the gateway sends mail for one REST sender tag.
type SMTPHost struct {
	// EHLOHost is the name given in EHLO; it should match the source address's rDNS.
	EHLOHost string
	// RequireTLS fails delivery to a peer that offers no STARTTLS; by default TLS is
	// opportunistic, as for MX delivery on the internet. CAFile also requires the peer's
	// certificate to verify against it, for the peer's IP address (smarthosts inside).
	RequireTLS bool
	CAFile     string
	// MaxReuse is how many messages one SMTP session carries (100) and ReuseIdle how long
	// an idle session is kept for the next message to the same host (5 s); 1 turns reuse off.
	MaxReuse  int
	ReuseIdle time.Duration
	// Timeout bounds the connection and each command (3300 s).
	Timeout time.Duration
	// DataTimeout bounds the wait for the answer to the end of the message (240 s).
	DataTimeout time.Duration
	// Protocol is "smtp" (the default) or "lmtp".
	Protocol string
	// EnableBDAT sends the body in BDAT chunks of ChunkSize bytes (65536) when the peer
	// offers CHUNKING.
	EnableBDAT bool
	ChunkSize  int
}

// SMTPService is one SMTP listener; it passes transactions to the router through a
// rest_output.
type SMTPService struct {
	Listener
	// Endpoint names the rest_output that transactions go to.
	Endpoint string
	// Sender and Tag are sent as the transaction's sender.
	Sender, Tag string
	// SMTPS speaks implicit TLS; without it, Cert and Key enable STARTTLS.
	SMTPS bool
	// AuthSecrets is a JSON file of {"username": "<hex sha256 of secret>"} for AUTH.
	AuthSecrets string
	// ProxyProtocolTimeout, when not 0, expects a PROXY protocol header within it.
	ProxyProtocolTimeout time.Duration
	// RcptTimeout (40 s) and DataTimeout (310 s) bound the wait for the router's response.
	RcptTimeout, DataTimeout time.Duration
	// Limits (Koukan extensions): MaxMessageSize (SIZE, 32 MiB), MaxRecipients per
	// transaction (1000), MaxConnections (1000) and MaxConnectionsPerIP (20) at once,
	// MaxErrors before the connection is closed (10), CommandTimeout (5 min, RFC 5321
	// 4.5.3.2) and IdleTimeout between commands (5 min).
	MaxMessageSize                      int64
	MaxRecipients                       int
	MaxConnections, MaxConnectionsPerIP int
	MaxErrors                           int
	CommandTimeout, IdleTimeout         time.Duration
	// AllowInsecureAuth offers AUTH without TLS (for loopback tests and trusted networks).
	AllowInsecureAuth bool
	// AUTH throttling (Koukan extension): after MaxAuthFailures (5) failed AUTH attempts
	// from one client address (an IPv6 /64), each within AuthFailureWindow (900 s) of the
	// last, AUTH is refused with 454 4.7.0 and the connection closed, until the address
	// has been quiet for AuthFailureWindow. Each failure's 535 waits AuthFailureDelay (1 s),
	// doubled per failure. max_auth_failures 0 turns the throttle off.
	MaxAuthFailures                     int
	AuthFailureWindow, AuthFailureDelay time.Duration
	// Hostname is the name in the greeting and EHLO reply (the machine's host name).
	Hostname string
}

// RestOutput is a REST endpoint (a router sender URL) that SMTP services send to.
type RestOutput struct {
	Name string
	Pos  Position
	// URL is the YAML key "endpoint".
	URL    string
	Verify TLSVerify
	Auth   ClientAuth
	// RcptTimeout is the deadline of each update (30 s); DataTimeout of each PUT (60 s).
	RcptTimeout, DataTimeout time.Duration
	// ChunkSize is the body bytes per PUT (64 KiB).
	ChunkSize int
}

func (d *decoder) gateway(p path, n *yaml.Node) *Gateway {
	return config(d, func() *Gateway { return d.gatewayConfig(p, n) })
}

func (d *decoder) gatewayConfig(p path, n *yaml.Node) *Gateway {
	g := &Gateway{Logging: defaultLogging}
	var listener, hosts *yaml.Node
	ok := d.fields(p, n,
		group("global", ignored("executor", "the router's global.executor.output.max_inflight bounds deliveries")),
		sub("rest_listener", func(d *decoder, p path, n *yaml.Node) {
			listener, g.RestListener = deref(n), d.gatewayRestListener(p, n)
		}),
		sub("smtp_output", func(d *decoder, p path, n *yaml.Node) {
			// Older reference configs put the hosts right under smtp_output.
			d.fieldsAndRest(p, n, func(k, _ *yaml.Node) {
				d.errorf(k, p, "unknown key %q (settings per tag go under smtp_output.hosts)", k.Value)
			},
				ignored("use_system_smtplib", "it has no effect: Koukan has one SMTP client"),
				sub("hosts", func(d *decoder, p path, n *yaml.Node) {
					hosts = deref(n)
					g.SMTPHosts = map[string]SMTPHost{}
					d.mapping(p, n, func(k, v *yaml.Node) { g.SMTPHosts[k.Value] = d.smtpHost(p.key(k.Value), v) })
				}))
		}),
		group("smtp_listener", listOf("services", &g.SMTPServices, (*decoder).smtpService)),
		listOf("rest_output", &g.RestOutputs, (*decoder).restOutput),
		sub("logging", func(d *decoder, p path, n *yaml.Node) { g.Logging = d.logging(p, n) }),
	)
	if ok {
		d.validateGateway(p, n, g, listener, hosts)
	}
	return g
}

func (d *decoder) gatewayRestListener(p path, n *yaml.Node) *GatewayRestListener {
	l := &GatewayRestListener{RestIDEntropy: 16, GCInterval: 5 * time.Second, GCTxTTL: 600 * time.Second, GCDoneTTL: 10 * time.Second}
	d.fields(p, n, append(restListenerFields(&l.Listener, &l.RestAuth),
		scalar("session_uri", &l.SessionURI, httpURL).must(),
		scalar("rest_id_entropy", &l.RestIDEntropy, integer(1, 64)),
		ignored("chunk_size", "uploads stream to the SMTP client as they arrive"),
		scalar("gc_interval", &l.GCInterval, positiveSeconds),
		scalar("gc_tx_ttl", &l.GCTxTTL, positiveSeconds),
		scalar("gc_done_ttl", &l.GCDoneTTL, seconds),
	)...)
	d.checkRestListener(p, n, &l.Listener, &l.RestAuth)
	return l
}

func (d *decoder) smtpHost(p path, n *yaml.Node) SMTPHost {
	h := SMTPHost{Timeout: 3300 * time.Second, DataTimeout: 240 * time.Second, Protocol: "smtp", ChunkSize: 65536, MaxReuse: 100,
		ReuseIdle: 5 * time.Second}
	d.fields(p, n,
		scalar("ehlo_host", &h.EHLOHost, text).must(),
		scalar("require_tls", &h.RequireTLS, boolean),
		scalar("ca_file", &h.CAFile, text),
		scalar("max_reuse", &h.MaxReuse, integer(1, maxInt)),
		scalar("reuse_idle", &h.ReuseIdle, seconds),
		scalar("timeout", &h.Timeout, positiveSeconds),
		scalar("data_timeout", &h.DataTimeout, positiveSeconds),
		scalar("protocol", &h.Protocol, oneOf("smtp", "lmtp")),
		scalar("enable_bdat", &h.EnableBDAT, boolean),
		scalar("chunk_size", &h.ChunkSize, integer(1, maxInt)),
	)
	return h
}

func (d *decoder) smtpService(p path, n *yaml.Node) SMTPService {
	s := SMTPService{RcptTimeout: 40 * time.Second, DataTimeout: 310 * time.Second, MaxMessageSize: 32 * mib, MaxRecipients: 1000,
		MaxConnections: 1000, MaxConnectionsPerIP: 20, MaxErrors: 10, CommandTimeout: 5 * time.Minute, IdleTimeout: 5 * time.Minute,
		MaxAuthFailures: 5, AuthFailureWindow: 15 * time.Minute, AuthFailureDelay: time.Second}
	d.fields(p, n, append(listenerFields(&s.Listener),
		refTo(restOutputRef, "endpoint", &s.Endpoint, nil).must(),
		scalar("sender", &s.Sender, name),
		scalar("tag", &s.Tag, name),
		scalar("smtps", &s.SMTPS, boolean),
		scalar("auth_secrets", &s.AuthSecrets, text),
		scalar("proxy_protocol_timeout", &s.ProxyProtocolTimeout, seconds),
		ignored("enable_bdat", "CHUNKING is always offered"),
		ignored("chunk_size", "the message goes to the router in pieces of its rest_output's chunk_size"),
		scalar("rcpt_timeout", &s.RcptTimeout, positiveSeconds),
		scalar("data_timeout", &s.DataTimeout, positiveSeconds),
		scalar("max_message_size", &s.MaxMessageSize, integer64(1)),
		scalar("max_recipients", &s.MaxRecipients, integer(1, maxInt)),
		scalar("max_connections", &s.MaxConnections, integer(1, maxInt)),
		scalar("max_connections_per_ip", &s.MaxConnectionsPerIP, integer(1, maxInt)),
		scalar("max_errors", &s.MaxErrors, integer(1, maxInt)),
		scalar("command_timeout", &s.CommandTimeout, positiveSeconds),
		scalar("idle_timeout", &s.IdleTimeout, positiveSeconds),
		scalar("allow_insecure_auth", &s.AllowInsecureAuth, boolean),
		scalar("max_auth_failures", &s.MaxAuthFailures, integer(0, maxInt)),
		scalar("auth_failure_window", &s.AuthFailureWindow, positiveSeconds),
		scalar("auth_failure_delay", &s.AuthFailureDelay, seconds),
		scalar("hostname", &s.Hostname, text),
	)...)
	d.checkTLS(p, n, &s.Listener)
	switch {
	case s.SMTPS && s.Cert == "":
		d.errorf(n, p, "smtps needs cert and key")
	case s.SMTPS && s.ProxyProtocolTimeout > 0:
		d.errorf(n, p, "smtps and proxy_protocol_timeout do not work together: the PROXY header would have to come before the TLS handshake")
	}
	return s
}

func (d *decoder) restOutput(p path, n *yaml.Node) RestOutput {
	o := RestOutput{Pos: d.pos(n), RcptTimeout: 30 * time.Second, DataTimeout: 60 * time.Second, ChunkSize: 64 << 10}
	d.fields(p, n, append(clientAuthFields(&o.Auth),
		scalar("name", &o.Name, name).must(),
		scalar("endpoint", &o.URL, httpURL).must(),
		scalar("verify", &o.Verify, tlsVerify),
		scalar("rcpt_timeout", &o.RcptTimeout, positiveSeconds),
		scalar("data_timeout", &o.DataTimeout, positiveSeconds),
		scalar("chunk_size", &o.ChunkSize, integer(1, maxInt)),
		ignored("refresh_interval", "each piece of the message is passed on as it arrives"),
	)...)
	d.checkClientAuth(p, n, o.Auth)
	return o
}

// validateGateway checks names across sections and that the gateway has work to do.
func (d *decoder) validateGateway(p path, n *yaml.Node, g *Gateway, listener, hosts *yaml.Node) {
	ns := names{of: map[refKind][]string{
		restOutputRef: namesOf(d, "rest_output", p.key("rest_output"), g.RestOutputs, func(o RestOutput) (string, Position) { return o.Name, o.Pos }),
	}}
	for _, r := range d.refs {
		d.check(r, ns)
	}
	switch {
	case g.RestListener == nil && len(g.SMTPServices) == 0:
		d.errorf(n, p, "the gateway has nothing to do: configure rest_listener (REST to SMTP), smtp_listener.services (SMTP to REST), or both")
	case g.RestListener != nil && len(g.SMTPHosts) == 0:
		d.errorf(listener, p.key("rest_listener"), "needs smtp_output.hosts: every transaction it receives names one of them by its tag")
	case g.RestListener == nil && hosts != nil:
		d.warnf(hosts, p.key("smtp_output").key("hosts"), "unused: there is no rest_listener to receive transactions for them")
	}
}
