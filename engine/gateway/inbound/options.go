package inbound

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/koukan/koukan/engine/rest"
)

// Options configures a Server: one SMTP service (an MX on 25, a submission
// port with STARTTLS on 587, submissions with implicit TLS on 465) and the
// router sender it hands transactions to. Every field says what its zero
// value means; the zero Options is not usable only because Endpoint is
// required.
type Options struct {
	// Addr is where ListenAndServe listens, "host:port". Zero: ":25"
	// (":465" with ImplicitTLS). Serve ignores it.
	Addr string

	// Endpoint is the URL transactions are POSTed to: rest_output's
	// endpoint, e.g. http://127.0.0.1:8000/senders/ingress/transactions. A
	// URL with no path (http://127.0.0.1:8000) gets
	// /senders/{Sender}/transactions appended. Required.
	Endpoint string
	// Sender and Tag are the transaction's sender {name, tag}, which pick
	// its chain on the router. Zero: not sent (the router then uses the
	// sender of the URL path and no tag).
	Sender, Tag string

	// TLS, when not nil, offers STARTTLS (or, with ImplicitTLS, speaks TLS
	// from the first byte) and REQUIRETLS on TLS connections. Nil: no TLS.
	TLS *tls.Config
	// ImplicitTLS speaks TLS from the first byte (submissions, port 465);
	// it needs TLS. Zero: plain text, with STARTTLS when TLS is set.
	ImplicitTLS bool

	// AuthSecrets is the path of a JSON object {"user": "<secret hash>"},
	// where a hash is the hex SHA-256 of the secret (the reference format,
	// for high-entropy machine secrets) or a bcrypt hash ("$2a$", "$2b$",
	// "$2y$"). It enables AUTH PLAIN and LOGIN, read once by New. Zero: no
	// AUTH.
	AuthSecrets string
	// AllowInsecureAuth offers AUTH without TLS. Zero: AUTH is offered and
	// accepted only on TLS connections.
	AllowInsecureAuth bool
	// MaxAuthFailures is how many failed AUTH attempts one client address
	// (an IPv6 /64) may make, each within AuthFailureWindow of the last;
	// then its AUTH gets 454 4.7.0 and the connection is closed, until it
	// has been quiet for AuthFailureWindow. Zero: 5. Negative: no limit.
	MaxAuthFailures int
	// AuthFailureWindow: see MaxAuthFailures. Zero: 15 minutes.
	AuthFailureWindow time.Duration
	// AuthFailureDelay is how long the reply to a failed AUTH waits, doubled
	// with each failure of the address (at most 30 s). Zero: 1 s.
	// Negative: no wait.
	AuthFailureDelay time.Duration

	// ProxyProtocolTimeout, when positive, requires a PROXY protocol
	// header (v1 or v2) at the start of every connection, within this
	// long; remote_host and local_host, and the per-IP limit, then come
	// from it. Zero: no PROXY header is expected.
	ProxyProtocolTimeout time.Duration

	// MaxMessageBytes is the largest message accepted, advertised as SIZE
	// and enforced on MAIL's SIZE=, on each BDAT and while DATA streams.
	// Zero: 64 MiB (the router's default body limit). go-smtp rejects a
	// DATA message of exactly this size too.
	MaxMessageBytes int64
	// MaxRecipients is the most recipients one transaction may have; the
	// next gets 452 4.5.3. Zero: 100 (RFC 5321's minimum). Negative: no limit.
	MaxRecipients int
	// MaxLineLength is the longest line, CRLF included, of commands and of
	// message text after DATA; a longer one gets 500 5.4.0 and the
	// connection is closed (go-smtp cannot find the next command in a
	// stream it has cut). Zero: 8192, room for the 8 kB command lines some
	// clients send (long parameter lists, AUTH initial responses).
	MaxLineLength int

	// MaxConns bounds the connections open at once; one more is answered
	// 421 4.7.0 and closed. Zero: 1000. Negative: no limit.
	MaxConns int
	// MaxConnsPerIP bounds the connections open at once from one client
	// address (the PROXY header's, with ProxyProtocolTimeout). Zero: 50.
	// Negative: no limit.
	MaxConnsPerIP int
	// MaxErrors is how many rejected MAIL, RCPT and AUTH commands a
	// connection may collect; the next rejection is 421 4.7.0 and the
	// connection is closed. go-smtp closes on its own after its fourth
	// syntax error. Zero: 20. Negative: no limit.
	MaxErrors int

	// CommandTimeout is how long the client may leave us waiting for the
	// next bytes while a transaction is open (from MAIL to the end of its
	// data), and bounds the writing of each reply. Zero: 5 minutes (RFC
	// 5321 §4.5.3.2.7).
	CommandTimeout time.Duration
	// IdleTimeout is the same outside a transaction (after the greeting,
	// between messages). Zero: CommandTimeout.
	IdleTimeout time.Duration

	// MailTimeout, RcptTimeout and DataTimeout are how long the client
	// waits for the router's answer to MAIL, to each RCPT, and to the
	// message once its last byte is in; they bound every REST call made
	// for the command. Past them the reply is 451 4.4.5. Zero: 10 s, 40 s
	// and 310 s (reference §9.3), well inside the 5 and 10 minutes RFC
	// 5321 clients wait.
	MailTimeout, RcptTimeout, DataTimeout time.Duration
	// RequestTimeout bounds each create and update request within those
	// waits (rest_output's rcpt_timeout). Zero: only the waits bound them.
	RequestTimeout time.Duration
	// PutTimeout is how long a body upload may be stuck on the router,
	// i.e. not waiting for the client's bytes (rest_output's
	// data_timeout). Zero: 60 s.
	PutTimeout time.Duration

	// ChunkSize is the most body bytes per PUT, which is also what the
	// gateway holds of a message at a time. Zero: 64 KiB. Ignored with
	// Client.
	ChunkSize int
	// CAFile and InsecureSkipVerify say how to check the router's
	// certificate (rest_output's verify). Zero: the system's roots.
	// Ignored with Client.
	CAFile             string
	InsecureSkipVerify bool
	// Client, when not nil, is the REST client to use; it should have a
	// ChunkSize, or a body PUT cannot follow a redirect. Zero: New builds
	// one from ChunkSize, CAFile and InsecureSkipVerify.
	Client *rest.Client

	// Hostname is the name in the greeting and EHLO reply. Zero: the
	// machine's host name.
	Hostname string
	// Log gets one line per transaction and every failure, with the
	// cause. Zero: slog.Default().
	Log *slog.Logger
}

