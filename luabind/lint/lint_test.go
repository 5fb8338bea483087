package lint

import (
	"reflect"
	"strings"
	"testing"
)

// runtimeGlobals stands in for the names the runtime provides.
var runtimeGlobals = map[string]bool{
	"string": true, "table": true, "math": true, "pairs": true, "ipairs": true,
	"next": true, "print": true, "select": true, "tostring": true, "koukan": true,
}

// findings runs Analyze and renders its findings without the file name.
func findings(kind Kind, src string) []string {
	_, fs := Analyze("s.lua", []byte(src), kind, runtimeGlobals)
	var out []string
	for _, f := range fs {
		out = append(out, strings.TrimPrefix(f.String(), "s.lua:"))
	}
	return out
}

func TestFindings(t *testing.T) {
	const assigns = "; declare it local (scripts share no globals between calls)"
	tests := []struct {
		name string
		kind Kind
		src  string
		want []string
	}{
		// Syntax errors stop the analysis.
		{"syntax unexpected token", Filter, "local x = = 1", []string{"1:11: syntax error near '='"}},
		{"syntax eof", Filter, "function f(\n", []string{"1:12: syntax error: unexpected end of file"}},
		{"syntax unterminated string", Filter, "local s = 'abc\nreturn {}", []string{"1:11: syntax error: unterminated string"}},
		{"syntax bad character", Filter, "x = 1 @ 2", []string{`1:7: syntax error: unexpected character "@"`}},
		{"syntax tilde", Filter, "a ~ b", []string{`1:3: syntax error: unexpected character "~"`}},
		{"syntax long string", Filter, "local a = [==[ abc", []string{"1:11: syntax error: unterminated long string"}},
		{"syntax long string delimiter", Filter, "x = [=x", []string{"1:5: syntax error: invalid long string delimiter"}},
		{"syntax long comment", Filter, "return {}\n  --[==[ abc", []string{"2:3: syntax error: unterminated or invalid long comment"}},
		{"syntax hex", Filter, "local x = 0x", []string{"1:11: syntax error: malformed number near '0x'"}},
		{"syntax expression statement", Filter, "local t = {}\nt.x\nreturn t", []string{"3:1: syntax error near 'return'"}},
		{"syntax long token shortened", Filter, `x = 1 "a very long string literal indeed"`,
			[]string{`1:7: syntax error near '"a very long string l..."'`}},
		{"syntax eof after exponent", Filter, "f(1e", []string{"1:3: syntax error: unexpected end of file"}},
		{"syntax only", Filter, "local unused = strng\nreturn 1 2", []string{"2:10: syntax error near '2'"}},

		// Undefined globals, with hints from globals and visible locals.
		{"undefined with hint", Filter, "print(strng.upper('x'))\nreturn {}",
			[]string{`1:7: undefined global "strng" (did you mean "string"?)`}},
		{"undefined without hint", Filter, "return foo()", []string{`1:8: undefined global "foo"`}},
		{"short names get no hint", Filter, "return {n = y}", []string{`1:13: undefined global "y"`}},
		{"hint from a local", Filter, "local count = 1\nreturn {n = cuont}", []string{
			`1:7: warning: unused local "count"`,
			`2:13: undefined global "cuont" (did you mean "count"?)`,
		}},
		{"column skips strings", Filter, `print("x", x)` + "\nreturn {}", []string{`1:12: undefined global "x"`}},
		{"column skips comments", Filter, "print(--[[x]] x)\nreturn {}", []string{`1:15: undefined global "x"`}},
		{"column counts tab as one", Filter, "\tprint(zz)\nreturn {}", []string{`1:8: undefined global "zz"`}},
		{"name on another line than its parenthesis", Filter, "print((\nzz))\nreturn {}", []string{`1:1: undefined global "zz"`}},
		{"crlf lines", Filter, "local a = 1\r\nprint(a, b)\r\nreturn {}", []string{`2:10: undefined global "b"`}},
		{"assigned global is defined", Filter, "local M = {}\nfunction M.mail() helper() end\nfunction helper() end\nreturn M",
			[]string{`3:10: assigns global "helper"` + assigns}},

		// Scopes.
		{"params", Filter, "local function add(a, b) return a + b end\nreturn {data = add}", nil},
		{"method self", Filter, "local M = {}\nfunction M:mail(tx) return self, tx end\nreturn M", nil},
		{"no self outside methods", Filter, "local M = {}\nfunction M.mail(tx) return self end\nreturn M",
			[]string{`2:28: undefined global "self"`}},
		{"local function sees itself", Filter, "local function fact(n) if n < 2 then return 1 end return n * fact(n - 1) end\nreturn {data = function() return fact(3) end}", nil},
		{"local f = function does not", Filter, "local fact = function(n) return fact(n) end\nreturn {data = fact}",
			[]string{`1:33: undefined global "fact"`}},
		{"local x = x sees the outer x", Filter, "local x = x\nreturn {x = x}", []string{`1:11: undefined global "x"`}},
		{"numeric for", Filter, "for i = 1, 3 do print(i) end\nprint(i)\nreturn {}", []string{`2:7: undefined global "i"`}},
		{"generic for", Filter, "for k, v in pairs({}) do print(k, v) end print(v)\nreturn {}", []string{`1:48: undefined global "v"`}},
		{"do block", Filter, "do local y = 1 print(y) end print(y)\nreturn {}", []string{`1:35: undefined global "y"`}},
		{"while block", Filter, "while true do local w = 1 print(w) break end print(w)\nreturn {}", []string{`1:52: undefined global "w"`}},
		{"if blocks", Filter, "if koukan then local a = 1 print(a) else print(a) end\nreturn {}", []string{`1:48: undefined global "a"`}},
		{"until sees repeat body", Filter, "repeat local done = true until done\nprint(done)\nreturn {}", []string{`2:7: undefined global "done"`}},
		{"operators read names", Filter, "local n, s = 1, 's'\nprint(-n .. s, #s, n % 2 == 0)\nreturn {}", nil},
		{"upvalues", Filter, "local n = 0\nlocal function inc() n = n + 1 return n end\nreturn {data = inc}", nil},
		{"shadowing", Filter, "local v = 1\ndo local v = 2 end\nprint(v)\nreturn {}", []string{`2:10: warning: unused local "v"`}},
		{"use before declaration", Filter, "print(later)\nlocal later = 1\nprint(later)\nreturn {}", []string{`1:7: undefined global "later"`}},
		{"same-statement names", Filter, "local a, b = 1, a\nprint(b)\nreturn {}", []string{
			`1:7: warning: unused local "a"`,
			`1:17: undefined global "a"`,
		}},

		// Global assignments.
		{"assign global", Filter, "x = 1\nreturn {}", []string{`1:1: assigns global "x"` + assigns}},
		{"global function", Filter, "function helper() end\nreturn {}", []string{`1:10: assigns global "helper"` + assigns}},
		{"global in a hook", Filter, "local M = {}\nfunction M.mail() total = 1 end\nreturn M", []string{`2:19: assigns global "total"` + assigns}},
		{"two at once", Filter, "a, b = 1, 2\nreturn {}", []string{`1:1: assigns global "a"` + assigns, `1:4: assigns global "b"` + assigns}},
		{"assign local", Filter, "local x\nx = 1\nprint(x)\nreturn {}", nil},
		{"function assigns local", Filter, "local f\nfunction f() end\nreturn {data = f}", nil},

		// Return shapes.
		{"filter table", Filter, "return {}", nil},
		{"filter local table", Filter, "local M = {}\nreturn M", nil},
		{"filter function", Filter, "return function() end", []string{"1:1: a filter must return a table of hooks (mail, rcpt, data), not a function"}},
		{"filter local function", Filter, "local function f() end\nreturn f", []string{"2:1: a filter must return a table of hooks (mail, rcpt, data), not a function"}},
		{"filter number", Filter, "return 42", []string{"1:1: a filter must return a table of hooks (mail, rcpt, data), not a number"}},
		{"filter string", Filter, "  return 'x'", []string{"1:3: a filter must return a table of hooks (mail, rcpt, data), not a string"}},
		{"filter nil", Filter, "return nil", []string{"1:1: a filter must return a table of hooks (mail, rcpt, data), not nil"}},
		{"filter local literal", Filter, "local b = true\nreturn b", []string{"2:1: a filter must return a table of hooks (mail, rcpt, data), not a boolean"}},
		{"filter call is unknowable", Filter, "return koukan.filter()", nil},
		{"reassigned local is unknowable", Filter, "local M = {}\nM = koukan.filter()\nreturn M", nil},
		{"no return", Filter, "local x = 1\nprint(x)\n", []string{"2:1: missing return: a filter must return a table of hooks (mail, rcpt, data)"}},
		{"empty script", Matcher, "", []string{"1:1: missing return: a matcher must return a function(tx)"}},
		{"bare return", Policy, "return", []string{"1:1: missing return value: a policy must return a function(tx, rcpt)"}},
		{"returns in blocks are unknowable", Filter, "if koukan then return {} else return {} end", nil},
		{"returns in functions do not count", Filter, "local function f() return {} end\nf()", []string{"2:1: missing return: a filter must return a table of hooks (mail, rcpt, data)"}},
		{"policy function", Policy, "return function(tx, rcpt) end", nil},
		{"policy local function", Policy, "local function route(tx, rcpt) end\nreturn route", nil},
		{"policy local bound to function", Policy, "local route = function(tx, rcpt) end\nreturn route", nil},
		{"policy table", Policy, "return {}", []string{"1:1: a policy must return a function(tx, rcpt), not a table"}},
		{"policy local table", Policy, "local t = {}\nreturn t", []string{"2:1: a policy must return a function(tx, rcpt), not a table"}},
		{"policy string", Policy, "return 'relay'", []string{"1:1: a policy must return a function(tx, rcpt), not a string"}},
		{"matcher function", Matcher, "return function(tx) return true end", nil},
		{"matcher boolean", Matcher, "return true", []string{"1:1: a matcher must return a function(tx), not a boolean"}},
		{"matcher unknowable", Matcher, "return koukan.match", nil},

		// Hook names.
		{"constructor hooks", Filter, "return {mail = function(tx) end, rpct = function() end, limit = 5}",
			[]string{`1:34: unknown hook "rpct" (hooks are mail, rcpt, data; did you mean "rcpt"?)`}},
		{"string key hook", Filter, "local function f() end\nreturn {[\"mial\"] = f}",
			[]string{`2:10: unknown hook "mial" (hooks are mail, rcpt, data; did you mean "mail"?)`}},
		{"defined hooks", Filter, "local M = {}\nlocal function h() end\nfunction M.mail() end\nfunction M:rcpt() end\nM.data = function() end\nM.dta = h\nfunction M.finish() end\nM.version = 2\nreturn M", []string{
			`6:3: unknown hook "dta" (hooks are mail, rcpt, data; did you mean "data"?)`,
			`7:12: unknown hook "finish" (hooks are mail, rcpt, data)`,
		}},
		{"only the returned table has hooks", Filter, "local other = {}\nfunction other.foo() end\nlocal M = {other = other}\nreturn M", nil},
		{"nested tables have no hooks", Filter, "local M = {sub = {}}\nM.sub.foo = function() end\nreturn M", nil},
		{"policies have no hooks", Policy, "local M = {}\nfunction M.foo() end\nreturn function() return M end", nil},

		// Options.
		{"options write", Filter, "local opts = ...\nopts.x = 1\nreturn {}", []string{"2:1: options are read-only: cannot assign to opts.x"}},
		{"options nested write", Filter, "local o = ...\no.list[1] = 2\nreturn {}", []string{"2:1: options are read-only: cannot assign to o.list[...]"}},
		{"options odd key write", Filter, "local o = ...\no[\"a b\"] = 2\nreturn {}", []string{`2:1: options are read-only: cannot assign to o["a b"]`}},
		{"options method", Filter, "local o = ...\nfunction o:f() end\nreturn {}", []string{"2:10: options are read-only: cannot assign to o.f"}},
		{"second vararg is not options", Filter, "local o, extra = ...\nextra.x = o.y\nreturn {}", nil},
		{"varargs elsewhere", Filter, "local opts = ...\nlocal n = select('#', ...)\nprint(n, opts.x)\nreturn {}", nil},
		{"function varargs are not options", Filter, "local function f(...) local a = ... a.x = 1 return a end\nreturn {data = f}", nil},
		{"nested block varargs are not options", Filter, "do local o = ... o.x = 1 end\nreturn {}", nil},
		{"shadowed options", Filter, "local opts = ...\nlocal function f(opts) opts.x = 1 end\nreturn {data = f}", []string{`1:7: warning: unused local "opts"`}},

		// Unused locals.
		{"unused local", Filter, "local a = 1\nreturn {}", []string{`1:7: warning: unused local "a"`}},
		{"underscore locals", Filter, "local _a, _ = 1, 2\nreturn {}", nil},
		{"unused params are fine", Filter, "return {mail = function(tx, extra) end}", nil},
		{"unused local function", Filter, "local function helper() end\nreturn {}", []string{`1:16: warning: unused local function "helper"`}},
		{"unused loop variable", Filter, "for i = 1, 2 do end\nfor _, v in pairs({}) do end\nreturn {}", []string{
			`1:5: warning: unused loop variable "i"`,
			`2:8: warning: unused loop variable "v"`,
		}},
		{"assigned but never read", Filter, "local x\nx = 1\nreturn {}", []string{`1:7: warning: unused local "x"`}},

		{"unknown kind skips return checks", Kind(9), "return 1", nil},
		{"too deep statements", Filter, strings.Repeat("do ", maxDepth+1) + strings.Repeat("end ", maxDepth+1) + "return {}",
			[]string{"1:1: nesting is too deep to check (more than 1000 levels)"}},
		{"too deep", Filter, "return " + strings.Repeat("{", maxDepth+100) + strings.Repeat("}", maxDepth+100),
			[]string{"1:1: nesting is too deep to check (more than 1000 levels)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := findings(tt.kind, tt.src)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("findings for\n%s\ngot  %q\nwant %q", tt.src, got, tt.want)
			}
		})
	}
}

