// Package luabind runs the chain steps, routing policies and matchers that are Lua scripts.
//
// Scripts are compiled once per version of the script directories into function
// prototypes that a bounded pool of sandboxed states shares. A state opens only the base,
// table, string and math libraries (no io, os, debug, load, require, dofile), sees the
// globals read-only, and runs each call under a deadline. A script's failure — a Lua error,
// a timeout, a runaway loop or recursion — fails only the transaction it was called for,
// with a 451 4.3.0, and is logged with script:line.
//
// Reload compiles and checks every script again and swaps the new version in atomically
// only if all of it passes; a transaction finishes on the version it started with, because
// its chain's steps hold on to the version they were made from.
package luabind

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/auth"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/metrics"
	"github.com/koukan/koukan/luabind/lint"
	lua "github.com/yuin/gopher-lua"
)

// Options configure a Runtime.
type Options struct {
	// Sources are searched in order for each script name.
	Sources []Source
	// CallTimeout bounds one call into a script (1 s when zero).
	CallTimeout time.Duration
	// PoolSize bounds the states running at once (32 when zero); MaxUses retires a state
	// after that many calls (10000 when zero).
	PoolSize, MaxUses int
	// Modules map names of the reference's Python plugins to scripts: the module's last
	// dotted component names the script.
	Modules config.Modules
	// Check runs further checks on a library before it is swapped in (the config's use of
	// the scripts and a smoke run); its errors keep the running version.
	Check func(*Library) Findings
	Log   *slog.Logger
	// Services back the koukan.* modules.
	Services Services
}

// Runtime owns the current version of the scripts and the pool of states that run them.
type Runtime struct {
	opts Options
	log  *slog.Logger
	cur  atomic.Pointer[version]
	pool *pool
	// gen counts versions; a state drops what it cached for older ones.
	gen atomic.Int64

	// keys are the DKIM keys scripts sign with, re-read when their files change.
	keys auth.KeyCache

	reloadMu sync.Mutex
	statusMu sync.Mutex
	status   Status

	Stats Stats
}

// Stats count calls into scripts, for metrics and /admin/scripts.
type Stats struct {
	Calls, Errors, Timeouts, Reloads, ReloadFailures atomic.Int64
}

// Status describes the loaded scripts and the last reload.
type Status struct {
	Hash     string    `json:"hash"`
	LoadedAt time.Time `json:"loaded_at"`
	Scripts  []Loaded  `json:"scripts"`
	// LastError is why the last reload was refused ("" if it was not).
	LastError   string    `json:"last_error,omitempty"`
	LastAttempt time.Time `json:"last_attempt"`
}

// Loaded is one script of the loaded version.
type Loaded struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	File string `json:"file"`
	Hash string `json:"hash"`
}

// version is one loaded Library with the instances made from it.
type version struct {
	lib *Library
	gen int64
	// instances are configured uses of a script, by the config entry (a *config.Step or
	// *config.Policy) that made them: the same entry always gets the same instance, whose
	// entries states cache.
	instances sync.Map
}

// instance is a script with one step's options.
type instance struct {
	script  *Script
	name    string // the step as configured: what signals are filed under
	options map[string]any
}

// instance is the use of s that key configures, made once; extra are options besides
// those written under the step (a policy's destination).
func (v *version) instance(key any, s *Script, name string, options map[string]config.Value, extra map[string]any) *instance {
	if in, ok := v.instances.Load(key); ok {
		return in.(*instance)
	}
	plain := make(map[string]any, len(options)+len(extra))
	for k, val := range options {
		plain[k] = val.Plain()
	}
	for k, val := range extra {
		plain[k] = val
	}
	in, _ := v.instances.LoadOrStore(key, &instance{script: s, name: name, options: plain})
	return in.(*instance)
}

