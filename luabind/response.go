package luabind

import (
	"fmt"
	"net"
	"regexp"
	"strconv"

	"github.com/koukan/koukan/engine/tx"
	lua "github.com/yuin/gopher-lua"
)

// A response is a userdata holding a tx.Response, made by koukan.reject and
// koukan.tempfail; a hook returns one (or raises it with error()) to answer its phase.

func (s *state) newResponse(r tx.Response) *lua.LUserData {
	ud := s.L.NewUserData()
	ud.Value = r
	ud.Metatable = s.meta.response
	return ud
}

func toResponse(v lua.LValue) (tx.Response, bool) {
	ud, ok := v.(*lua.LUserData)
	if !ok {
		return tx.Response{}, false
	}
	r, ok := ud.Value.(tx.Response)
	return r, ok
}

func responseOrNil(s *state, r *tx.Response) lua.LValue {
	if r == nil {
		return lua.LNil
	}
	return s.newResponse(*r)
}

func responseMetatable(L *lua.LState) *lua.LTable {
	fields := map[string]func(*lua.LState, tx.Response) lua.LValue{
		"code":      func(_ *lua.LState, r tx.Response) lua.LValue { return lua.LNumber(r.Code) },
		"message":   func(_ *lua.LState, r tx.Response) lua.LValue { return lua.LString(r.Message) },
		"ok":        func(_ *lua.LState, r tx.Response) lua.LValue { return lua.LBool(r.Ok()) },
		"temporary": func(_ *lua.LState, r tx.Response) lua.LValue { return lua.LBool(r.Code/100 == 4) },
	}
	check := func(L *lua.LState) tx.Response {
		r, ok := toResponse(L.Get(1))
		if !ok {
			L.ArgError(1, "response expected")
		}
		return r
	}
	mt := newMetatable(L, "response", indexer(L, nil, check, fields))
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		r := check(L)
		L.Push(lua.LString(fmt.Sprintf("%d %s", r.Code, r.Message)))
		return 1
	}))
	return mt
}

var enhancedCode = regexp.MustCompile(`^([245])\.[0-9]{1,3}\.[0-9]{1,3}$`)

// makeResponse is koukan.reject (class 5) and koukan.tempfail (class 4):
// (code, enhanced code, text), with code and enhanced code of the one class.
func makeResponse(s *state, class int) lua.LGFunction {
	return func(L *lua.LState) int {
		code := L.CheckInt(1)
		enh := L.CheckString(2)
		text := L.OptString(3, "")
		if code/100 != class || code > class*100+99 {
			L.ArgError(1, fmt.Sprintf("code must be %dxx, got %d", class, code))
		}
		m := enhancedCode.FindStringSubmatch(enh)
		if m == nil {
			L.ArgError(2, fmt.Sprintf("enhanced status code must look like %d.x.y, got %q", class, enh))
		}
		if m[1] != strconv.Itoa(class) {
			L.ArgError(2, fmt.Sprintf("enhanced status code %q must have class %d like the code", enh, class))
		}
		msg := enh
		if text != "" {
			msg += " " + text
		}
		L.Push(s.newResponse(tx.Response{Code: code, Message: msg}))
		return 1
	}
}

// destination is where a script routes a transaction: a rest_endpoint of the config by
// name, or a URL.
type destination struct {
	endpoint     string
	restEndpoint string
	hosts        []tx.HostPort
	options      map[string]any
}

// destinationFromLua reads {endpoint=name or rest_endpoint=URL, remote_hosts={"host:port"
// or {host, port}} (or host_list={{host=, port=}}, as in the config), options={...}}.
func destinationFromLua(t *lua.LTable) (*destination, error) {
	t = unproxy(t)
	d := &destination{}
	var err error
	t.ForEach(func(k, v lua.LValue) {
		if err != nil {
			return
		}
		switch k.String() {
		case "endpoint", "rest_endpoint":
			s, ok := v.(lua.LString)
			if !ok {
				err = fmt.Errorf("%s must be a string", k.String())
			}
			if k.String() == "endpoint" {
				d.endpoint = string(s)
			} else {
				d.restEndpoint = string(s)
			}
		case "remote_hosts", "host_list":
			d.hosts, err = hostsFromLua(v)
		case "options":
			var o any
			if o, err = fromLua(v); err == nil {
				var ok bool
				if d.options, ok = o.(map[string]any); !ok && o != nil {
					err = fmt.Errorf("options must be a table with string keys")
				}
			}
		default:
			err = fmt.Errorf("unknown destination key %q (keys are endpoint, rest_endpoint, remote_hosts, host_list, options)", k.String())
		}
	})
	return d, err
}

func hostsFromLua(v lua.LValue) ([]tx.HostPort, error) {
	t, ok := v.(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("remote_hosts must be a list")
	}
	t = unproxy(t)
	out := []tx.HostPort{} // not nil: an empty list clears the hosts
	for i := 1; i <= t.Len(); i++ {
		item := t.RawGetInt(i)
		var hp tx.HostPort
		switch item := item.(type) {
		case lua.LString:
			host, port, err := net.SplitHostPort(string(item))
			if err != nil {
				return nil, fmt.Errorf("remote_hosts[%d]: %q is not host:port", i, string(item))
			}
			p, err := strconv.Atoi(port)
			if err != nil || p < 1 || p > 65535 {
				return nil, fmt.Errorf("remote_hosts[%d]: bad port %q", i, port)
			}
			hp = tx.HostPort{Host: host, Port: p}
		case *lua.LTable:
			item = unproxy(item)
			host, hok := item.RawGetInt(1).(lua.LString)
			port, pok := item.RawGetInt(2).(lua.LNumber)
			if !hok {
				host, hok = item.RawGetString("host").(lua.LString)
				port, pok = item.RawGetString("port").(lua.LNumber)
			}
			if !hok || !pok || port < 1 || port > 65535 {
				return nil, fmt.Errorf("remote_hosts[%d]: expected {host, port} or {host=, port=}", i)
			}
			hp = tx.HostPort{Host: string(host), Port: int(port)}
		default:
			return nil, fmt.Errorf("remote_hosts[%d]: expected \"host:port\" or {host, port}", i)
		}
		out = append(out, hp)
	}
	return out, nil
}

func (d *destination) applyTo(t *tx.Tx) {
	if d.restEndpoint != "" {
		t.RestEndpoint = d.restEndpoint
	}
	if d.hosts != nil {
		t.Resolution = d.hosts
	}
	if d.options != nil {
		t.Options = d.options
	}
}
