package luabind

import (
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Limits of one Lua state. A script that goes past them gets a Lua error, which fails its
// call, never the process.
const (
	callStackSize   = 200     // nested calls: deep recursion ends in "stack overflow"
	registrySize    = 1 << 10 // initial value stack
	registryMaxSize = 1 << 17 // value stack it may grow to
	// maxString bounds the strings string.rep builds in one call: a runaway allocation
	// cannot be interrupted by the call deadline once it started.
	maxString = 16 << 20
)

// baseAllowed are the base library functions scripts get. Gone are everything that reaches
// files or loads code (dofile, load, loadfile, loadstring, require, module), that changes
// environments (getfenv, setfenv), rawset (it would bypass the read-only globals) and
// collectgarbage.
var baseAllowed = []string{
	"assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget", "select",
	"getmetatable", "setmetatable", "tonumber", "tostring", "type", "unpack", "xpcall",
}

// API lists the global names a script may read: the sandboxed standard library and
// koukan. The linter checks scripts against it.
func API() map[string]bool {
	names := map[string]bool{"string": true, "table": true, "math": true, "koukan": true, "print": true, "_VERSION": true}
	for _, n := range baseAllowed {
		names[n] = true
	}
	return names
}

// newSandbox makes a state with only the base, table, string and math libraries, and
// returns it with the globals scripts may use. The caller adds its own and runs scripts
// in a read-only view of them (readOnly), so nothing a call assigns leaks into the next.
func newSandbox() (*lua.LState, *lua.LTable) {
	L := lua.NewState(lua.Options{
		SkipOpenLibs:        true,
		CallStackSize:       callStackSize,
		RegistrySize:        registrySize,
		RegistryMaxSize:     registryMaxSize,
		MinimizeStackMemory: true,
	})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	all := L.G.Global
	str := all.RawGetString("string").(*lua.LTable)
	str.RawSetString("rep", L.NewFunction(boundedRep))
	// getmetatable("") would hand out the string library itself.
	if mt, ok := L.GetMetatable(lua.LString("")).(*lua.LTable); ok {
		mt.RawSetString("__metatable", lua.LFalse)
	}
	safe := L.NewTable()
	for _, n := range baseAllowed {
		safe.RawSetString(n, all.RawGetString(n))
	}
	for _, n := range []string{"pairs", "ipairs", "next"} {
		safe.RawSetString(n, seeThrough(L, all.RawGetString(n)))
	}
	safe.RawSetString("_VERSION", all.RawGetString("_VERSION"))
	for _, lib := range []string{"string", "table", "math"} {
		safe.RawSetString(lib, readOnly(L, all.RawGetString(lib).(*lua.LTable), lib))
	}
	// Leave nothing reachable through the state's own globals either.
	L.G.Global = L.NewTable()
	return L, safe
}

// readOnly returns a proxy of t that reads through to it and refuses assignments. A
// protected metatable keeps scripts from swapping it.
func readOnly(L *lua.LState, t *lua.LTable, name string) *lua.LTable {
	proxy := L.NewTable()
	mt := L.NewTable()
	mt.RawSetString("__index", t)
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		key := L.CheckAny(2).String()
		switch name {
		case "":
			L.RaiseError("assignment to global %q: scripts share no globals between calls; use a local", key)
		default:
			L.RaiseError("%s is read-only (assignment to %s.%s)", name, name, key)
		}
		return 0
	}))
	mt.RawSetString("__len", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LNumber(t.Len()))
		return 1
	}))
	mt.RawSetString("__metatable", lua.LFalse)
	mt.RawSetString(sourceKey, t)
	L.SetMetatable(proxy, mt)
	return proxy
}

// sourceKey marks a read-only proxy's metatable with the table it shows.
const sourceKey = "__koukan_readonly"

// readOnlySource is the table a read-only proxy shows, or nil for any other value.
func readOnlySource(v lua.LValue) *lua.LTable {
	t, ok := v.(*lua.LTable)
	if !ok {
		return nil
	}
	mt, ok := t.Metatable.(*lua.LTable)
	if !ok {
		return nil
	}
	src, _ := mt.RawGetString(sourceKey).(*lua.LTable)
	return src
}

// unproxy is the table behind a read-only view (step options), or t itself.
func unproxy(t *lua.LTable) *lua.LTable {
	if src := readOnlySource(t); src != nil {
		return src
	}
	return t
}

// seeThrough wraps pairs, ipairs and next so that they iterate what a read-only proxy
// shows rather than the empty proxy.
func seeThrough(L *lua.LState, fn lua.LValue) *lua.LFunction {
	return L.NewFunction(func(L *lua.LState) int {
		if src := readOnlySource(L.Get(1)); src != nil {
			L.Replace(1, src)
		}
		top := L.GetTop()
		L.Push(fn)
		for i := 1; i <= top; i++ {
			L.Push(L.Get(i))
		}
		L.Call(top, lua.MultRet)
		return L.GetTop() - top
	})
}

// boundedRep is string.rep that refuses results over maxString bytes.
func boundedRep(L *lua.LState) int {
	s := L.CheckString(1)
	n := L.CheckInt(2)
	switch {
	case n <= 0:
		L.Push(lua.LString(""))
	case len(s) > 0 && n > maxString/len(s):
		L.RaiseError("string.rep: result would exceed %d bytes", maxString)
	default:
		L.Push(lua.LString(strings.Repeat(s, n)))
	}
	return 1
}
