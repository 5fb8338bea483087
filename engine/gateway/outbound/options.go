package outbound

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"time"
)

// Options configures a Server. Every zero field has a default, given with it.
type Options struct {
	// Hosts are the SMTP client settings, by the sender tag of a transaction
	// (smtp_output.hosts). A transaction whose tag is not here is refused with 404
	// unknown_tag; nil refuses every transaction.
	Hosts map[string]Host
	// SessionURI is the base of the Location and body URIs the server hands out, e.g.
	// http://gw1.internal:8001. "" builds them from each request's Host header (and https
	// when the request came over TLS), which keeps them absolute.
	SessionURI string
	// RestIDEntropy is the number of random bytes in a transaction id; 0 means 16.
	RestIDEntropy int
	// GCInterval is how often finished and idle transactions are dropped; 0 means 5 s.
	GCInterval time.Duration
	// IdleTTL: a transaction without any request or progress for this long is cancelled (its
	// SMTP session ends) and dropped; 0 means 600 s.
	IdleTTL time.Duration
	// DoneTTL: a finished transaction stays readable this long after its worker ended;
	// 0 means 10 s.
	DoneTTL time.Duration
	// Log receives one line per transaction outcome and every internal error; nil means
	// slog.Default().
	Log *slog.Logger
	// Dial opens TCP connections to peers; nil means a net.Dialer. Tests and operators that
	// need a source address or a proxy plug in here.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Host is how the gateway sends for one sender tag (smtp_output.hosts.<tag>).
type Host struct {
	// EHLOHost is the name given in EHLO or LHLO; it should match the reverse DNS of the
	// source address. "" means the machine's host name.
	EHLOHost string
	// LMTP speaks LMTP (LHLO, one data reply per recipient) instead of SMTP. See the
	// package comment for how recipients map.
	LMTP bool
	// Timeout bounds the MAIL phase as a whole (connect, greeting, EHLO, STARTTLS, MAIL),
	// each RCPT, and each write and BDAT reply while the message streams. 0 means 25 s,
	// which keeps it under rest_output's default rcpt_timeout of 30 s. (gateway.yaml's
	// timeout of 3300 s is the reference's and far above any router deadline.)
	Timeout time.Duration
	// ConnectTimeout bounds the TCP connect, within Timeout; 0 means 10 s (or Timeout if
	// shorter).
	ConnectTimeout time.Duration
	// DataTimeout bounds the wait for the reply to the end of the message; 0 means 4 min,
	// under rest_output's default data_timeout of 5 min.
	DataTimeout time.Duration
	// EnableBDAT sends the message in BDAT chunks when the peer offers CHUNKING; otherwise
	// DATA is used (a BODY=BINARYMIME message always goes by BDAT).
	EnableBDAT bool
	// ChunkSize is the size of a BDAT chunk, which is also the most message bytes the
	// gateway holds per transaction; 0 means 64 KiB.
	ChunkSize int
	// RequireTLS fails the transaction with 451 4.7.4 when the peer does not offer
	// STARTTLS, or 451 4.7.5 when the handshake fails. Without it TLS is opportunistic:
	// used when offered, without verification, and a failed handshake is retried once in
	// plain text on a new connection.
	RequireTLS bool
	// VerifyTLS verifies the peer's certificate against RootCAs and TLSServerName (451
	// 4.7.5 when it does not verify). It implies RequireTLS.
	VerifyTLS bool
	// TLSServerName is the name the certificate must carry (and the SNI); "" means the
	// destination IP address, which then must be in the certificate.
	TLSServerName string
	// RootCAs are the authorities VerifyTLS trusts; nil means the system's.
	RootCAs *x509.CertPool
	// MaxReuse is the most messages one connection carries; 0 means 100, 1 disables reuse.
	MaxReuse int
	// ReuseIdle is how long an idle connection waits for the next message to the same
	// destination before QUIT; 0 means 5 s.
	ReuseIdle time.Duration
}

const (
	defaultEntropy        = 16
	defaultGCInterval     = 5 * time.Second
	defaultIdleTTL        = 600 * time.Second
	defaultDoneTTL        = 10 * time.Second
	defaultTimeout        = 25 * time.Second
	defaultConnectTimeout = 10 * time.Second
	defaultDataTimeout    = 4 * time.Minute
	defaultChunkSize      = 64 << 10
	defaultMaxReuse       = 100
	defaultReuseIdle      = 5 * time.Second
)

func (o Options) withDefaults() Options {
	if o.RestIDEntropy <= 0 {
		o.RestIDEntropy = defaultEntropy
	}
	if o.GCInterval <= 0 {
		o.GCInterval = defaultGCInterval
	}
	if o.IdleTTL <= 0 {
		o.IdleTTL = defaultIdleTTL
	}
	if o.DoneTTL <= 0 {
		o.DoneTTL = defaultDoneTTL
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Dial == nil {
		var d net.Dialer
		o.Dial = d.DialContext
	}
	hosts := make(map[string]Host, len(o.Hosts))
	for tag, h := range o.Hosts {
		hosts[tag] = h.withDefaults()
	}
	o.Hosts = hosts
	return o
}

func (h Host) withDefaults() Host {
	if h.EHLOHost == "" {
		h.EHLOHost = localName()
	}
	if h.Timeout <= 0 {
		h.Timeout = defaultTimeout
	}
	if h.ConnectTimeout <= 0 {
		h.ConnectTimeout = defaultConnectTimeout
	}
	h.ConnectTimeout = min(h.ConnectTimeout, h.Timeout)
	if h.DataTimeout <= 0 {
		h.DataTimeout = defaultDataTimeout
	}
	if h.ChunkSize <= 0 {
		h.ChunkSize = defaultChunkSize
	}
	if h.VerifyTLS {
		h.RequireTLS = true
	}
	if h.MaxReuse <= 0 {
		h.MaxReuse = defaultMaxReuse
	}
	if h.ReuseIdle <= 0 {
		h.ReuseIdle = defaultReuseIdle
	}
	return h
}

func localName() string {
	if n, err := os.Hostname(); err == nil && n != "" {
		return n
	}
	return "localhost"
}
