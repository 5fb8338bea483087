// Package routing is the router chain step (reference §6.8): it asks a routing policy (a
// Lua script, see luabind) where each recipient goes, and writes the answer into the
// transaction for the output steps: the REST endpoint, the hosts to try and the endpoint
// options. Routers are tried in chain order and the first one that claims a recipient wins.
package routing

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/tx"
)

// Policy decides where one recipient of a transaction goes.
type Policy interface {
	Route(ctx context.Context, t *tx.Tx, rcpt int) (Decision, error)
}

// Policies makes the policy a router step configures; luabind.Runtime is one.
type Policies interface {
	Policy(p *config.Policy) (Policy, error)
}

// Decision is a policy's answer for one recipient; both nil means "not mine".
type Decision struct {
	Destination *Destination
	Response    *tx.Response
}

// Destination is where a recipient goes. Endpoint names a rest_endpoint of the config;
// URL is used instead when there is no name (with the transaction's own sender).
type Destination struct {
	Endpoint string
	URL      string
	Hosts    []tx.HostPort
	Options  map[string]any
}

// Config is the destination a config entry names, in the form a policy script receives and
// returns it (opts.destination).
func Config(d *config.Destination) *Destination {
	if d == nil {
		return nil
	}
	out := &Destination{Endpoint: d.Endpoint, Options: optionsMap(d.Options)}
	for _, h := range d.HostList {
		out.Hosts = append(out.Hosts, tx.HostPort{Host: h.Host, Port: h.Port})
	}
	return out
}

// optionsMap is endpoint options as the output steps read them from tx.Options.
func optionsMap(o config.EndpointOptions) map[string]any {
	m := map[string]any{}
	if o.ReceiveParsing {
		m["receive_parsing"] = map[string]any{"max_inline": o.MaxInline}
	}
	if o.SendFilterOutput {
		m["send_filter_output"] = true
	}
	return m
}

// mailboxMissing is what a recipient gets from a router with neither policy nor
// destination (the catch-all at the end of a list of routers), and from a policy that
// claims a recipient without a usable destination.
var mailboxMissing = tx.Response{Code: 550, Message: "5.1.1 mailbox does not exist"}

// policyFailed answers a recipient whose policy failed: temporary, so it is retried.
var policyFailed = tx.Response{Code: 451, Message: "4.3.0 temporary failure in a routing policy"}

// Step is a router chain step.
type Step struct {
	cfg    *config.Router
	step   *config.RouterStep
	policy Policy
	log    *slog.Logger
}

var _ chain.Step = (*Step)(nil)

// New makes the router step s of cfg, with its policy from policies.
func New(cfg *config.Router, s *config.RouterStep, policies Policies, log *slog.Logger) (*Step, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st := &Step{cfg: cfg, step: s, log: log}
	if s.Policy != nil {
		if policies == nil {
			return nil, fmt.Errorf("routing policy %q: no policy runtime", s.Policy.Name)
		}
		p, err := policies.Policy(s.Policy)
		if err != nil {
			return nil, err
		}
		st.policy = p
	}
	return st, nil
}

func (s *Step) Update(ctx context.Context, u *chain.Update) error {
	for _, i := range u.Rcpts {
		if u.RcptResponse(i) != nil || u.Tx.Routed[i] {
			continue
		}
		d, err := s.decide(ctx, u.Tx, i)
		if err != nil {
			s.log.Error("routing policy failed", "tx", u.Tx.RestID, "rcpt", i, "err", err)
			u.SetRcptResponse(i, policyFailed)
			continue
		}
		switch {
		case d.Response != nil:
			u.SetRcptResponse(i, *d.Response)
		case d.Destination != nil:
			if r := s.route(u.Tx, i, d.Destination); r != nil {
				u.SetRcptResponse(i, *r)
			}
		}
	}
	return nil
}

func (s *Step) decide(ctx context.Context, t *tx.Tx, i int) (Decision, error) {
	switch {
	case s.policy != nil:
		return s.policy.Route(ctx, t, i)
	case s.step.Destination != nil:
		return Decision{Destination: Config(s.step.Destination)}, nil
	}
	return Decision{Response: &mailboxMissing}, nil
}

// route claims recipient i for d, writing the routing into t unless the step is a dry
// run. It returns the recipient's response when d cannot be used.
func (s *Step) route(t *tx.Tx, i int, d *Destination) *tx.Response {
	url, sender := d.URL, t.RestUpstreamSender
	options := map[string]any{}
	if d.Endpoint != "" {
		ep := s.cfg.RestEndpoint(d.Endpoint)
		if ep == nil || ep.Sender == "" {
			// A destination naming no usable endpoint is none: what the policy claimed is
			// rejected rather than sent nowhere.
			return &mailboxMissing
		}
		url, sender = ep.URL, &tx.Sender{Name: ep.Sender, Tag: ep.Tag}
		options = optionsMap(ep.Options)
	}
	maps.Copy(options, d.Options)
	if t.Routed == nil {
		t.Routed = map[int]bool{}
	}
	t.Routed[i] = true
	if s.step.DryRun {
		return nil
	}
	if len(t.Routed) > 1 && (t.RestEndpoint != url || !slices.Equal(t.Resolution, d.Hosts)) {
		// One transaction goes to one place; its recipients must agree.
		delete(t.Routed, i)
		return &tx.Response{Code: 451, Message: "4.3.0 recipients of one transaction route to different destinations"}
	}
	t.RestEndpoint, t.Resolution, t.RestUpstreamSender, t.Options = url, d.Hosts, sender, options
	return nil
}
