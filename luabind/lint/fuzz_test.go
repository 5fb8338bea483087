package lint

import (
	"strings"
	"testing"
)

// FuzzAnalyze checks that no input makes Analyze panic, since hot reload
// runs it inside the server, and that every finding has a usable position.
func FuzzAnalyze(f *testing.F) {
	for _, seed := range []string{
		"",
		"local opts = ...\nlocal M = {}\nfunction M.mail(tx) if opts.x then print(opts.x.y) end end\nfunction M:rcpt(r) return self end\nreturn M",
		"return {mail = function(tx) end, rpct = function() end}",
		"local function route(tx, rcpt) return rcpt end\nreturn route",
		"for i = 1, 3 do local x = i end repeat local d = 1 until d\nwhile x do break end",
		"local o = ...\no.x.y = 1\nreturn o[k] or #o",
		"local s = 'abc\nreturn 1",
		"--[==[ x",
		"x = [=x",
		"a ~ b 0x",
		"::top:: goto top",
		"return " + strings.Repeat("(", 50) + "1" + strings.Repeat(")", 50),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		for _, kind := range []Kind{Filter, Policy, Matcher} {
			info, fs := Analyze("f.lua", []byte(src), kind, runtimeGlobals)
			if info.Hooks == nil || info.Options == nil {
				t.Fatal("nil maps in Info")
			}
			for _, x := range fs {
				if x.File != "f.lua" || x.Line < 1 || x.Col < 1 || x.Message == "" {
					t.Fatalf("bad finding %+v", x)
				}
				if strings.HasPrefix(x.Message, "syntax error") && len(fs) != 1 {
					t.Fatalf("syntax error among other findings: %v", fs)
				}
			}
		}
	})
}
