package luabind

import (
	"context"
	"log/slog"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Services are what the koukan.* modules are backed by.
type Services struct {
	// Now is the clock of koukan.time (time.Now when nil): tests fix it for golden output.
	Now func() time.Time
	// Resolver answers koukan.dns.
	Resolver Resolver
}

// extraModules are further koukan.<name> modules, each registered by the file that
// implements it (in an init function).
var extraModules = map[string]func(rt *Runtime, s *state) map[string]lua.LGFunction{}

// newState builds a sandboxed state with the koukan module and the binding metatables.
func (rt *Runtime) newState() *state {
	s := &state{entries: map[*instance]lua.LValue{}, matchers: map[matcherKey]*lua.LFunction{}}
	L, globals := newSandbox()
	s.L = L
	koukan := L.NewTable()
	L.SetFuncs(koukan, map[string]lua.LGFunction{
		"reject":   makeResponse(s, 5),
		"tempfail": makeResponse(s, 4),
	})
	koukan.RawSetString("log", L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		"debug": rt.logFunc(s, slog.LevelDebug),
		"info":  rt.logFunc(s, slog.LevelInfo),
		"warn":  rt.logFunc(s, slog.LevelWarn),
		"error": rt.logFunc(s, slog.LevelError),
	}))
	koukan.RawSetString("time", L.SetFuncs(L.NewTable(), map[string]lua.LGFunction{
		// koukan.time.now() is the time in seconds since the epoch, with fractions.
		"now": func(L *lua.LState) int {
			L.Push(lua.LNumber(float64(rt.now().UnixNano()) / 1e9))
			return 1
		},
		// koukan.time.rfc5322([t]) formats t (now by default) as a Date: header value, in UTC.
		"rfc5322": func(L *lua.LState) int {
			t := rt.now()
			if L.GetTop() >= 1 {
				f := float64(L.CheckNumber(1))
				t = time.Unix(0, int64(f*1e9))
			}
			L.Push(lua.LString(t.UTC().Format(time.RFC1123Z)))
			return 1
		},
	}))
	for name, funcs := range map[string]map[string]lua.LGFunction{
		"dns": rt.dnsModule(s), "dkim": rt.dkimModule(s), "spf": rt.spfModule(s), "addr": addrModule(), "mime": rt.mimeModule(s),
	} {
		koukan.RawSetString(name, L.SetFuncs(L.NewTable(), funcs))
	}
	for name, make := range extraModules {
		koukan.RawSetString(name, L.SetFuncs(L.NewTable(), make(rt, s)))
	}
	// print writes to the log, with the transaction it ran for.
	printFn := L.NewFunction(func(L *lua.LState) int {
		parts := make([]string, L.GetTop())
		for i := range parts {
			parts[i] = L.ToStringMeta(L.Get(i + 1)).String()
		}
		rt.logAttrs(s, slog.LevelInfo, strings.Join(parts, "\t"))
		return 0
	})
	globals.RawSetString("print", printFn)
	globals.RawSetString("koukan", readOnlyDeep(L, koukan, "koukan"))
	s.env = readOnly(L, globals, "")
	s.meta = metatables{
		tx:       newMetatable(L, "tx", indexer(L, txMethods, checkTx, txFields)),
		rcpt:     newMetatable(L, "rcpt", indexer(L, nil, checkRcpt, rcptFields)),
		msg:      newMetatable(L, "msg", indexer(L, msgMethods, checkMsg, map[string]func(*lua.LState, *msgView) lua.LValue{})),
		response: responseMetatable(L),
	}
	return s
}

func (rt *Runtime) now() time.Time {
	if rt.opts.Services.Now != nil {
		return rt.opts.Services.Now()
	}
	return time.Now()
}

// logFunc is koukan.log.<level>(message, key, value, ...).
func (rt *Runtime) logFunc(s *state, level slog.Level) lua.LGFunction {
	return func(L *lua.LState) int {
		msg := L.CheckString(1)
		var attrs []any
		for i := 2; i <= L.GetTop(); i += 2 {
			key := L.ToStringMeta(L.Get(i)).String()
			var val any = L.Get(i + 1).String()
			if n, ok := L.Get(i + 1).(lua.LNumber); ok {
				val = float64(n)
			}
			attrs = append(attrs, key, val)
		}
		rt.logAttrs(s, level, msg, attrs...)
		return 0
	}
}

func (rt *Runtime) logAttrs(s *state, level slog.Level, msg string, attrs ...any) {
	if c := s.call; c != nil {
		attrs = append(attrs, "script", c.script.File, "step", c.step, "tx", c.txID)
		if line := s.L.Where(1); line != "" {
			attrs = append(attrs, "at", strings.TrimSuffix(line, ":"))
		}
		rt.log.Log(c.ctx, level, msg, attrs...)
		return
	}
	rt.log.Log(context.Background(), level, msg, attrs...)
}

// readOnlyDeep is readOnly for a module and the tables in it.
func readOnlyDeep(L *lua.LState, t *lua.LTable, name string) *lua.LTable {
	t.ForEach(func(k, v lua.LValue) {
		if sub, ok := v.(*lua.LTable); ok {
			t.RawSet(k, readOnlyDeep(L, sub, name+"."+k.String()))
		}
	})
	return readOnly(L, t, name)
}