// New loads the scripts of o.Sources. It fails, with every finding, if any script does not
// pass its checks.
func New(o Options) (*Runtime, error) {
	if o.CallTimeout <= 0 {
		o.CallTimeout = time.Second
	}
	if o.PoolSize <= 0 {
		o.PoolSize = 32
	}
	if o.MaxUses <= 0 {
		o.MaxUses = 10000
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	rt := &Runtime{opts: o, log: o.Log}
	rt.pool = newPool(rt, o.PoolSize, o.MaxUses)
	if err := rt.Reload(); err != nil {
		return nil, err
	}
	return rt, nil
}

// Reload compiles and checks every script and swaps the result in, or keeps the running
// version and returns why not.
func (rt *Runtime) Reload() error {
	rt.reloadMu.Lock()
	defer rt.reloadMu.Unlock()
	lib, findings := Load(rt.opts.Sources)
	if lib != nil && rt.opts.Check != nil {
		findings = append(findings, rt.opts.Check(lib)...)
	}
	errs := findings.Errors()
	rt.statusMu.Lock()
	defer rt.statusMu.Unlock()
	rt.status.LastAttempt = time.Now()
	for _, f := range findings {
		if f.Severity == lint.Warning {
			rt.log.Warn("script check", "finding", f.String())
		}
	}
	if len(errs) > 0 {
		rt.Stats.ReloadFailures.Add(1)
		metrics.ScriptReloads.WithLabelValues("failed").Inc()
		rt.status.LastError = errs.Error()
		return errs
	}
	v := &version{lib: lib, gen: rt.gen.Add(1)}
	rt.cur.Store(v)
	rt.Stats.Reloads.Add(1)
	metrics.ScriptReloads.WithLabelValues("ok").Inc()
	rt.status.LastError = ""
	rt.status.Hash, rt.status.LoadedAt = lib.Hash, rt.status.LastAttempt
	rt.status.Scripts = rt.status.Scripts[:0]
	for _, s := range lib.Scripts() {
		rt.status.Scripts = append(rt.status.Scripts, Loaded{Kind: kindDirs[s.Kind], Name: s.Name, File: s.File, Hash: s.Hash})
	}
	return nil
}

// Status reports the loaded version and the last reload.
func (rt *Runtime) Status() Status {
	rt.statusMu.Lock()
	defer rt.statusMu.Unlock()
	s := rt.status
	s.Scripts = append([]Loaded(nil), s.Scripts...)
	return s
}

// Library is the loaded version of the scripts.
func (rt *Runtime) Library() *Library { return rt.cur.Load().lib }

// Close releases the idle states.
func (rt *Runtime) Close() { rt.pool.close() }

// scriptName maps a configured name to a script name: itself, or for a name the config's
// modules map to a Python module "pkg.module[:fn]", the module's last component.
func scriptName(name string, modules map[string]string) []string {
	names := []string{name}
	if m, ok := modules[name]; ok {
		m, _, _ = strings.Cut(m, ":")
		if i := strings.LastIndexByte(m, '.'); i >= 0 {
			m = m[i+1:]
		}
		names = append(names, m)
	}
	return names
}

func (v *version) lookup(kind lint.Kind, name string, modules map[string]string) *Script {
	for _, n := range scriptName(name, modules) {
		if s := v.lib.Lookup(kind, n); s != nil {
			return s
		}
	}
	return nil
}

// NewStep makes the chain step for a configured filter whose script exists, and wraps
// chain.ErrUnknownStep otherwise, so that factories can be chained.
func (rt *Runtime) NewStep(s *config.Step) (chain.Step, error) {
	v := rt.cur.Load()
	script := v.lookup(lint.Filter, s.Filter, rt.opts.Modules.SyncFilter)
	if script == nil {
		return nil, fmt.Errorf("%w: no script filters/%s.lua", chain.ErrUnknownStep, s.Filter)
	}
	return &filterStep{rt: rt, v: v, in: v.instance(s, script, s.Filter, s.Options, nil)}, nil
}

// call is what one call into a script is about.
type call struct {
	ctx    context.Context
	v      *version
	script *Script
	step   string
	txID   string
	// done is set once the hook returned: bindings then refuse to be used, so a script
	// that kept a tx in an upvalue cannot touch a later transaction's.
	done bool
}

// netCtx bounds a network lookup a script makes (DNS, SPF, DKIM keys) to half of the call's
// remaining time, so that a lookup that times out leaves the script time to handle it (a
// DNS server that does not answer is a temporary failure to report, not a failed call).
func (c *call) netCtx() (context.Context, context.CancelFunc) {
	d, ok := c.ctx.Deadline()
	if !ok {
		return context.WithCancel(c.ctx)
	}
	return context.WithTimeout(c.ctx, time.Until(d)/2)
}

// run takes a state for one call (a hook of a step, a policy, a matcher) and gives it the
// call's deadline. f runs on the state; what f returns is the call's error.
func (rt *Runtime) run(ctx context.Context, v *version, c *call, f func(s *state) error) error {
	s, err := rt.pool.get(ctx)
	if err != nil {
		return err
	}
	defer rt.pool.put(s)
	if s.gen != v.gen {
		clear(s.entries)
		clear(s.matchers)
		s.gen = v.gen
	}
	cctx, cancel := context.WithTimeout(ctx, rt.opts.CallTimeout)
	defer cancel()
	c.ctx, c.v = cctx, v
	s.call = c
	s.L.SetContext(cctx)
	defer s.L.RemoveContext()
	rt.Stats.Calls.Add(1)
	started := time.Now()
	err = f(s)
	c.done = true
	result := "ok"
	var se *ScriptError
	if errors.As(err, &se) {
		rt.Stats.Errors.Add(1)
		result = "error"
		if se.Timeout {
			rt.Stats.Timeouts.Add(1)
			result = "timeout"
		}
		rt.log.Error("script failed", "script", c.script.File, "step", c.step, "tx", c.txID, "err", se.Error())
	}
	metrics.ScriptCalls.WithLabelValues(c.script.Name, result).Inc()
	metrics.ScriptSeconds.WithLabelValues(c.script.Name).Observe(metrics.Since(started))
	return err
}

// entry is what the instance's chunk returned on s, running the chunk with its options the
// first time.
func (s *state) entry(in *instance) (lua.LValue, error) {
	if e, ok := s.entries[in]; ok {
		return e, nil
	}
	fn := s.L.NewFunctionFromProto(in.script.proto)
	fn.Env = s.env
	ret, err := s.invoke(s.call.ctx, in.script.File, fn, toLua(s.L, in.options, true))
	if se, ok := err.(*ScriptError); ok {
		se.Setup = true
	}
	if err != nil {
		return nil, err
	}
	s.entries[in] = ret
	return ret, nil
}
