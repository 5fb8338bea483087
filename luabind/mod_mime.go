package luabind

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/koukan/koukan/engine/mime"
	lua "github.com/yuin/gopher-lua"
)

// mimeModule is koukan.mime: parse, validate and prepend.
//
// koukan.mime.parse(msg [, max_inline]) is the message's MIME structure as the
// parsed-message JSON (headers, parts with content types; text parts inline up to
// max_inline bytes in all, 64 KiB by default). Attachments are read and skipped, never
// held.
func (rt *Runtime) mimeModule(s *state) map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		"parse": func(L *lua.LState) int {
			mv := checkMsg(L)
			maxInline := L.OptInt(2, 64<<10)
			if maxInline < 0 || maxInline > maxRead {
				L.ArgError(2, "max_inline must be between 0 and 16 MiB")
			}
			r, err := mv.m.Open(s.call.ctx)
			if err != nil {
				return fail(L, err)
			}
			defer r.Close()
			skip := func(string, string, io.Reader) error { return nil }
			parsed, err := mime.Parse(r, maxInline, skip)
			if err != nil {
				return fail(L, err)
			}
			L.Push(jsonToLua(L, parsed))
			return 1
		},
		// koukan.mime.prepend(msg, name, lines) adds a field on top whose value is folded
		// where the script says: the lines joined with CRLF TAB, as trace fields are
		// written (msg:prepend folds at 78 columns by itself).
		"prepend": func(L *lua.LState) int {
			mv := checkMsg(L)
			name := L.CheckString(2)
			t := unproxy(L.CheckTable(3))
			var lines []string
			for i := 1; i <= t.Len(); i++ {
				line, ok := t.RawGetInt(i).(lua.LString)
				if !ok {
					L.ArgError(3, "lines must be a list of strings")
				}
				lines = append(lines, string(line))
			}
			field, err := foldedField(name, lines)
			if err != nil {
				L.RaiseError("koukan.mime.prepend: %s", err)
			}
			mv.m.Prepend(field)
			return 0
		},
		// koukan.mime.validate(msg [, {smtputf8 = bool}]) rates how well formed the message
		// is (engine/mime.Validate): {status = 0..3, level = "NONE".."HIGH", err = why not
		// one level higher, received_header_count = n, header_from = address,
		// header_from_name = display name}, each key only when known. UTF-8 header fields
		// are allowed only with smtputf8. Bodies are streamed, never held.
		"validate": func(L *lua.LState) int {
			mv := checkMsg(L)
			var o mime.ValidateOptions
			if t, ok := L.Get(2).(*lua.LTable); ok {
				o.SMTPUTF8 = lua.LVAsBool(unproxy(t).RawGetString("smtputf8"))
			} else if L.GetTop() >= 2 && L.Get(2) != lua.LNil {
				L.ArgError(2, "options must be a table")
			}
			r, err := mv.m.Open(s.call.ctx)
			if err != nil {
				return fail(L, err)
			}
			defer r.Close()
			v, err := mime.Validate(r, o)
			if err != nil {
				return fail(L, err)
			}
			t := L.NewTable()
			t.RawSetString("status", lua.LNumber(v.Level))
			t.RawSetString("level", lua.LString(v.Level.String()))
			if v.Err != "" {
				t.RawSetString("err", lua.LString(v.Err))
			}
			if v.ReceivedCount >= 0 {
				t.RawSetString("received_header_count", lua.LNumber(v.ReceivedCount))
			}
			if v.HeaderFrom != "" {
				t.RawSetString("header_from", lua.LString(v.HeaderFrom))
				t.RawSetString("header_from_name", lua.LString(v.HeaderFromName))
			}
			L.Push(t)
			return 1
		},
	}
}

// foldedField makes "Name: line1\r\n\tline2...\r\n". Lines must be non-blank, without
// line breaks, and short enough for RFC 5322's 998-octet limit.
func foldedField(name string, lines []string) (string, error) {
	if _, err := formatField(name, ""); err != nil {
		return "", err
	}
	if len(lines) == 0 {
		return "", errors.New("no lines")
	}
	for i, l := range lines {
		switch {
		case strings.ContainsAny(l, "\r\n"):
			return "", fmt.Errorf("line %d has a line break", i+1)
		case strings.TrimSpace(l) == "":
			return "", fmt.Errorf("line %d is blank", i+1)
		case len(l)+len(name)+2 > 998:
			return "", fmt.Errorf("line %d is longer than 998 octets", i+1)
		}
	}
	return name + ": " + strings.Join(lines, "\r\n\t") + "\r\n", nil
}
