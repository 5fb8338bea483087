// Package builtin makes the chain steps that are written in Go: the plumbing of reference
// §6 (rest_output now; exploder, message_builder, message_parser and router to come). Policy
// steps are Lua scripts, made by the Lua runtime's factory, which falls back on this one.
package builtin

import (
	"fmt"
	"sync"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/rest"
	"github.com/koukan/koukan/engine/restoutput"
)

// Factory makes built-in steps. Its REST clients are shared by every attempt with the same
// settings, so connections to each next hop are pooled.
type Factory struct {
	mu      sync.Mutex
	clients map[clientKey]*rest.Client
}

type clientKey struct {
	verify config.TLSVerify
	chunk  int
}

var _ chain.Factory = (*Factory)(nil)

// New makes a Factory.
func New() *Factory { return &Factory{clients: map[clientKey]*rest.Client{}} }

// NewStep makes the step s names, or says that it is not a built-in (yet).
func (f *Factory) NewStep(s *config.Step) (chain.Step, error) {
	switch {
	case s.RestOutput != nil:
		c, err := f.client(clientKey{s.RestOutput.Verify, s.RestOutput.ChunkSize})
		if err != nil {
			return nil, err
		}
		return restoutput.New(c, *s.RestOutput), nil
	}
	return nil, fmt.Errorf("chain step %q is not built yet: %w", s.Filter, chain.ErrUnknownStep)
}

func (f *Factory) client(k clientKey) (*rest.Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.clients[k]; c != nil {
		return c, nil
	}
	c, err := rest.NewClient(rest.Options{ChunkSize: k.chunk, CAFile: k.verify.CAFile, InsecureSkipVerify: k.verify.Off})
	if err != nil {
		return nil, err
	}
	f.clients[k] = c
	return c, nil
}
