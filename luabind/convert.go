package luabind

import (
	"encoding/json"
	"fmt"
	"math"

	lua "github.com/yuin/gopher-lua"
)

// toLua converts a plain Go value (what JSON or YAML decode to: nil, bool, numbers, string,
// []any, map[string]any) to Lua. With frozen, tables come as read-only views that
// pairs, ipairs and # still see through.
func toLua(L *lua.LState, v any, frozen bool) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case int:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case json.Number:
		f, _ := v.Float64()
		return lua.LNumber(f)
	case string:
		return lua.LString(v)
	case []any:
		t := L.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(L, item, frozen))
		}
		return maybeReadOnly(L, t, frozen)
	case map[string]any:
		t := L.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetString(k, toLua(L, item, frozen))
		}
		return maybeReadOnly(L, t, frozen)
	}
	return lua.LString(fmt.Sprint(v))
}

func maybeReadOnly(L *lua.LState, t *lua.LTable, frozen bool) lua.LValue {
	if frozen {
		return readOnly(L, t, "options")
	}
	return t
}

// jsonToLua decodes JSON into fresh Lua tables: a copy that is the script's own.
func jsonToLua(L *lua.LState, raw json.RawMessage) lua.LValue {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return lua.LNil
	}
	return toLua(L, v, false)
}

// fromLua converts a Lua value to a plain Go value for JSON: a table whose keys are 1..n is
// a list, any other table an object with string keys. Functions, userdata and cycles are
// errors.
func fromLua(v lua.LValue) (any, error) {
	return fromLuaDepth(v, 0)
}

func fromLuaDepth(v lua.LValue, depth int) (any, error) {
	if depth > 32 {
		return nil, fmt.Errorf("value nested more than 32 deep (a cycle?)")
	}
	switch v := v.(type) {
	case *lua.LNilType:
		return nil, nil
	case lua.LBool:
		return bool(v), nil
	case lua.LNumber:
		f := float64(v)
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("number %v has no JSON form", f)
		}
		return f, nil
	case lua.LString:
		return string(v), nil
	case *lua.LTable:
		return tableFromLua(unproxy(v), depth)
	}
	return nil, fmt.Errorf("a %s has no JSON form", v.Type())
}

// tableFromLua converts a table whose keys are exactly 1..n to a list and one with only
// string keys to an object (an empty table is an empty object).
func tableFromLua(t *lua.LTable, depth int) (any, error) {
	n, count, strs := t.Len(), 0, 0
	t.ForEach(func(k, _ lua.LValue) {
		count++
		if _, ok := k.(lua.LString); ok {
			strs++
		}
	})
	if n > 0 && count == n {
		list := make([]any, n)
		for i := range list {
			var err error
			if list[i], err = fromLuaDepth(t.RawGetInt(i+1), depth+1); err != nil {
				return nil, err
			}
		}
		return list, nil
	}
	if strs != count {
		return nil, fmt.Errorf("a table with keys other than strings or a 1..n list has no JSON form")
	}
	obj := make(map[string]any, count)
	var err error
	t.ForEach(func(k, item lua.LValue) {
		if err == nil {
			obj[string(k.(lua.LString))], err = fromLuaDepth(item, depth+1)
		}
	})
	return obj, err
}
