package luabind

import (
	"github.com/koukan/koukan/engine/auth"
	lua "github.com/yuin/gopher-lua"
)

// koukan.domain: organizational domains (RFC 7489 §3.2, from the public suffix list built
// into the binary) and DMARC identifier alignment, for scripts that compare the domains
// of the header From, DKIM d= and the envelope.
func init() {
	extraModules["domain"] = func(rt *Runtime, s *state) map[string]lua.LGFunction {
		return map[string]lua.LGFunction{
			// koukan.domain.organizational(d) is d's organizational domain in lower-case
			// A-labels (mail.example.co.uk -> example.co.uk), or nil and why.
			"organizational": func(L *lua.LState) int {
				org, err := auth.OrganizationalDomain(L.CheckString(1))
				if err != nil {
					return fail(L, err)
				}
				L.Push(lua.LString(org))
				return 1
			},
			// koukan.domain.aligned(a, b [, mode]) tells whether a and b are aligned:
			// mode "relaxed" (the default, also "r") wants the same organizational
			// domain, "strict" ("s") the same domain. A malformed domain is not aligned:
			// false and why.
			"aligned": func(L *lua.LState) int {
				a, b := L.CheckString(1), L.CheckString(2)
				var strict bool
				switch mode := L.OptString(3, "relaxed"); mode {
				case "relaxed", "r":
				case "strict", "s":
					strict = true
				default:
					L.ArgError(3, `mode must be "relaxed" or "strict"`)
				}
				ok, err := auth.Aligned(a, b, strict)
				L.Push(lua.LBool(ok))
				if err != nil {
					L.Push(lua.LString(err.Error()))
					return 2
				}
				return 1
			},
		}
	}
}