// Defaults.
const (
	defaultMaxMessageBytes = 64 << 20
	defaultMaxRecipients   = 100
	defaultMaxLineLength   = 8192
	defaultMaxConns        = 1000
	defaultMaxConnsPerIP   = 50
	defaultMaxErrors       = 20
	defaultCommandTimeout  = 5 * time.Minute
	defaultMailTimeout     = 10 * time.Second
	defaultRcptTimeout     = 40 * time.Second
	defaultDataTimeout     = 310 * time.Second
	defaultPutTimeout      = 60 * time.Second
	defaultChunkSize       = 64 << 10
	defaultMaxAuthFailures = 5
	defaultAuthWindow      = 15 * time.Minute
	defaultAuthDelay       = time.Second
	// cancelTimeout bounds the POST .../cancel of an abandoned transaction.
	cancelTimeout = 10 * time.Second
	// A cancel that failed for want of a router is tried again after
	// cancelRetryFirst, doubling up to cancelRetryMax, for cancelRetryFor.
	cancelRetryFirst = 500 * time.Millisecond
	cancelRetryMax   = 8 * time.Second
	cancelRetryFor   = time.Minute
	// RFC 5321 §4.5.3.2: how long a client waits for MAIL and RCPT
	// replies, and for the reply to the end of data.
	clientCommandWait = 5 * time.Minute
	clientDataWait    = 10 * time.Minute
)

// config is Options with the defaults filled in and the endpoint resolved.
type config struct {
	Options
	endpoint string
	secrets  secrets
}

