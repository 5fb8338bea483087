package config

import (
	"time"

	"gopkg.in/yaml.v3"
)

// Endpoint is a named output chain with the settings of the output handler that runs it.
type Endpoint struct {
	Name          string
	Pos           Position
	OutputHandler OutputHandler
	Chain         []Step
}

// EndsInExploder reports whether the chain fans out to one transaction per recipient, which
// makes its senders "incremental" (reference §2.3).
func (e *Endpoint) EndsInExploder() bool {
	return len(e.Chain) > 0 && e.Chain[len(e.Chain)-1].Exploder != nil
}

// StartsWithExploder tells a chain whose first step is the exploder: nothing runs before
// it answers MAIL.
func (e *Endpoint) StartsWithExploder() bool {
	return len(e.Chain) > 0 && e.Chain[0].Exploder != nil
}

// OutputHandler drives one delivery attempt through the chain.
type OutputHandler struct {
	// DownstreamTimeout ends an attempt when the client has not updated an unfinished
	// transaction for this long (60 s).
	DownstreamTimeout time.Duration
	// UpstreamRefresh is the heartbeat toward the upstream (30 s).
	UpstreamRefresh time.Duration
	// RetryParams is nil when transactions on this chain are never retried.
	RetryParams *RetryParams
	// Notification is nil when this chain sends no DSNs.
	Notification *Notification
}

// RetryParams is the retry policy of reference §3.7.
type RetryParams struct {
	MaxAttempts    *int // nil: no limit on attempts (30)
	MinAttemptTime time.Duration
	MaxAttemptTime time.Duration
	BackoffFactor  float64
	Deadline       *time.Duration // nil: no deadline (1 day)
	// BugRetry is when a transaction whose attempt crashed is tried again (1 h).
	BugRetry time.Duration
}

// Notification is the sender and tag that DSNs are created as.
type Notification struct {
	Sender, Tag string
	// Delay sends a delay DSN (once) when a transaction is still being retried this long
	// after it was created; 0 (not set, not a reference key) sends none.
	Delay time.Duration
}

// RestEndpoint is a REST service that router destinations send transactions to.
type RestEndpoint struct {
	Name string
	Pos  Position
	// URL is where transactions are POSTed (the YAML key "endpoint").
	URL string
	// Sender and Tag are the sender the transactions are created as at URL. A rest_endpoint
	// without a sender cannot be a destination.
	Sender, Tag string
	Options     EndpointOptions
	// Verify and Auth are how the router's rest_output talks to URL: Verify nil means the
	// rest_output step's verify. A rest_output whose static_endpoint is URL uses them too.
	Verify *TLSVerify
	Auth   ClientAuth
}

// ClientAuth is what a REST client presents to the service it calls (docs/security.md).
type ClientAuth struct {
	// APIKeyFile holds the key sent as "Authorization: Bearer <key>"; "" sends none.
	APIKeyFile string
	// ClientCert and ClientKey are the certificate presented when the server asks for one
	// (mutual TLS); both or neither.
	ClientCert, ClientKey string
}

func clientAuthFields(a *ClientAuth) []field {
	return []field{
		scalar("api_key_file", &a.APIKeyFile, text),
		scalar("client_cert", &a.ClientCert, text),
		scalar("client_key", &a.ClientKey, text),
	}
}

func (d *decoder) checkClientAuth(p path, n *yaml.Node, a ClientAuth) {
	if (a.ClientCert == "") != (a.ClientKey == "") {
		d.errorf(deref(n), p, "client_cert and client_key go together: set both for mutual TLS, or neither")
	}
}

// EndpointOptions change what a REST receiver gets.
type EndpointOptions struct {
	// ReceiveParsing turns the message into message-builder JSON before sending it, with
	// at most MaxInline bytes of text inline (65536); the rest become blobs.
	ReceiveParsing bool
	MaxInline      int
	// SendFilterOutput sends the chain's signals along with the transaction.
	SendFilterOutput bool
}

// optionOverrides are EndpointOptions as written, where unset stays unset so that a
// destination's options can go on top of its rest_endpoint's.
type optionOverrides struct {
	maxInline        *int // set when receive_parsing is present
	sendFilterOutput *bool
}

func (o *optionOverrides) fields() []field {
	return []field{
		sub("receive_parsing", func(d *decoder, p path, n *yaml.Node) {
			maxInline := 65536
			d.fields(p, n, scalar("max_inline", &maxInline, integer(0, maxInt)))
			o.maxInline = &maxInline
		}),
		nullable("send_filter_output", &o.sendFilterOutput, boolean),
	}
}

func (o optionOverrides) over(base EndpointOptions) EndpointOptions {
	if o.maxInline != nil {
		base.ReceiveParsing, base.MaxInline = true, *o.maxInline
	}
	if o.sendFilterOutput != nil {
		base.SendFilterOutput = *o.sendFilterOutput
	}
	return base
}

