package luabind

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/koukan/koukan/engine/addr"
	"github.com/koukan/koukan/engine/auth"
	lua "github.com/yuin/gopher-lua"
	luar "layeh.com/gopher-luar"
)

// dkimModule is koukan.dkim: sign prepends DKIM-Signatures to the message as it goes
// upstream; verify checks the signatures it has.
func (rt *Runtime) dkimModule(s *state) map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		// koukan.dkim.sign(msg, key [, defaults]) signs with one key, {domain=, selector=,
		// key=path [, headers={...}] [, expiration=seconds] [, canonicalization="h/b"]},
		// or with a list of them, reading the message once. defaults gives headers,
		// expiration and canonicalization to the keys that do not set them. The
		// DKIM-Signature fields are prepended in the order of the list (the first on top).
		// It returns true, or nil and why.
		"sign": func(L *lua.LState) int {
			mv := checkMsg(L)
			spec := unproxy(L.CheckTable(2))
			defaults := L.NewTable()
			if t, ok := L.Get(3).(*lua.LTable); ok {
				defaults = unproxy(t)
			} else if L.Get(3) != lua.LNil {
				L.ArgError(3, "defaults must be a table")
			}
			var entries []*lua.LTable
			if spec.RawGetInt(1) == lua.LNil {
				entries = []*lua.LTable{spec}
			} else {
				for i := 1; i <= spec.Len(); i++ {
					e, ok := spec.RawGetInt(i).(*lua.LTable)
					if !ok {
						L.ArgError(2, fmt.Sprintf("key %d is a %s, not a table {domain=, selector=, key=}", i, spec.RawGetInt(i).Type()))
					}
					entries = append(entries, unproxy(e))
				}
			}
			signers := make([]*auth.Signer, len(entries))
			for i, e := range entries {
				o, err := rt.signOptions(L, e, defaults)
				if err != nil {
					return fail(L, err)
				}
				if signers[i], err = auth.NewSigner(o); err != nil {
					return fail(L, err)
				}
			}
			r, err := mv.m.Open(s.call.ctx)
			if err != nil {
				return fail(L, err)
			}
			defer r.Close()
			fields, err := auth.SignAll(r, signers...)
			if err != nil {
				return fail(L, err)
			}
			for i := len(fields) - 1; i >= 0; i-- {
				mv.m.Prepend(fields[i])
			}
			L.Push(lua.LTrue)
			return 1
		},
		// koukan.dkim.verify(msg) lists one result per signature, top to bottom:
		// {Domain, Selector, Identifier, Algorithm, Result, Reason, Tags}, Tags being the
		// signature's tags but b= and bh=. It returns nil and why if the message could
		// not be read.
		"verify": func(L *lua.LState) int {
			mv := checkMsg(L)
			r, err := mv.m.Open(s.call.ctx)
			if err != nil {
				return fail(L, err)
			}
			defer r.Close()
			ctx, cancel := s.call.netCtx()
			defer cancel()
			res, allTags, err := auth.VerifyTags(ctx, r, rt.resolver().LookupTXT)
			if err != nil {
				return fail(L, err)
			}
			list := L.CreateTable(len(res), 0)
			for i, v := range res {
				t := L.CreateTable(0, 7)
				for k, s := range map[string]string{"Domain": v.Domain, "Selector": v.Selector, "Identifier": v.Identifier,
					"Algorithm": v.Algorithm, "Result": v.Result, "Reason": v.Reason} {
					t.RawSetString(k, lua.LString(s))
				}
				tags := L.CreateTable(0, len(allTags[i]))
				for k, s := range allTags[i] {
					tags.RawSetString(k, lua.LString(s))
				}
				t.RawSetString("Tags", tags)
				list.Append(t)
			}
			L.Push(list)
			return 1
		},
	}
}

