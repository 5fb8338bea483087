// Package builtin makes the chain steps that are written in Go: the plumbing of reference
// §6: rest_output, router, message_builder and message_parser; the router service makes
// exploder and add_route itself. Policy steps are Lua scripts, made by the
// Lua runtime's factory, which is asked after this one.
package builtin

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/rest"
	"github.com/koukan/koukan/engine/restoutput"
	"github.com/koukan/koukan/engine/routing"
)

// Factory makes built-in steps. Its REST clients are shared by every attempt with the same
// settings, so connections to each next hop are pooled.
type Factory struct {
	opts    Options
	mu      sync.Mutex
	clients map[clientKey]*rest.Client
}

// Options are what some built-ins need besides their own config.
type Options struct {
	// Config is the router config, whose rest_endpoints router steps route to.
	Config *config.Router
	// Policies makes the routing policies of router steps (the Lua runtime).
	Policies routing.Policies
	Log      *slog.Logger
}

type clientKey struct {
	verify config.TLSVerify
	chunk  int
	auth   config.ClientAuth
}

var _ chain.Factory = (*Factory)(nil)

// New makes a Factory.
func New(o Options) *Factory {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Factory{opts: o, clients: map[clientKey]*rest.Client{}}
}

// NewStep makes the step s names, or says that it is not a built-in (yet).
func (f *Factory) NewStep(s *config.Step) (chain.Step, error) {
	switch {
	case s.RestOutput != nil:
		return f.restOutput(*s.RestOutput)
	case s.Filter == "message_builder" || s.Filter == "message_parser":
		return inPlace{}, nil
	case s.Router != nil:
		if f.opts.Config == nil {
			return nil, fmt.Errorf("router step: no router config to route with")
		}
		return routing.New(f.opts.Config, s.Router, f.opts.Policies, f.opts.Log)
	}
	return nil, fmt.Errorf("chain step %q is not built yet: %w", s.Filter, chain.ErrUnknownStep)
}

// restOutput makes a rest_output step whose requests to a rest_endpoint's URL carry that
// endpoint's credentials and TLS settings, and the step's own verify where it sets none.
func (f *Factory) restOutput(o config.RestOutputStep) (chain.Step, error) {
	def, err := f.client(clientKey{o.Verify, o.ChunkSize, config.ClientAuth{}})
	if err != nil {
		return nil, err
	}
	byURL := map[string]*rest.Client{}
	if cfg := f.opts.Config; cfg != nil {
		for _, e := range cfg.RestEndpoints {
			k := clientKey{o.Verify, o.ChunkSize, e.Auth}
			if e.Verify != nil {
				k.verify = *e.Verify
			}
			c, err := f.client(k)
			if err != nil {
				return nil, fmt.Errorf("rest_endpoint %s: %w", e.Name, err)
			}
			byURL[e.URL] = c
		}
	}
	return restoutput.NewPerEndpoint(func(url string) *rest.Client {
		if c := byURL[url]; c != nil {
			return c
		}
		return def
	}, o), nil
}

func (f *Factory) client(k clientKey) (*rest.Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.clients[k]; c != nil {
		return c, nil
	}
	c, err := newClient(k)
	if err != nil {
		return nil, err
	}
	f.clients[k] = c
	return c, nil
}

func newClient(k clientKey) (*rest.Client, error) {
	return rest.NewClient(rest.Options{ChunkSize: k.chunk, CAFile: k.verify.CAFile, InsecureSkipVerify: k.verify.Off,
		APIKeyFile: k.auth.APIKeyFile, CertFile: k.auth.ClientCert, KeyFile: k.auth.ClientKey})
}

// CheckEndpoints reads the key, certificate and CA files of cfg's rest_endpoints, so that a
// missing one stops the router at startup rather than failing every delivery attempt.
func CheckEndpoints(cfg *config.Router) error {
	for _, e := range cfg.RestEndpoints {
		k := clientKey{auth: e.Auth}
		if e.Verify != nil {
			k.verify = *e.Verify
		}
		if _, err := newClient(k); err != nil {
			return fmt.Errorf("rest_endpoint %s: %w", e.Name, err)
		}
	}
	return nil
}

// inPlace is the step of message_builder and message_parser, which configs written for the
// reference place in their chains. Their work is done in place in Koukan: every step sees a
// message-builder body already rendered (the router renders it as it streams), and
// rest_output parses the message when the destination asks for receive_parsing.
type inPlace struct{}

func (inPlace) Update(context.Context, *chain.Update) error { return nil }