func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// limit turns "zero: default, negative: none" into a bound, 0 for none.
func limit(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

func newConfig(o Options) (*config, error) {
	c := &config{Options: o}
	var errs []error
	c.MaxMessageBytes = orDefault(o.MaxMessageBytes, defaultMaxMessageBytes)
	c.MaxRecipients = limit(o.MaxRecipients, defaultMaxRecipients)
	c.MaxLineLength = orDefault(o.MaxLineLength, defaultMaxLineLength)
	c.MaxConns = limit(o.MaxConns, defaultMaxConns)
	c.MaxConnsPerIP = limit(o.MaxConnsPerIP, defaultMaxConnsPerIP)
	c.MaxErrors = limit(o.MaxErrors, defaultMaxErrors)
	c.CommandTimeout = orDefault(o.CommandTimeout, defaultCommandTimeout)
	c.IdleTimeout = orDefault(o.IdleTimeout, c.CommandTimeout)
	c.MailTimeout = orDefault(o.MailTimeout, defaultMailTimeout)
	c.RcptTimeout = orDefault(o.RcptTimeout, defaultRcptTimeout)
	c.DataTimeout = orDefault(o.DataTimeout, defaultDataTimeout)
	c.PutTimeout = orDefault(o.PutTimeout, defaultPutTimeout)
	c.ChunkSize = orDefault(o.ChunkSize, defaultChunkSize)
	c.MaxAuthFailures = limit(o.MaxAuthFailures, defaultMaxAuthFailures)
	c.AuthFailureWindow = orDefault(o.AuthFailureWindow, defaultAuthWindow)
	c.AuthFailureDelay = max(orDefault(o.AuthFailureDelay, defaultAuthDelay), 0)
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Addr == "" {
		c.Addr = ":25"
		if c.ImplicitTLS {
			c.Addr = ":465"
		}
	}
	if c.Hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		c.Hostname = h
	}

	for name, v := range map[string]int64{
		"MaxMessageBytes": c.MaxMessageBytes, "MaxLineLength": int64(c.MaxLineLength), "ChunkSize": int64(c.ChunkSize),
		"CommandTimeout": int64(c.CommandTimeout), "IdleTimeout": int64(c.IdleTimeout), "MailTimeout": int64(c.MailTimeout),
		"RcptTimeout": int64(c.RcptTimeout), "DataTimeout": int64(c.DataTimeout), "PutTimeout": int64(c.PutTimeout),
		"RequestTimeout": int64(c.RequestTimeout) + 1, "ProxyProtocolTimeout": int64(c.ProxyProtocolTimeout) + 1,
		"AuthFailureWindow": int64(c.AuthFailureWindow),
	} {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", name))
		}
	}
	if c.MaxMessageBytes > 1<<32-1 {
		// go-smtp parses SIZE= and BDAT sizes as 32-bit numbers.
		errs = append(errs, fmt.Errorf("MaxMessageBytes %d is over 4 GiB", c.MaxMessageBytes))
	}
	if c.MaxLineLength < 1000 {
		errs = append(errs, fmt.Errorf("MaxLineLength %d is under RFC 5321's 1000 for text lines", c.MaxLineLength))
	}
	if c.ImplicitTLS && c.TLS == nil {
		errs = append(errs, errors.New("ImplicitTLS needs a TLS config"))
	}
	if c.AuthSecrets != "" && c.TLS == nil && !c.AllowInsecureAuth {
		errs = append(errs, errors.New("AUTH would never be offered: AuthSecrets needs TLS or AllowInsecureAuth"))
	}

	ep, err := endpointURL(o.Endpoint, o.Sender)
	if err != nil {
		errs = append(errs, err)
	}
	c.endpoint = ep
	if c.AuthSecrets != "" {
		s, err := loadSecrets(c.AuthSecrets)
		if err != nil {
			errs = append(errs, err)
		}
		c.secrets = s
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("inbound: %w", err)
	}

	// Timeouts a client would not wait out make the router's answer
	// useless; say so, but a deployment may know its clients better.
	if c.MailTimeout >= clientCommandWait || c.RcptTimeout >= clientCommandWait {
		c.Log.Warn("inbound: MAIL/RCPT waits as long as RFC 5321 clients do; they may give up first",
			"mail_timeout", c.MailTimeout, "rcpt_timeout", c.RcptTimeout)
	}
	if c.DataTimeout >= clientDataWait {
		c.Log.Warn("inbound: the data wait is as long as RFC 5321 clients wait; they may give up first", "data_timeout", c.DataTimeout)
	}
	return c, nil
}

// endpointURL is where to POST new transactions.
func endpointURL(endpoint, sender string) (string, error) {
	if endpoint == "" {
		return "", errors.New("Endpoint is required")
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("Endpoint %q is not an http(s) URL", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		if sender == "" {
			return "", fmt.Errorf("Endpoint %q has no path, and there is no Sender to build one", endpoint)
		}
		u.Path = "/senders/" + sender + "/transactions"
		u.RawPath = ""
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}
