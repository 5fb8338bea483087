package luabind

import (
	"io"

	"github.com/koukan/koukan/engine/mime"
	lua "github.com/yuin/gopher-lua"
)

// mimeModule is koukan.mime.parse(msg [, max_inline]): the message's MIME structure as the
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
	}
}