func TestFindingString(t *testing.T) {
	f := Finding{File: "a.lua", Line: 3, Col: 7, Severity: Warning, Message: `unused local "x"`}
	if got, want := f.String(), `a.lua:3:7: warning: unused local "x"`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	f.Severity = Error
	if got, want := f.String(), `a.lua:3:7: unused local "x"`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestInfo(t *testing.T) {
	tests := []struct {
		name string
		kind Kind
		src  string
		want Info
	}{
		{"filter hooks", Filter, "local M = {}\nfunction M.mail(tx) end\nM.rcpt = function() end\nM.n = 1\nreturn M", Info{
			Hooks:   map[string]Pos{"mail": {2, 12}, "rcpt": {3, 3}},
			Options: map[string]OptionUse{},
		}},
		{"constructor hooks", Filter, "local function d() end\nreturn {data = d, x = {}}", Info{
			Hooks:   map[string]Pos{"data": {2, 9}},
			Options: map[string]OptionUse{},
		}},
		{"returns function", Policy, "return function(tx, rcpt) end", Info{
			Hooks: map[string]Pos{}, ReturnsFunction: true, Options: map[string]OptionUse{},
		}},
		{"returns local function", Matcher, "local function m(tx) end\nreturn m", Info{
			Hooks: map[string]Pos{}, ReturnsFunction: true, Options: map[string]OptionUse{},
		}},
		{"guarded reads", Filter, `local opts = ...
local a = opts.a or 5
if opts.b then end
local c = not opts.c
local d = opts.d == nil
local e = nil ~= opts.e
if opts.f and opts.f > 1 then end
while opts.g do break end
repeat until opts.h
if opts.i then print(opts.i.x) end
local j = opts.j and opts.j.k
local x = (opts.x and opts.y) or 1
if opts.z ~= nil then print(opts.z) end
if nil ~= opts.w then print(opts.w) end
print(a, c, d, e, j, x)
return {}`, Info{
			Hooks: map[string]Pos{},
			Options: map[string]OptionUse{
				"a": {[]Pos{{2, 16}}, true},
				"b": {[]Pos{{3, 9}}, true},
				"c": {[]Pos{{4, 20}}, true},
				"d": {[]Pos{{5, 16}}, true},
				"e": {[]Pos{{6, 23}}, true},
				"f": {[]Pos{{7, 9}, {7, 20}}, true},
				"g": {[]Pos{{8, 12}}, true},
				"h": {[]Pos{{9, 19}}, true},
				"i": {[]Pos{{10, 9}, {10, 27}}, true},
				"j": {[]Pos{{11, 16}, {11, 27}}, true},
				"x": {[]Pos{{12, 17}}, true},
				"y": {[]Pos{{12, 28}}, true},
				"z": {[]Pos{{13, 9}, {13, 34}}, true},
				"w": {[]Pos{{14, 16}, {14, 34}}, true},
			},
		}},
		{"unguarded reads", Filter, `local opts = ...
print(opts.u)
local v = opts.v.w or 1
print(opts.m or 1, opts.m)
if opts.n then end print(opts.n)
if opts.p then else print(opts.p) end
local q = opts["q"]:lower()
local r = opts.r ~= nil or opts.r
print(v, q, r)
return {}`, Info{
			Hooks: map[string]Pos{},
			Options: map[string]OptionUse{
				"u": {[]Pos{{2, 12}}, false},
				"v": {[]Pos{{3, 16}}, false},
				"m": {[]Pos{{4, 12}, {4, 25}}, false},
				"n": {[]Pos{{5, 9}, {5, 31}}, false},
				"p": {[]Pos{{6, 9}, {6, 32}}, false},
				"q": {[]Pos{{7, 16}}, false},
				"r": {[]Pos{{8, 16}, {8, 33}}, false},
			},
		}},
		{"static uses of the table", Filter, "local opts = ...\nif opts and opts ~= nil and not opts then end\nreturn {}", Info{
			Hooks: map[string]Pos{}, Options: map[string]OptionUse{},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fs := Analyze("s.lua", []byte(tt.src), tt.kind, runtimeGlobals)
			if len(fs) != 0 {
				t.Errorf("unexpected findings %v", fs)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("info for\n%s\ngot  %+v\nwant %+v", tt.src, got, tt.want)
			}
		})
	}
}

func TestOptionsDynamic(t *testing.T) {
	tests := []struct {
		src  string
		want bool
	}{
		{"print(opts.x, opts['y'])", false},
		{"if opts then print(opts == nil) end", false},
		{"local k = 'x' print(opts[k])", true},
		{"print(opts[1])", true},
		{"print(opts)", true},
		{"for k in pairs(opts) do print(k) end", true},
		{"print(next(opts))", true},
		{"local o = opts print(o)", true},
		{"print(opts:get('x'))", true},
		{"print(#opts)", true},
		{"local o = opts or {} print(o)", true},
		{"koukan.keep = function() return opts end", true},
	}
	for _, tt := range tests {
		src := "local opts = ...\n" + tt.src + "\nreturn {}"
		info, fs := Analyze("s.lua", []byte(src), Filter, runtimeGlobals)
		if len(fs) != 0 {
			t.Errorf("%s: unexpected findings %v", tt.src, fs)
		}
		if info.OptionsDynamic != tt.want {
			t.Errorf("%s: OptionsDynamic = %v, want %v", tt.src, info.OptionsDynamic, tt.want)
		}
	}
}

func TestClosest(t *testing.T) {
	names := []string{"string", "table", "data", "mail", "rcpt"}
	tests := []struct{ name, want string }{
		{"strng", "string"},
		{"rpct", "rcpt"},
		{"tabel", "table"},
		{"stringsxx", ""},
		{"ab", ""},
		{"dat", "data"},
	}
	for _, tt := range tests {
		if got := Closest(tt.name, names); got != tt.want {
			t.Errorf("Closest(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}
