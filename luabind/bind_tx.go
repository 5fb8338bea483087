package luabind

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/tx"
	lua "github.com/yuin/gopher-lua"
)

// txView is what a script's tx is: the transaction of one call. Its fields are read
// through getters; the only writes are signals, the destination and, through hook return
// values, responses.
type txView struct {
	s *state
	t *tx.Tx
	// u is the chain update of a filter's hook; nil for policies and matchers, which see
	// every recipient.
	u *chain.Update
	c *call
}

// rcptView is one recipient of a txView.
type rcptView struct {
	tv *txView
	i  int
}

// metatables are made once per state for the binding types.
type metatables struct {
	tx, rcpt, msg, response *lua.LTable
}

func (s *state) newTx(t *tx.Tx, u *chain.Update) *lua.LUserData {
	ud := s.L.NewUserData()
	ud.Value = &txView{s: s, t: t, u: u, c: s.call}
	ud.Metatable = s.meta.tx
	return ud
}

func (s *state) newRcpt(tv *txView, i int) *lua.LUserData {
	ud := s.L.NewUserData()
	ud.Value = &rcptView{tv: tv, i: i}
	ud.Metatable = s.meta.rcpt
	return ud
}

func checkTx(L *lua.LState) *txView {
	v, ok := L.CheckUserData(1).Value.(*txView)
	if !ok {
		L.ArgError(1, "tx expected")
	}
	if v.c.done {
		L.RaiseError("this tx belongs to a call that has returned")
	}
	return v
}

func checkRcpt(L *lua.LState) *rcptView {
	v, ok := L.CheckUserData(1).Value.(*rcptView)
	if !ok {
		L.ArgError(1, "rcpt expected")
	}
	if v.tv.c.done {
		L.RaiseError("this rcpt belongs to a call that has returned")
	}
	return v
}

// visible is how many recipients the script may see: those a filter's pass shows, or all.
func (v *txView) visible() int {
	if v.u != nil {
		return v.u.Recipients()
	}
	return len(v.t.RcptTo)
}

var txFields = map[string]func(L *lua.LState, v *txView) lua.LValue{
	"id": func(L *lua.LState, v *txView) lua.LValue { return lua.LString(v.t.RestID) },
	"sender": func(L *lua.LState, v *txView) lua.LValue {
		if v.t.Sender == nil {
			return lua.LNil
		}
		return lua.LString(v.t.Sender.Name)
	},
	"tag": func(L *lua.LState, v *txView) lua.LValue {
		if v.t.Sender == nil || v.t.Sender.Tag == "" {
			return lua.LNil
		}
		return lua.LString(v.t.Sender.Tag)
	},
	"mail_from": func(L *lua.LState, v *txView) lua.LValue {
		if v.t.MailFrom == nil {
			return lua.LNil
		}
		return lua.LString(v.t.MailFrom.Address)
	},
	"mail_params": func(L *lua.LState, v *txView) lua.LValue {
		if v.t.MailFrom == nil {
			return lua.LNil
		}
		return params(L, v.t.MailFrom.Esmtp)
	},
	"mail_response": func(L *lua.LState, v *txView) lua.LValue { return responseOrNil(v.s, v.t.MailResponse) },
	"rcpt_to": func(L *lua.LState, v *txView) lua.LValue {
		t := L.CreateTable(v.visible(), 0)
		for _, m := range v.t.RcptTo[:v.visible()] {
			t.Append(lua.LString(m.Address))
		}
		return t
	},
	"remote_ip":   func(L *lua.LState, v *txView) lua.LValue { return hostOf(v.t.RemoteHost) },
	"remote_port": func(L *lua.LState, v *txView) lua.LValue { return portOf(v.t.RemoteHost) },
	"local_ip":    func(L *lua.LState, v *txView) lua.LValue { return hostOf(v.t.LocalHost) },
	"local_port":  func(L *lua.LState, v *txView) lua.LValue { return portOf(v.t.LocalHost) },
	"smtp_meta": func(L *lua.LState, v *txView) lua.LValue {
		if v.t.SMTPMeta == nil {
			return lua.LNil
		}
		raw, _ := json.Marshal(v.t.SMTPMeta)
		return jsonToLua(L, raw)
	},
	"attempt": func(L *lua.LState, v *txView) lua.LValue { return lua.LNumber(v.t.AttemptCount) },
	"destination": func(L *lua.LState, v *txView) lua.LValue {
		if v.t.RestEndpoint == "" && len(v.t.Resolution) == 0 && v.t.Options == nil {
			return lua.LNil
		}
		d := L.NewTable()
		if v.t.RestEndpoint != "" {
			d.RawSetString("rest_endpoint", lua.LString(v.t.RestEndpoint))
		}
		hosts := L.NewTable()
		for _, h := range v.t.Resolution {
			hosts.Append(lua.LString(fmt.Sprintf("%s:%d", h.Host, h.Port)))
		}
		d.RawSetString("remote_hosts", hosts)
		d.RawSetString("options", toLua(L, v.t.Options, false))
		return d
	},
}

