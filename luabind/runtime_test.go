package luabind

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/chain/chaintest"
	"github.com/koukan/koukan/engine/tx"
	"github.com/koukan/koukan/luabind/lint"
	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// scripts writes files (path under the directory → source) into a fresh script directory.
func scripts(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newRuntime(t testing.TB, dir string, tweak ...func(*Options)) *Runtime {
	t.Helper()
	o := Options{Sources: []Source{{Name: dir, FS: os.DirFS(dir)}}, CallTimeout: 200 * time.Millisecond, PoolSize: 4}
	for _, f := range tweak {
		f(&o)
	}
	rt, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return rt
}

// step makes the chain step of a configured filter with options given as YAML-ish values.
func step(t testing.TB, rt *Runtime, name string, options map[string]any) chain.Step {
	t.Helper()
	cs := &config.Step{Filter: name, Options: map[string]config.Value{}}
	for k, v := range options {
		cs.Options[k] = config.Value{Data: v}
	}
	s, err := rt.NewStep(cs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func txTo(rcpts ...string) *tx.Tx {
	t := &tx.Tx{RestID: "tx1", MailFrom: &tx.Mailbox{Address: "alice@example.com"},
		RemoteHost: &tx.HostPort{Host: "192.0.2.1", Port: 52000}}
	for _, r := range rcpts {
		t.RcptTo = append(t.RcptTo, tx.Mailbox{Address: r})
	}
	return t
}

func messageOf(body string) *chain.Message {
	return chain.NewMessage(int64(len(body)), func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(body)), nil
	})
}

// runChain runs steps then a scripted upstream over a whole transaction.
func runChain(t testing.TB, tr *tx.Tx, body string, steps ...chain.Step) *chaintest.Upstream {
	t.Helper()
	up := &chaintest.Upstream{}
	c := chain.New(append(steps, up)...)
	if err := c.Update(context.Background(), tr, messageOf(body)); err != nil {
		t.Fatal(err)
	}
	return up
}

func TestFilterHooks(t *testing.T) {
	dir := scripts(t, map[string]string{"filters/policy.lua": `
local opts = ...
local blocked = {}
for _, d in ipairs(opts.blocked) do blocked[d] = true end
local M = {}
function M.mail(tx)
  if tx.remote_ip == "203.0.113.9" then return koukan.reject(550, "5.7.1", "go away") end
end
function M.rcpt(tx, rcpt)
  local domain = rcpt.address:match("@(.*)$")
  if blocked[domain] then return koukan.reject(550, "5.1.1", "no mail for " .. domain) end
  if rcpt.params.NOTIFY == "NEVER" then error(koukan.tempfail(450, "4.2.0", "later")) end
end
function M.data(tx, msg)
  tx:set_signal("policy", {checked = #tx.rcpt_to, subject = msg:header("subject")})
  msg:prepend("X-Checked", "by " .. opts.host)
  msg:delete("X-Spam")
end
return M
`})
	rt := newRuntime(t, dir)
	s := step(t, rt, "policy", map[string]any{"blocked": []config.Value{{Data: "bad.example"}}, "host": "mx.example"})

	tr := txTo("a@good.example", "b@bad.example", "c@good.example")
	tr.RcptTo[2].Esmtp = []tx.EsmtpParam{{Keyword: "NOTIFY", Value: "NEVER"}}
	up := runChain(t, tr, "Subject: hello\r\nX-Spam: yes\r\n\r\nhi\r\n", s)
	want := []string{"250 ok", "550 5.1.1 no mail for bad.example", "450 4.2.0 later"}
	for i, r := range tr.RcptResponse {
		if got := r.String(); got != want[i] {
			t.Errorf("rcpt %d: %s, want %s", i, got, want[i])
		}
	}
	if len(up.Bodies) != 1 || string(up.Bodies[0]) != "X-Checked: by mx.example\r\nSubject: hello\r\n\r\nhi\r\n" {
		t.Errorf("upstream got %q", up.Bodies)
	}
	var sig map[string]any
	if err := json.Unmarshal(tr.FilterOutput["policy"], &sig); err != nil || sig["checked"] != 3.0 || sig["subject"] != "hello" {
		t.Errorf("signal %s (%v)", tr.FilterOutput["policy"], err)
	}

	bad := txTo("a@good.example")
	bad.RemoteHost.Host = "203.0.113.9"
	up = runChain(t, bad, "x", s)
	if bad.MailResponse.String() != "550 5.7.1 go away" || len(up.Rcpts) != 0 {
		t.Errorf("mail %v; upstream asked about %v", bad.MailResponse, up.Rcpts)
	}
}

// The sandbox: what a script must not reach fails the call, safely, as a temporary
// failure. The scripts skip the linter, which would refuse most of them before they ran.
func TestSandboxFailsSafely(t *testing.T) {
	cases := map[string]string{
		"io":        `io.open("/etc/passwd")`,
		"os":        `os.execute("true")`,
		"require":   `require("os")`,
		"load":      `load("return 1")`,
		"loadstr":   `loadstring("return 1")()`,
		"dofile":    `dofile("/etc/passwd")`,
		"loop":      `while true do end`,
		"pcallloop": `while true do pcall(function() while true do end end) end`,
		"recursion": `local function f(n) return 1 + f(n + 1) end f(1)`,
		"bigstring": `local s = string.rep("x", 1e10)`,
		"methodrep": `local s = ("x"):rep(1e10)`,
		"global":    `leak = 1`,
		"rawset":    `rawset(string, "x", 1)`,
		"libwrite":  `string.upper = nil`,
		"koukan":    `koukan.reject = nil`,
		"debug":     `debug.getinfo(1)`,
		"getfenv":   `getfenv(1).x = 1`,
		"metatable": `getmetatable("").__index.upper = nil`,
		"runtime":   `local t = nil; t.x = 1`,
		"badreturn": `return 42`,
		"badreject": `return koukan.reject(450, "4.1.1", "temporary is not a reject")`,
	}
	rt := newRuntime(t, t.TempDir())
	for name, code := range cases {
		t.Run(name, func(t *testing.T) {
			s := unlinted(t, rt, "local M = {}\nfunction M.mail(tx)\n"+code+"\nend\nreturn M\n")
			tr := txTo("a@example.com")
			errors := rt.Stats.Errors.Load()
			start := time.Now()
			up := runChain(t, tr, "x", s)
			if tr.MailResponse == nil || *tr.MailResponse != TempFail {
				t.Errorf("mail response %v, want %v", tr.MailResponse, TempFail)
			}
			if len(up.Rcpts) != 0 {
				t.Errorf("the upstream was asked about recipients")
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
			if rt.Stats.Errors.Load() != errors+1 {
				t.Errorf("the failure was not counted")
			}
		})
	}
	// Nothing a failed call did is left for the next one.
	s := unlinted(t, rt, `local M = {}
function M.mail(tx)
  if string.upper("a") ~= "A" or koukan.reject == nil or leak ~= nil then error("the sandbox was changed") end
end
return M`)
	tr := txTo("a@example.com")
	runChain(t, tr, "x", s)
	if tr.MailResponse == nil || tr.MailResponse.Code != 250 {
		t.Errorf("after the failures: %v", tr.MailResponse)
	}
}

// unlinted makes a filter step of src without the linter's checks.
func unlinted(t testing.TB, rt *Runtime, src string) chain.Step {
	t.Helper()
	chunk, err := parse.Parse(strings.NewReader(src), "t.lua")
	if err != nil {
		t.Fatal(err)
	}
	proto, err := lua.Compile(chunk, "t.lua")
	if err != nil {
		t.Fatal(err)
	}
	script := &Script{Name: "t", Kind: lint.Filter, File: "t.lua", proto: proto}
	v := rt.cur.Load()
	return &filterStep{rt: rt, v: v, in: &instance{script: script, name: "t"}}
}
