package luabind

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/tx"
	"github.com/koukan/koukan/luabind/lint"
)

// CheckConfig returns the problems of a router config's use of the scripts in lib: steps
// and policies that name no script, options the config sets that a script never reads, and
// options a script needs (reads without a default) that the config does not set. Then it
// smoke-runs every configured step. It is what `koukan check` and a reload run.
func CheckConfig(cfg *config.Router, lib *Library) Findings {
	c := &configChecker{lib: lib, modules: cfg.Modules}
	var fs Findings
	for _, p := range asProblems(cfg.CheckSteps(c)) {
		fs = append(fs, lint.Finding{File: p.Pos.File, Line: p.Pos.Line, Col: p.Pos.Column, Severity: lint.Error, Message: p.Msg})
	}
	if len(fs) > 0 {
		return fs
	}
	return append(fs, smokeConfig(cfg, lib)...)
}

// asProblems is the problems CheckSteps returned as its error (sorted by position).
func asProblems(err error) config.Errors {
	ps, _ := err.(config.Errors)
	return ps
}

// configChecker is the config.StepChecker of a library.
type configChecker struct {
	lib     *Library
	modules config.Modules
}

func (c *configChecker) CheckStep(s *config.Step) []config.Problem {
	v := &version{lib: c.lib}
	if s.Router != nil && s.Router.Policy != nil {
		p := s.Router.Policy
		script := v.lookup(lint.Policy, p.Name, c.modules.RecipientRouterPolicy)
		if script == nil {
			return []config.Problem{{Pos: p.Pos, Msg: fmt.Sprintf("no routing policy script policies/%s.lua%s", p.Name, c.known(lint.Policy, p.Name))}}
		}
		options := p.Options
		if p.Destination != nil {
			// The destination reaches the script as an option too.
			options = maps.Clone(options)
			if options == nil {
				options = map[string]config.Value{}
			}
			options["destination"] = config.Value{Pos: p.Destination.Pos, KeyPos: p.Destination.Pos}
		}
		return checkOptions(script, p.Pos, options)
	}
	if s.Builtin() {
		return nil
	}
	script := v.lookup(lint.Filter, s.Filter, c.modules.SyncFilter)
	if script == nil {
		return []config.Problem{{Pos: s.Pos, Msg: fmt.Sprintf("no script filters/%s.lua for filter %q%s", s.Filter, s.Filter, c.known(lint.Filter, s.Filter))}}
	}
	return checkOptions(script, s.Pos, s.Options)
}

// known helps with a name that is no script of a kind: the nearest name, or the scripts
// there are when they are few.
func (c *configChecker) known(kind lint.Kind, name string) string {
	var names []string
	for _, s := range c.lib.Scripts() {
		if s.Kind == kind {
			names = append(names, s.Name)
		}
	}
	switch near := lint.Closest(name, names); {
	case near != "":
		return fmt.Sprintf(" (did you mean %q?)", near)
	case len(names) == 0:
		return fmt.Sprintf(" (there are no %s scripts)", kindDirs[kind])
	case len(names) <= 8:
		return " (" + kindDirs[kind] + ": " + strings.Join(names, ", ") + ")"
	}
	return ""
}