var txMethods = map[string]lua.LGFunction{
	// tx:rcpt(i) is recipient i (1-based) of those the script sees.
	"rcpt": func(L *lua.LState) int {
		v := checkTx(L)
		i := L.CheckInt(2)
		if i < 1 || i > v.visible() {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(v.s.newRcpt(v, i-1))
		return 1
	},
	// tx:signal(name) is the result a step filed under name, as a table of its own.
	"signal": func(L *lua.LState) int {
		v := checkTx(L)
		name := L.CheckString(2)
		if e, ok := v.t.EphemeralFilterOutput[name]; ok {
			raw, _ := json.Marshal(e)
			L.Push(jsonToLua(L, raw))
			return 1
		}
		L.Push(jsonToLua(L, v.t.FilterOutput[name]))
		return 1
	},
	// tx:set_signal(name, value) files a result for later steps and matchers; it is kept
	// with the transaction (value must have a JSON form).
	"set_signal": func(L *lua.LState) int {
		v := checkTx(L)
		name := L.CheckString(2)
		val, err := fromLua(L.CheckAny(3))
		if err != nil {
			L.ArgError(3, err.Error())
		}
		raw, err := json.Marshal(val)
		if err != nil {
			L.ArgError(3, err.Error())
		}
		if v.t.FilterOutput == nil {
			v.t.FilterOutput = map[string]json.RawMessage{}
		}
		v.t.FilterOutput[name] = raw
		return 0
	},
	// tx:set_destination{rest_endpoint=..., remote_hosts={"host:port", ...}, options={...}}
	// routes the transaction.
	"set_destination": func(L *lua.LState) int {
		v := checkTx(L)
		d, err := destinationFromLua(L.CheckTable(2))
		if err != nil {
			L.ArgError(2, err.Error())
		}
		d.applyTo(v.t)
		return 0
	},
}

var rcptFields = map[string]func(L *lua.LState, r *rcptView) lua.LValue{
	"address": func(L *lua.LState, r *rcptView) lua.LValue { return lua.LString(r.tv.t.RcptTo[r.i].Address) },
	"index":   func(L *lua.LState, r *rcptView) lua.LValue { return lua.LNumber(r.i + 1) },
	"params":  func(L *lua.LState, r *rcptView) lua.LValue { return params(L, r.tv.t.RcptTo[r.i].Esmtp) },
	"response": func(L *lua.LState, r *rcptView) lua.LValue {
		if r.tv.u != nil {
			return responseOrNil(r.tv.s, r.tv.u.RcptResponse(r.i))
		}
		if r.i < len(r.tv.t.RcptResponse) {
			return responseOrNil(r.tv.s, &r.tv.t.RcptResponse[r.i])
		}
		return lua.LNil
	},
}

func hostOf(h *tx.HostPort) lua.LValue {
	if h == nil {
		return lua.LNil
	}
	return lua.LString(h.Host)
}

func portOf(h *tx.HostPort) lua.LValue {
	if h == nil {
		return lua.LNil
	}
	return lua.LNumber(h.Port)
}

// params are ESMTP parameters as a table keyed by upper-case keyword; a parameter without a
// value is true.
func params(L *lua.LState, ps []tx.EsmtpParam) *lua.LTable {
	t := L.NewTable()
	for _, p := range ps {
		var v lua.LValue = lua.LTrue
		if p.Value != "" {
			v = lua.LString(p.Value)
		}
		t.RawSetString(strings.ToUpper(p.Keyword), v)
	}
	return t
}

// indexer makes an __index that serves methods first, then fields computed by get.
func indexer[V any](L *lua.LState, methods map[string]lua.LGFunction, check func(*lua.LState) V, fields map[string]func(*lua.LState, V) lua.LValue) *lua.LFunction {
	ms := L.SetFuncs(L.NewTable(), methods)
	return L.NewFunction(func(L *lua.LState) int {
		v := check(L)
		key := L.CheckString(2)
		if m := ms.RawGetString(key); m != lua.LNil {
			L.Push(m)
			return 1
		}
		get, ok := fields[key]
		if !ok {
			L.RaiseError("no field %q", key)
		}
		L.Push(get(L, v))
		return 1
	})
}

func newMetatable(L *lua.LState, name string, index *lua.LFunction) *lua.LTable {
	mt := L.NewTable()
	mt.RawSetString("__index", index)
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("%s fields are read-only; use its methods", name)
		return 0
	}))
	mt.RawSetString("__metatable", lua.LFalse)
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(name))
		return 1
	}))
	return mt
}
