package luabind

import (
	"context"
	"errors"
	"fmt"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/routing"
	"github.com/koukan/koukan/engine/tx"
	"github.com/koukan/koukan/luabind/lint"
	lua "github.com/yuin/gopher-lua"
)

// Policy is a routing policy script with one configuration: a function of the transaction
// and one recipient that gives a destination, a response, or nil for "not mine".
type Policy struct {
	rt *Runtime
	v  *version
	in *instance
}

// Policy makes the policy that p configures, or wraps chain.ErrUnknownStep if no script
// policies/<name>.lua exists.
func (rt *Runtime) Policy(p *config.Policy) (routing.Policy, error) {
	return rt.policy(p)
}

// policy makes the policy p configures. The script gets p's destination as
// opts.destination ({endpoint, host_list, options}), to return for what it claims.
func (rt *Runtime) policy(p *config.Policy) (*Policy, error) {
	v := rt.cur.Load()
	script := v.lookup(lint.Policy, p.Name, rt.opts.Modules.RecipientRouterPolicy)
	if script == nil {
		return nil, fmt.Errorf("%w: no script policies/%s.lua", chain.ErrUnknownStep, p.Name)
	}
	var extra map[string]any
	if d := routing.Config(p.Destination); d != nil {
		extra = map[string]any{"destination": destinationToPlain(d)}
	}
	return &Policy{rt: rt, v: v, in: v.instance(p, script, p.Name, p.Options, extra)}, nil
}

// Route asks the policy about recipient i (0-based) of t. A failing script is a
// *ScriptError; the caller answers the recipient with TempFail.
func (p *Policy) Route(ctx context.Context, t *tx.Tx, i int) (routing.Decision, error) {
	var d routing.Decision
	c := &call{script: p.in.script, step: p.in.name, txID: t.RestID}
	err := p.rt.run(ctx, p.v, c, func(s *state) error {
		fn, err := s.function(p.in)
		if err != nil {
			return err
		}
		txv := s.newTx(t, nil)
		ret, err := s.invoke(s.call.ctx, p.in.script.File, fn, txv, s.newRcpt(txv.Value.(*txView), i))
		if err != nil {
			return err
		}
		switch ret := ret.(type) {
		case *lua.LNilType:
		case *lua.LTable:
			dest, err := destinationFromLua(ret)
			if err != nil {
				return &ScriptError{Script: p.in.script.File, Message: fmt.Sprintf("%s: bad destination: %v", p.in.script.File, err)}
			}
			d.Destination = &routing.Destination{Endpoint: dest.endpoint, URL: dest.restEndpoint, Hosts: dest.hosts, Options: dest.options}
		default:
			r, ok := toResponse(ret)
			if !ok {
				return &ScriptError{Script: p.in.script.File, Message: fmt.Sprintf("%s: returned a %s; return a destination table, a response or nil", p.in.script.File, ret.Type())}
			}
			d.Response = &r
		}
		return nil
	})
	return d, err
}

// Match is a matcher's tri-state answer.
type Match int

const (
	NoMatch Match = iota
	Matched
	// Unknown means not yet: the transaction lacks what the matcher needs (for example the
	// body); it is asked again at the next phase.
	Unknown
)

// Matcher is a matcher script with one configuration.
type Matcher struct {
	rt *Runtime
	v  *version
	in *instance
}

// Matcher makes the matcher named name with options, or wraps chain.ErrUnknownStep if no
// script matchers/<name>.lua exists. key identifies the configuration entry, so that the
// same entry shares its compiled setup.
func (rt *Runtime) Matcher(key any, name string, options map[string]config.Value) (*Matcher, error) {
	v := rt.cur.Load()
	script := v.lookup(lint.Matcher, name, rt.opts.Modules.TransactionMatcher)
	if script == nil {
		return nil, fmt.Errorf("%w: no script matchers/%s.lua", chain.ErrUnknownStep, name)
	}
	return &Matcher{rt: rt, v: v, in: v.instance(key, script, name, options, nil)}, nil
}

// Match asks the matcher about t, or about its recipient i when i >= 0.
func (m *Matcher) Match(ctx context.Context, t *tx.Tx, i int) (Match, error) {
	var res Match
	c := &call{script: m.in.script, step: m.in.name, txID: t.RestID}
	err := m.rt.run(ctx, m.v, c, func(s *state) error {
		fn, err := s.function(m.in)
		if err != nil {
			return err
		}
		txv := s.newTx(t, nil)
		var rcpt lua.LValue = lua.LNil
		if i >= 0 {
			rcpt = s.newRcpt(txv.Value.(*txView), i)
		}
		ret, err := s.invoke(s.call.ctx, m.in.script.File, fn, txv, rcpt)
		if err != nil {
			return err
		}
		switch ret {
		case lua.LTrue:
			res = Matched
		case lua.LFalse:
			res = NoMatch
		case lua.LNil:
			res = Unknown
		default:
			return &ScriptError{Script: m.in.script.File, Message: fmt.Sprintf("%s: returned a %s; return true, false or nil (not known yet)", m.in.script.File, ret.Type())}
		}
		return nil
	})
	return res, err
}

// function is the function a policy or matcher chunk returned.
func (s *state) function(in *instance) (*lua.LFunction, error) {
	entry, err := s.entry(in)
	if err != nil {
		return nil, err
	}
	fn, ok := entry.(*lua.LFunction)
	if !ok {
		return nil, &ScriptError{Script: in.script.File, Message: fmt.Sprintf("%s: returned a %s, not a function", in.script.File, entry.Type())}
	}
	return fn, nil
}

// IsScriptError reports whether err is a script's failure (rather than, say, a cancelled
// context).
func IsScriptError(err error) bool {
	var se *ScriptError
	return errors.As(err, &se)
}

// destinationToPlain is a destination as a script's option: plain values.
func destinationToPlain(d *routing.Destination) map[string]any {
	m := map[string]any{}
	if d.Endpoint != "" {
		m["endpoint"] = d.Endpoint
	}
	if len(d.Hosts) > 0 {
		hosts := make([]any, len(d.Hosts))
		for i, h := range d.Hosts {
			hosts[i] = map[string]any{"host": h.Host, "port": h.Port}
		}
		m["host_list"] = hosts
	}
	if len(d.Options) > 0 {
		m["options"] = d.Options
	}
	return m
}