func (d *decoder) restEndpoint(p path, n *yaml.Node) RestEndpoint {
	e := RestEndpoint{Pos: d.pos(n)}
	var opts optionOverrides
	d.fields(p, n, append(clientAuthFields(&e.Auth),
		scalar("name", &e.Name, name).must(),
		scalar("endpoint", &e.URL, httpURL).must(),
		scalar("sender", &e.Sender, name),
		scalar("tag", &e.Tag, name),
		group("options", opts.fields()...),
		nullable("verify", &e.Verify, tlsVerify),
	)...)
	d.checkClientAuth(p, n, e.Auth)
	e.Options = opts.over(EndpointOptions{})
	return e
}

// checkEndpointURLs reports rest_endpoints that share a URL but not how to call it: a
// routed transaction records only the URL, by which the router finds its credentials.
func (d *decoder) checkEndpointURLs(p path, eps []RestEndpoint) {
	for i, e := range eps {
		for _, first := range eps[:i] {
			if e.URL == first.URL && (e.Auth != first.Auth || !sameVerify(e.Verify, first.Verify)) {
				d.errorAt(e.Pos, p.item(e.Name), "endpoint %s is rest_endpoint %q's too (line %d), with other verify or credentials: the router tells endpoints apart by URL", e.URL, first.Name, first.Pos.Line)
				break
			}
		}
	}
}

func sameVerify(a, b *TLSVerify) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

func (d *decoder) endpoint(p path, n *yaml.Node) Endpoint {
	e := Endpoint{Pos: d.pos(n), OutputHandler: OutputHandler{DownstreamTimeout: 60 * time.Second, UpstreamRefresh: 30 * time.Second}}
	oh := &e.OutputHandler
	d.fields(p, n,
		scalar("name", &e.Name, name).must(),
		group("output_handler",
			scalar("downstream_timeout", &oh.DownstreamTimeout, positiveSeconds),
			scalar("upstream_refresh", &oh.UpstreamRefresh, positiveSeconds),
			sub("retry_params", func(d *decoder, p path, n *yaml.Node) { oh.RetryParams = d.retryParams(p, n) }),
			sub("notification", func(d *decoder, p path, n *yaml.Node) { oh.Notification = d.notification(p, n) }),
		),
		sub("chain", func(d *decoder, p path, n *yaml.Node) { e.Chain = d.chain(p, n) }).must(),
		ignored("msa", "set msa on the chain's exploder step"),
	)
	return e
}

// retryParams decodes retry_params; null, like absent, means no retries.
func (d *decoder) retryParams(p path, n *yaml.Node) *RetryParams {
	if n = deref(n); isNull(n) {
		return nil
	}
	maxAttempts, deadline := 30, 24*time.Hour
	rp := &RetryParams{
		MaxAttempts:    &maxAttempts,
		MinAttemptTime: time.Minute,
		MaxAttemptTime: time.Hour,
		BackoffFactor:  1.5,
		Deadline:       &deadline,
		BugRetry:       time.Hour,
	}
	d.fields(p, n,
		nullable("max_attempts", &rp.MaxAttempts, integer(1, maxInt)),
		scalar("min_attempt_time", &rp.MinAttemptTime, seconds),
		scalar("max_attempt_time", &rp.MaxAttemptTime, positiveSeconds),
		scalar("backoff_factor", &rp.BackoffFactor, number(0)),
		nullable("deadline", &rp.Deadline, positiveSeconds),
		scalar("bug_retry", &rp.BugRetry, positiveSeconds),
	)
	if rp.MinAttemptTime > rp.MaxAttemptTime {
		d.errorf(n, p, "min_attempt_time (%v) is more than max_attempt_time (%v)", rp.MinAttemptTime, rp.MaxAttemptTime)
	}
	return rp
}

// notification decodes output_handler.notification; null, like absent, means no DSNs.
func (d *decoder) notification(p path, n *yaml.Node) *Notification {
	if n = deref(n); isNull(n) {
		return nil
	}
	no := &Notification{}
	d.notifications = append(d.notifications, site{d.pos(n), p})
	d.fields(p, n, refTo(senderRef, "sender", &no.Sender, nil).must(), refTo(tagRef, "tag", &no.Tag, &no.Sender),
		scalar("delay", &no.Delay, positiveSeconds))
	return no
}

// Destination is where a router step sends the recipients it matches.
type Destination struct {
	Pos Position
	// Endpoint names the rest_endpoint to send to; "" when the destination names none.
	Endpoint string
	// HostList is the SMTP hosts the receiving gateway is to try, instead of the ones the
	// routing policy derives.
	HostList []HostPort
	// Options are the rest_endpoint's options with this destination's on top.
	Options EndpointOptions
}

// pendingDestination is a destination whose options can only be merged once the
// rest_endpoints are known.
type pendingDestination struct {
	dest *Destination
	over optionOverrides
	at   site
}

// destination decodes a router destination; null (a placeholder) gives nil.
func (d *decoder) destination(p path, n *yaml.Node) *Destination {
	if n = deref(n); isNull(n) {
		return nil
	}
	dest := &Destination{Pos: d.pos(n)}
	var over optionOverrides
	d.fields(p, n,
		refTo(restEndpointRef, "endpoint", &dest.Endpoint, nil),
		listOf("host_list", &dest.HostList, hostPortMap),
		group("options", over.fields()...),
	)
	d.dests = append(d.dests, pendingDestination{dest, over, site{d.pos(n), p}})
	return dest
}