// checkOptions compares the options a step sets with those its script reads.
func checkOptions(s *Script, at config.Position, options map[string]config.Value) []config.Problem {
	var ps []config.Problem
	if !s.Info.OptionsDynamic {
		for _, k := range slices.Sorted(maps.Keys(options)) {
			if _, ok := s.Info.Options[k]; !ok {
				hint := readList(s)
				if near := lint.Closest(k, slices.Sorted(maps.Keys(s.Info.Options))); near != "" {
					hint = fmt.Sprintf(" (did you mean %q?)", near)
				}
				ps = append(ps, config.Problem{Pos: options[k].KeyPos, Msg: fmt.Sprintf("option %q is not used by %s%s", k, s.File, hint)})
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Info.Options)) {
		use := s.Info.Options[k]
		if _, set := options[k]; !set && !use.Guarded && len(use.Reads) > 0 {
			r := use.Reads[0]
			ps = append(ps, config.Problem{Pos: at, Msg: fmt.Sprintf("%s:%d:%d reads option %q, which this step does not set", s.File, r.Line, r.Col, k)})
		}
	}
	return ps
}

func readList(s *Script) string {
	if len(s.Info.Options) == 0 {
		return ", which reads no options"
	}
	return " (it reads " + strings.Join(slices.Sorted(maps.Keys(s.Info.Options)), ", ") + ")"
}

// smokeTimeout bounds each call of a smoke run.
const smokeTimeout = time.Second

// smokeRuntime runs lib's scripts for a smoke run: offline, without touching the network.
func smokeRuntime(lib *Library, modules config.Modules) *Runtime {
	rt := &Runtime{opts: Options{CallTimeout: smokeTimeout, Modules: modules, Services: Services{Resolver: Offline{}}}}
	rt.log = slog.New(slog.DiscardHandler)
	rt.pool = newPool(rt, 1, 1<<30)
	rt.cur.Store(&version{lib: lib, gen: rt.gen.Add(1)})
	return rt
}

// smokeConfig runs every configured filter step's hooks, and every routing policy, once
// against a sample transaction, with the step's options.
func smokeConfig(cfg *config.Router, lib *Library) Findings {
	rt := smokeRuntime(lib, cfg.Modules)
	defer rt.Close()
	var fs Findings
	for i := range cfg.Endpoints {
		for j := range cfg.Endpoints[i].Chain {
			s := &cfg.Endpoints[i].Chain[j]
			where := fmt.Sprintf("step %q at %s", s.Filter, s.Pos)
			switch {
			case s.Router != nil && s.Router.Policy != nil:
				if p, err := rt.policy(s.Router.Policy); err == nil {
					fs = append(fs, smokePolicy(p, where, lint.Error)...)
				}
			case !s.Builtin():
				if step, err := rt.NewStep(s); err == nil {
					fs = append(fs, smokeFilter(rt, step.(*filterStep), where, lint.Error)...)
				}
			}
		}
	}
	return fs
}

// Smoke runs every script of lib once, with no options, against a sample transaction. A
// failure is an error for a script that needs no options, and a warning for one that does,
// which may fail for want of them; CheckConfig runs configured steps with their options.
func Smoke(lib *Library) Findings {
	rt := smokeRuntime(lib, config.Modules{})
	defer rt.Close()
	var fs Findings
	for _, s := range lib.Scripts() {
		v := rt.cur.Load()
		in := &instance{script: s, name: s.Name}
		sev := lint.Error
		if needsOptions(s) {
			sev = lint.Warning
		}
		switch s.Kind {
		case lint.Filter:
			fs = append(fs, smokeFilter(rt, &filterStep{rt: rt, v: v, in: in}, noOptions, sev)...)
		case lint.Policy:
			fs = append(fs, smokePolicy(&Policy{rt: rt, v: v, in: in}, noOptions, sev)...)
		case lint.Matcher:
			m := &Matcher{rt: rt, v: v, in: in}
			if _, err := m.Match(context.Background(), sampleTx(), 0); err != nil {
				fs = append(fs, smokeFinding(s, noOptions, err, sev))
			}
		}
	}
	return fs
}

// needsOptions reports whether a script reads an option without a default, or its options
// in ways the linter cannot follow.
func needsOptions(s *Script) bool {
	if s.Info.OptionsDynamic {
		return true
	}
	for _, use := range s.Info.Options {
		if !use.Guarded {
			return true
		}
	}
	return false
}

// noOptions is how findings of a smoke run without options say so.
const noOptions = "with no options"

// sampleTx is the transaction of a smoke run: an SMTP client with one recipient.
func sampleTx() *tx.Tx {
	return &tx.Tx{
		RestID:     "smoke-test",
		Sender:     &tx.Sender{Name: "smoke"},
		RemoteHost: &tx.HostPort{Host: "192.0.2.10", Port: 40000},
		LocalHost:  &tx.HostPort{Host: "192.0.2.1", Port: 25},
		MailFrom:   &tx.Mailbox{Address: "sender@example.com"},
		RcptTo:     []tx.Mailbox{{Address: "rcpt@example.org"}},
	}
}

const sampleMessage = "From: Sender <sender@example.com>\r\nTo: rcpt@example.org\r\nSubject: smoke test\r\n" +
	"Date: Thu, 26 Nov 2026 08:00:00 +0000\r\nMessage-ID: <smoke@example.com>\r\n\r\nHello.\r\n"

// accept is the far end of a smoke run's chain: it accepts everything.
type accept struct{}

func (accept) Update(_ context.Context, u *chain.Update) error {
	ok := tx.Response{Code: 250, Message: "2.0.0 ok"}
	if u.Mail {
		u.SetMailResponse(ok)
	}
	for _, i := range u.Pending() {
		u.SetRcptResponse(i, ok)
	}
	if u.Data {
		u.SetDataResponse(ok)
	}
	return nil
}

// smokeStep runs a filter step and keeps its script's failure.
type smokeStep struct {
	f   *filterStep
	err error
}

func (s *smokeStep) Update(ctx context.Context, u *chain.Update) error {
	if err := s.f.update(ctx, u); err != nil {
		s.err = err
		failPass(u, TempFail)
	}
	return nil
}

func smokeFilter(rt *Runtime, step *filterStep, where string, sev lint.Severity) Findings {
	msg := chain.NewMessage(int64(len(sampleMessage)), func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(sampleMessage)), nil
	})
	s := &smokeStep{f: step}
	if err := chain.New(s, accept{}).Update(context.Background(), sampleTx(), msg); err != nil && s.err == nil {
		s.err = err
	}
	if s.err == nil {
		return nil
	}
	return Findings{smokeFinding(step.in.script, where, s.err, sev)}
}

func smokePolicy(p *Policy, where string, sev lint.Severity) Findings {
	if _, err := p.Route(context.Background(), sampleTx(), 0); err != nil {
		return Findings{smokeFinding(p.in.script, where, err, sev)}
	}
	return nil
}

// smokeFinding places a smoke run's failure at the script line Lua reported, if any. A
// script's setup failing without options, as a script that checks its options does, is a
// warning whatever sev says: a configured step's run (CheckConfig) tells.
func smokeFinding(s *Script, where string, err error, sev lint.Severity) lint.Finding {
	if se, ok := err.(*ScriptError); ok && se.Setup && where == noOptions {
		sev = lint.Warning
	}
	f := lint.Finding{File: s.File, Line: 1, Col: 1, Severity: sev}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, s.File+":"); ok {
		var line int
		if n, _ := fmt.Sscanf(rest, "%d:", &line); n == 1 {
			f.Line = line
			msg = strings.TrimSpace(rest[strings.IndexByte(rest, ':')+1:])
		}
	}
	f.Message = fmt.Sprintf("smoke run (%s) failed: %s", where, msg)
	return f
}
