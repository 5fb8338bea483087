package luabind

import (
	"strings"
	"testing"
	"time"

	"github.com/koukan/koukan/luabind/lint"
	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// FuzzScript runs arbitrary scripts as filters through the sandbox, without the linter: the
// process survives whatever they do, and a failure is an answer (451 4.3.0), never a panic
// out of the runtime.
func FuzzScript(f *testing.F) {
	for _, seed := range []string{
		"local M = {}\nfunction M.mail(tx) return koukan.reject(550, \"5.7.1\", tx.mail_from) end\nreturn M",
		"local M = {}\nfunction M.data(tx, msg) msg:prepend(\"X\", msg:header(\"subject\") or \"\") msg:delete(\"subject\") end\nreturn M",
		"local M = {}\nfunction M.rcpt(tx, r) tx:set_signal(\"s\", {r.address, r.params}) return nil end\nreturn M",
		"return {mail = function(tx) local t = {} for i = 1, 1e9 do t[i] = i end end}",
		"return {mail = function(tx) return (\"x\"):rep(-1) .. tostring(tx:rcpt(99)) end}",
	} {
		f.Add(seed)
	}
	rt := newRuntime(f, f.TempDir(), func(o *Options) { o.CallTimeout = 50 * time.Millisecond })
	f.Fuzz(func(t *testing.T, src string) {
		chunk, err := parse.Parse(strings.NewReader(src), "fuzz.lua")
		if err != nil {
			return
		}
		proto, err := lua.Compile(chunk, "fuzz.lua")
		if err != nil {
			return
		}
		script := &Script{Name: "fuzz", Kind: lint.Filter, File: "fuzz.lua", proto: proto}
		step := &filterStep{rt: rt, v: rt.cur.Load(), in: &instance{script: script, name: "fuzz"}}
		tr := txTo("a@example.com", "b@example.com")
		runChain(t, tr, "Subject: x\r\n\r\nhi\r\n", step)
		if tr.MailResponse == nil {
			t.Fatalf("MAIL got no answer from %q", src)
		}
	})
}
