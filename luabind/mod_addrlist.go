package luabind

import (
	"strings"

	"github.com/koukan/koukan/engine/addr"
	lua "github.com/yuin/gopher-lua"
)

func init() {
	extraModules["address_list"] = func(*Runtime, *state) map[string]lua.LGFunction { return addressListModule }
}

// addressListModule is koukan.address_list.new{domains=, prefixes=, delimiter=}: a function
// of an address that tells whether it is on the list, for the address_list policy and
// matcher. Domains compare as lower-case A-labels and local parts case-insensitively; no
// domains means any domain, no prefixes any local part. With a delimiter, "bob+x" is on the
// list as "bob". An address that does not parse is not on it.
var addressListModule = map[string]lua.LGFunction{
	"new": func(L *lua.LState) int {
		o := unproxy(L.CheckTable(1))
		domains, prefixes := map[string]bool{}, map[string]bool{}
		for _, d := range stringList(L, o, "domains") {
			domains[asciiDomain(d)] = true
		}
		for _, p := range stringList(L, o, "prefixes") {
			prefixes[strings.ToLower(p)] = true
		}
		delim := lua.LVAsString(o.RawGetString("delimiter"))
		L.Push(L.NewFunction(func(L *lua.LState) int {
			m, err := addr.ParseMailbox(strings.TrimSuffix(strings.TrimPrefix(L.CheckString(1), "<"), ">"))
			if err != nil {
				L.Push(lua.LFalse)
				return 1
			}
			local := strings.ToLower(m.Local)
			onList := len(domains) == 0 || domains[asciiDomain(m.Domain)]
			if onList && len(prefixes) > 0 {
				base := local
				if delim != "" {
					base, _, _ = strings.Cut(local, delim)
				}
				onList = prefixes[local] || prefixes[base]
			}
			L.Push(lua.LBool(onList))
			return 1
		}))
		return 1
	},
}

func asciiDomain(d string) string {
	if a, err := (addr.Mailbox{Local: "x", Domain: d}).ASCIIDomain(); err == nil {
		return a
	}
	return strings.ToLower(d)
}

// stringList reads t[key] as a list of strings (absent: empty).
func stringList(L *lua.LState, t *lua.LTable, key string) []string {
	v := t.RawGetString(key)
	if v == lua.LNil {
		return nil
	}
	list, ok := v.(*lua.LTable)
	if !ok {
		L.RaiseError("%s must be a list of strings", key)
	}
	list = unproxy(list)
	out := make([]string, 0, list.Len())
	for i := 1; i <= list.Len(); i++ {
		s, ok := list.RawGetInt(i).(lua.LString)
		if !ok {
			L.RaiseError("%s[%d] must be a string", key, i)
		}
		out = append(out, string(s))
	}
	return out
}
