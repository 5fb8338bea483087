package luabind

import (
	"github.com/koukan/koukan/luabind/lint"
	lua "github.com/yuin/gopher-lua"
)

func init() {
	extraModules["matcher"] = func(rt *Runtime, s *state) map[string]lua.LGFunction { return rt.matcherModule(s) }
}

// matcherKey is a matcher script with one table of options, on one state.
type matcherKey struct {
	script *Script
	opts   *lua.LTable
}

// matcherModule is koukan.matcher.new(name, opts): the function of matchers/<name>.lua
// (or the script modules.transaction_matcher maps name to) set up with opts, for scripts
// that evaluate match expressions (policy_action). It returns nil and why when there is no
// such matcher. The script's setup runs once per state and options table.
func (rt *Runtime) matcherModule(s *state) map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		"new": func(L *lua.LState) int {
			name := L.CheckString(1)
			opts := L.OptTable(2, L.NewTable())
			script := s.call.v.lookup(lint.Matcher, name, rt.opts.Modules.TransactionMatcher)
			if script == nil {
				L.Push(lua.LNil)
				L.Push(lua.LString("no matcher script matchers/" + name + ".lua"))
				return 2
			}
			key := matcherKey{script, opts}
			if fn, ok := s.matchers[key]; ok {
				L.Push(fn)
				return 1
			}
			chunk := L.NewFunctionFromProto(script.proto)
			chunk.Env = s.env
			L.Push(chunk)
			L.Push(opts)
			L.Call(1, 1)
			ret := L.Get(-1)
			L.Pop(1)
			fn, ok := ret.(*lua.LFunction)
			if !ok {
				L.RaiseError("%s: returned a %s, not a function", script.File, ret.Type())
			}
			s.matchers[key] = fn
			L.Push(fn)
			return 1
		},
	}
}
