package luabind

import (
	"net"
	"time"

	"github.com/koukan/koukan/engine/addr"
	"github.com/koukan/koukan/engine/auth"
	lua "github.com/yuin/gopher-lua"
	luar "layeh.com/gopher-luar"
)

// dkimModule is koukan.dkim: sign prepends a DKIM-Signature to the message as it goes
// upstream; verify checks the signatures it has.
func (rt *Runtime) dkimModule(s *state) map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		// koukan.dkim.sign(msg, {domain=, selector=, key=path [, headers={...}]
		// [, expiration=seconds]}) returns true, or nil and why.
		"sign": func(L *lua.LState) int {
			mv := checkMsg(L)
			o := unproxy(L.CheckTable(2))
			key, err := rt.keys.Load(tableString(L, o, "key"))
			if err != nil {
				return fail(L, err)
			}
			opts := auth.SignOptions{Domain: tableString(L, o, "domain"), Selector: tableString(L, o, "selector"), Key: key,
				Expiration: time.Duration(float64(lua.LVAsNumber(o.RawGetString("expiration"))) * float64(time.Second))}
			if hs, ok := o.RawGetString("headers").(*lua.LTable); ok {
				unproxy(hs).ForEach(func(_, v lua.LValue) { opts.HeaderKeys = append(opts.HeaderKeys, v.String()) })
			}
			r, err := mv.m.Open(s.call.ctx)
			if err != nil {
				return fail(L, err)
			}
			defer r.Close()
			field, err := auth.Sign(r, opts)
			if err != nil {
				return fail(L, err)
			}
			mv.m.Prepend(field)
			L.Push(lua.LTrue)
			return 1
		},
		// koukan.dkim.verify(msg) lists one result per signature ({domain, selector,
		// result, reason, ...}), or returns nil and why.
		"verify": func(L *lua.LState) int {
			mv := checkMsg(L)
			r, err := mv.m.Open(s.call.ctx)
			if err != nil {
				return fail(L, err)
			}
			defer r.Close()
			res, err := auth.Verify(s.call.ctx, r, rt.resolver().LookupTXT)
			if err != nil {
				return fail(L, err)
			}
			L.Push(luar.New(L, res))
			return 1
		},
	}
}

// spfModule is koukan.spf.check(ip, helo, mail_from): {result=, domain=, explanation=}.
func (rt *Runtime) spfModule(s *state) map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		"check": func(L *lua.LState) int {
			ip := net.ParseIP(L.OptString(1, ""))
			res := auth.CheckSPF(s.call.ctx, rt.resolver(), ip, L.OptString(2, ""), L.OptString(3, ""))
			L.Push(luar.New(L, res))
			return 1
		},
	}
}

// addrModule is koukan.addr: parse, normalize and parse_header.
func addrModule() map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		// koukan.addr.parse(s) splits an envelope address ("a@b" or "<a@b>"; "<>" is the
		// null path): {local_part, domain, ascii_domain, unicode_domain, smtputf8, null}.
		"parse": func(L *lua.LState) int {
			m, null, err := addr.ParsePath(L.CheckString(1))
			if err != nil {
				return fail(L, err)
			}
			t := L.NewTable()
			t.RawSetString("null", lua.LBool(null))
			if !null {
				t.RawSetString("local_part", lua.LString(m.Local))
				t.RawSetString("domain", lua.LString(m.Domain))
				if a, err := m.ASCIIDomain(); err == nil {
					t.RawSetString("ascii_domain", lua.LString(a))
				}
				if u, err := m.UnicodeDomain(); err == nil {
					t.RawSetString("unicode_domain", lua.LString(u))
				}
				t.RawSetString("smtputf8", lua.LBool(m.NeedsSMTPUTF8()))
			}
			L.Push(t)
			return 1
		},
		// koukan.addr.normalize(s [, {fold_local_case=bool, strip_subaddress="+"}]).
		"normalize": func(L *lua.LState) int {
			var o addr.NormalizeOptions
			if t, ok := L.Get(2).(*lua.LTable); ok {
				t = unproxy(t)
				o.FoldLocalCase = lua.LVAsBool(t.RawGetString("fold_local_case"))
				o.StripSubaddress = lua.LVAsString(t.RawGetString("strip_subaddress"))
			}
			n, err := addr.Normalize(L.CheckString(1), o)
			if err != nil {
				return fail(L, err)
			}
			L.Push(lua.LString(n))
			return 1
		},
		// koukan.addr.parse_header(s) lists the addresses of a From:/To: value:
		// {name, address, local_part, domain}.
		"parse_header": func(L *lua.LState) int {
			as, err := addr.ParseHeaderAddressList(L.CheckString(1))
			if err != nil {
				return fail(L, err)
			}
			t := L.CreateTable(len(as), 0)
			for _, a := range as {
				e := L.NewTable()
				e.RawSetString("name", lua.LString(a.Name))
				e.RawSetString("address", lua.LString(a.Mailbox.String()))
				e.RawSetString("local_part", lua.LString(a.Mailbox.Local))
				e.RawSetString("domain", lua.LString(a.Mailbox.Domain))
				t.Append(e)
			}
			L.Push(t)
			return 1
		},
	}
}

// fail returns nil and the error's text: the Lua convention for an expected failure.
func fail(L *lua.LState, err error) int {
	L.Push(lua.LNil)
	L.Push(lua.LString(err.Error()))
	return 2
}

func tableString(L *lua.LState, t *lua.LTable, key string) string {
	v, ok := t.RawGetString(key).(lua.LString)
	if !ok {
		L.RaiseError("option %q must be a string", key)
	}
	return string(v)
}

// unproxy is the table behind a read-only view (step options), or t itself.
func unproxy(t *lua.LTable) *lua.LTable {
	if src := readOnlySource(t); src != nil {
		return src
	}
	return t
}