// signOptions reads one key of koukan.dkim.sign: the key entry e, with the options it
// lacks taken from defaults. Wrong types are the script's error; a key file that does not
// load is returned.
func (rt *Runtime) signOptions(L *lua.LState, e, defaults *lua.LTable) (auth.SignOptions, error) {
	get := func(name string) lua.LValue {
		if v := e.RawGetString(name); v != lua.LNil {
			return v
		}
		return defaults.RawGetString(name)
	}
	key, err := rt.keys.Load(tableString(L, e, "key"))
	if err != nil {
		return auth.SignOptions{}, err
	}
	o := auth.SignOptions{Domain: tableString(L, e, "domain"), Selector: tableString(L, e, "selector"), Key: key}
	switch v := get("expiration").(type) {
	case *lua.LNilType:
	case lua.LNumber:
		o.Expiration = time.Duration(float64(v) * float64(time.Second))
	default:
		L.RaiseError("option \"expiration\" must be a number of seconds, not a %s", v.Type())
	}
	switch v := get("canonicalization").(type) {
	case *lua.LNilType:
	case lua.LString:
		o.Canonicalization = string(v)
	default:
		L.RaiseError("option \"canonicalization\" must be a string such as \"relaxed/simple\", not a %s", v.Type())
	}
	switch v := get("headers").(type) {
	case *lua.LNilType:
	case *lua.LTable:
		o.HeaderKeys = []string{}
		unproxy(v).ForEach(func(_, h lua.LValue) { o.HeaderKeys = append(o.HeaderKeys, h.String()) })
	default:
		L.RaiseError("option \"headers\" must be a list of field names, not a %s", v.Type())
	}
	return o, nil
}

// spfModule is koukan.spf.check(ip, helo, mail_from): {result=, domain=, explanation=}.
func (rt *Runtime) spfModule(s *state) map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		"check": func(L *lua.LState) int {
			ip := net.ParseIP(L.OptString(1, ""))
			ctx, cancel := s.call.netCtx()
			res := auth.CheckSPF(ctx, rt.resolver(), ip, L.OptString(2, ""), L.OptString(3, ""))
			cancel()
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

func init() {
	extraModules["dmarc"] = func(rt *Runtime, s *state) map[string]lua.LGFunction {
		return map[string]lua.LGFunction{
			// koukan.dmarc.lookup(domain) finds the DMARC policy of an author (From) domain:
			// {policy, p, sp, adkim, aspf, pct, rua, ruf, fo, domain, org_domain,
			// author_domain}, where policy is the one for this domain (sp for a subdomain
			// whose record is the organizational domain's) and domain is where the record
			// was found. Without a policy it returns nil, the RFC 8601 result ("none",
			// "temperror" or "permerror") and why.
			"lookup": func(L *lua.LState) int {
				ctx, cancel := s.call.netCtx()
				p, err := auth.LookupDMARC(ctx, rt.resolver().LookupTXT, L.CheckString(1))
				cancel()
				if err != nil {
					L.Push(lua.LNil)
					var de *auth.DMARCError
					if errors.As(err, &de) {
						L.Push(lua.LString(de.Result))
						L.Push(lua.LString(de.Reason))
					} else {
						L.Push(lua.LString("temperror"))
						L.Push(lua.LString(err.Error()))
					}
					return 3
				}
				t := L.NewTable()
				r := p.Record
				for k, v := range map[string]string{"policy": p.Policy, "p": r.Policy, "sp": r.SubdomainPolicy, "adkim": r.ADKIM,
					"aspf": r.ASPF, "fo": r.FailureOptions, "domain": p.Domain, "org_domain": p.OrgDomain, "author_domain": p.AuthorDomain} {
					if v != "" {
						t.RawSetString(k, lua.LString(v))
					}
				}
				t.RawSetString("pct", lua.LNumber(r.Percent))
				for k, uris := range map[string][]string{"rua": r.ReportAggregate, "ruf": r.ReportFailure} {
					list := L.CreateTable(len(uris), 0)
					for _, u := range uris {
						list.Append(lua.LString(u))
					}
					t.RawSetString(k, list)
				}
				L.Push(t)
				return 1
			},
		}
	}
}
