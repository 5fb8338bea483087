package luabind

import (
	"errors"
	"io"
	"strings"

	"github.com/koukan/koukan/engine/chain"
	lua "github.com/yuin/gopher-lua"
)

// msgView is what a data hook's msg is: the message as it goes upstream. Scripts read its
// header fields and its bytes, prepend fields and delete fields; they never rewrite bytes.
type msgView struct {
	m *chain.Message
	c *call
	// readers are streams that msg:chunks opened, closed when the call ends.
	readers []io.Closer
}

// Bounds of what a script may pull into a Lua string at once.
const (
	defaultRead = 1 << 20
	maxRead     = 16 << 20
	maxChunk    = 1 << 20
)

func (s *state) newMsg(m *chain.Message) (*lua.LUserData, *msgView) {
	v := &msgView{m: m, c: s.call}
	ud := s.L.NewUserData()
	ud.Value = v
	ud.Metatable = s.meta.msg
	return ud, v
}

func (v *msgView) close() {
	for _, r := range v.readers {
		r.Close()
	}
	v.readers = nil
}

func checkMsg(L *lua.LState) *msgView {
	v, ok := L.CheckUserData(1).Value.(*msgView)
	if !ok {
		L.ArgError(1, "msg expected")
	}
	if v.c.done {
		L.RaiseError("this msg belongs to a call that has returned")
	}
	return v
}

func (v *msgView) fields(L *lua.LState) []chain.Field {
	fs, err := v.m.Header(v.c.ctx)
	if err != nil {
		L.RaiseError("reading the message header: %s", err)
	}
	return fs
}

var msgMethods = map[string]lua.LGFunction{
	// msg:header(name) is the value of the topmost field of that name, unfolded, or nil.
	"header": func(L *lua.LState) int {
		v := checkMsg(L)
		name := L.CheckString(2)
		for _, f := range v.fields(L) {
			if strings.EqualFold(f.Name, name) {
				L.Push(lua.LString(f.Value()))
				return 1
			}
		}
		L.Push(lua.LNil)
		return 1
	},
	// msg:header_all(name) lists the values of every field of that name, top to bottom.
	"header_all": func(L *lua.LState) int {
		v := checkMsg(L)
		name := L.CheckString(2)
		t := L.NewTable()
		for _, f := range v.fields(L) {
			if strings.EqualFold(f.Name, name) {
				t.Append(lua.LString(f.Value()))
			}
		}
		L.Push(t)
		return 1
	},
	// msg:fields() lists every header field as {name=..., value=..., raw=...}.
	"fields": func(L *lua.LState) int {
		v := checkMsg(L)
		t := L.NewTable()
		for _, f := range v.fields(L) {
			e := L.NewTable()
			e.RawSetString("name", lua.LString(f.Name))
			e.RawSetString("value", lua.LString(f.Value()))
			e.RawSetString("raw", lua.LString(f.Raw))
			t.Append(e)
		}
		L.Push(t)
		return 1
	},
	// msg:prepend(name, value) adds a field on top, folded to fit.
	"prepend": func(L *lua.LState) int {
		v := checkMsg(L)
		field, err := formatField(L.CheckString(2), L.CheckString(3))
		if err != nil {
			L.RaiseError("msg:prepend: %s", err)
		}
		v.m.Prepend(field)
		return 0
	},
	// msg:delete(name[, n]) removes the nth field of that name from the top, or all of
	// them, and returns how many it removed.
	"delete": func(L *lua.LState) int {
		v := checkMsg(L)
		n, err := v.m.Delete(v.c.ctx, L.CheckString(2), L.OptInt(3, 0))
		if err != nil {
			L.RaiseError("msg:delete: %s", err)
		}
		L.Push(lua.LNumber(n))
		return 1
	},
	// msg:size() is the message's length in bytes, or nil if it is not known before
	// reading it.
	"size": func(L *lua.LState) int {
		v := checkMsg(L)
		if n := v.m.Size(); n >= 0 {
			L.Push(lua.LNumber(n))
		} else {
			L.Push(lua.LNil)
		}
		return 1
	},
	// msg:read([max]) returns up to max bytes (1 MiB by default, 16 MiB at most) of the
	// message from the top, and whether there was more.
	"read": func(L *lua.LState) int {
		v := checkMsg(L)
		limit := L.OptInt(2, defaultRead)
		if limit < 0 || limit > maxRead {
			L.ArgError(2, "max must be between 0 and 16 MiB")
		}
		r, err := v.m.Open(v.c.ctx)
		if err != nil {
			L.RaiseError("msg:read: %s", err)
		}
		defer r.Close()
		b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
		if err != nil {
			L.RaiseError("msg:read: %s", err)
		}
		more := len(b) > limit
		if more {
			b = b[:limit]
		}
		L.Push(lua.LString(b))
		L.Push(lua.LBool(more))
		return 2
	},
	// msg:chunks([size]) iterates over the message in pieces of up to size bytes (64 KiB by
	// default): for chunk in msg:chunks() do ... end.
	"chunks": func(L *lua.LState) int {
		v := checkMsg(L)
		size := L.OptInt(2, 64<<10)
		if size < 1 || size > maxChunk {
			L.ArgError(2, "size must be between 1 and 1 MiB")
		}
		r, err := v.m.Open(v.c.ctx)
		if err != nil {
			L.RaiseError("msg:chunks: %s", err)
		}
		v.readers = append(v.readers, r)
		buf := make([]byte, size)
		L.Push(L.NewFunction(func(L *lua.LState) int {
			if v.c.done {
				L.RaiseError("this msg belongs to a call that has returned")
			}
			n, err := io.ReadFull(r, buf)
			if n > 0 {
				L.Push(lua.LString(buf[:n]))
				return 1
			}
			if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				L.RaiseError("msg:chunks: %s", err)
			}
			L.Push(lua.LNil)
			return 1
		}))
		return 1
	},
}

// formatField makes "Name: value\r\n", folding the value at spaces so that lines stay
// under 78 characters where they can.
func formatField(name, value string) (string, error) {
	if name == "" {
		return "", errors.New("empty field name")
	}
	for _, c := range []byte(name) {
		if c <= ' ' || c >= 127 || c == ':' {
			return "", errors.New("field name must be printable ASCII without spaces or ':'")
		}
	}
	if strings.ContainsAny(value, "\r\n") {
		return "", errors.New("field value must not contain line breaks: folding is done for you")
	}
	var b strings.Builder
	line := len(name) + 1
	b.WriteString(name)
	b.WriteString(":")
	for i, word := range strings.Split(value, " ") {
		if i > 0 && line+1+len(word) > 78 && line > 1 {
			b.WriteString("\r\n")
			line = 0
		}
		b.WriteString(" ")
		b.WriteString(word)
		line += 1 + len(word)
	}
	b.WriteString("\r\n")
	return b.String(), nil
}
