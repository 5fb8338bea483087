package scripts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/chain/chaintest"
	"github.com/koukan/koukan/engine/tx"
	"github.com/koukan/koukan/luabind"
)

// Scripts for these tests only, searched after the shipped ones.
var paTestScripts = map[string]string{
	// test_stage files the stage of each pass, for test_answer; it goes first in a chain.
	"filters/test_stage.lua": `local M = {}
function M.mail(tx) tx:set_signal("test_stage", {stage = "mail"}) end
function M.rcpt(tx) tx:set_signal("test_stage", {stage = "rcpt"}) end
function M.data(tx) tx:set_signal("test_stage", {stage = "data"}) end
return M
`,
	// test_signal files the signal name = value when the message is complete.
	"filters/test_signal.lua": `local opts = ...
local M = {}
function M.data(tx) tx:set_signal(opts.name, opts.value) end
return M
`,
	// test_answer answers what its options say for the stage (MATCH, NO_MATCH or UNMET; the
	// default otherwise, or per recipient address), and logs each call in the signal
	// test_calls as id@stage.
	"matchers/test_answer.lua": `local opts = ...
local ANSWERS = {MATCH = true, NO_MATCH = false}
return function(tx, rcpt)
  local stage = (tx:signal("test_stage") or {}).stage or "none"
  local calls = tx:signal("test_calls") or {}
  calls[#calls + 1] = (opts.id or "?") .. "@" .. stage
  tx:set_signal("test_calls", calls)
  local answer = opts[stage] or opts.default or "NO_MATCH"
  if rcpt ~= nil and opts.rcpts ~= nil and opts.rcpts[rcpt.address] ~= nil then
    answer = opts.rcpts[rcpt.address]
  end
  if answer == "UNMET" then
    return nil
  end
  return ANSWERS[answer]
end
`,
}

// paRuntime loads the shipped scripts and the test-only ones.
func paRuntime(t testing.TB) *luabind.Runtime {
	t.Helper()
	shipped, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	extra := t.TempDir()
	for name, src := range paTestScripts {
		p := filepath.Join(extra, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rt, err := luabind.New(luabind.Options{Sources: []luabind.Source{
		{Name: "scripts", FS: os.DirFS(shipped)}, {Name: "test", FS: os.DirFS(extra)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return rt
}

const paChainConfig = `rest_listener: {addr: [127.0.0.1, 8000], session_uri: "http://localhost:8000"}
storage: {url: "sqlite:///r.db"}
endpoint:
- name: e
  chain:
%s
  - filter: rest_output
    static_endpoint: http://localhost:9000
`

// paParseChain makes a router config whose chain is steps (YAML list items, unindented) then
// rest_output.
func paParseChain(t testing.TB, steps string) *config.Router {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(strings.Trim(steps, "\n"), "\n") {
		b.WriteString("  " + line + "\n")
	}
	cfg, _, err := config.ParseRouter("router.yaml", fmt.Appendf(nil, paChainConfig, strings.TrimSuffix(b.String(), "\n")))
	if err != nil {
		t.Fatalf("%v\n%s", err, steps)
	}
	return cfg
}

// paChain checks a chain of steps as `koukan check` does and makes its steps (without
// rest_output), test_stage first.
func paChain(t testing.TB, rt *luabind.Runtime, steps string) []chain.Step {
	t.Helper()
	cfg := paParseChain(t, "- filter: test_stage\n"+strings.Trim(steps, "\n"))
	if fs := luabind.CheckConfig(cfg, rt.Library()).Errors(); len(fs) > 0 {
		t.Fatalf("koukan check:\n%v", fs)
	}
	conf := cfg.Endpoints[0].Chain
	var made []chain.Step
	for i := range conf[:len(conf)-1] {
		s, err := rt.NewStep(&conf[i])
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, s)
	}
	return made
}

const paTestMessage = "From: Bob <bob@example.com>\r\nSubject: hi\r\n\r\nhello\r\n"

func paMessage() *chain.Message {
	return chain.NewMessage(int64(len(paTestMessage)), func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(paTestMessage)), nil
	})
}

// paDeliver runs tr through steps and an accepting upstream. With smtp, one command per
// update as the gateway sends them (MAIL, each RCPT, the data); otherwise all at once, as
// a transaction posted over REST.
func paDeliver(t testing.TB, steps []chain.Step, tr *tx.Tx, rcpts []string, smtp bool) {
	t.Helper()
	c := chain.New(append(append([]chain.Step(nil), steps...), &chaintest.Upstream{})...)
	ctx := context.Background()
	if smtp {
		if err := c.Update(ctx, tr, nil); err != nil {
			t.Fatal(err)
		}
		for _, r := range rcpts {
			tr.RcptTo = append(tr.RcptTo, tx.Mailbox{Address: r})
			if err := c.Update(ctx, tr, nil); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		for _, r := range rcpts {
			tr.RcptTo = append(tr.RcptTo, tx.Mailbox{Address: r})
		}
	}
	if err := c.Update(ctx, tr, paMessage()); err != nil {
		t.Fatal(err)
	}
}

// paOutcome sums up the responses and what the policy steps filed.
func paOutcome(tr *tx.Tx) string {
	str := func(r *tx.Response) string {
		if r == nil {
			return "none"
		}
		return r.String()
	}
	parts := []string{"mail=" + str(tr.MailResponse)}
	for i := range tr.RcptResponse {
		parts = append(parts, "rcpt="+str(&tr.RcptResponse[i]))
	}
	parts = append(parts, "data="+str(tr.DataResponse))
	return strings.Join(parts, " ")
}

func paSignal(tr *tx.Tx, name string) string {
	raw, ok := tr.FilterOutput[name]
	if !ok {
		return "none"
	}
	var v any
	json.Unmarshal(raw, &v)
	b, _ := json.Marshal(v)
	return string(b)
}

const (
	paPolicySignal = "koukan.policy_action_filter.PolicyActionFilter"
	paUnmetSignal  = "koukan.policy_action_filter.unmet"
)

// The evaluation semantics of reference §7.3, through the real runtime and chain.
func TestPolicyAction(t *testing.T) {
	rt := paRuntime(t)
	for _, c := range []struct {
		name  string
		steps string
		rcpts []string
		smtp  bool
		// want: the responses; matched: the policy signal; calls: the test matchers' calls.
		want, matched, calls string
	}{{
		name: "REJECT at MAIL fails the transaction",
		steps: `
- filter: policy_action
  tag: g
  match: {matcher: test_answer, id: m, mail: MATCH}
  action: REJECT`,
		rcpts: []string{"a@example.com"}, smtp: true,
		want:    "mail=550 5.6.0 message rejected g rcpt=503 5.5.1 failed precondition: MAIL data=none",
		matched: `{"matched_rules":["g"],"matched_tags":["g"]}`,
		calls:   `["m@mail"]`,
	}, {
		name: "REJECT at RCPT answers that stage's recipient; the rule is retired after",
		steps: `
- filter: policy_action
  tag: g
  match: {matcher: test_answer, id: m, mail: UNMET, rcpt: MATCH, data: MATCH}
  action: REJECT`,
		rcpts: []string{"a@example.com", "b@example.com"}, smtp: true,
		want:    "mail=250 ok rcpt=550 5.6.0 message rejected g rcpt=250 ok data=250 ok",
		matched: `{"matched_rules":["g"],"matched_tags":["g"]}`,
		calls:   `["m@mail","m@rcpt"]`,
	}, {
		name: "REJECT at RCPT answers every recipient of the stage",
		steps: `
- filter: policy_action
  tag: g
  match: {matcher: test_answer, id: m, rcpt: MATCH}
  action: REJECT`,
		rcpts: []string{"a@example.com", "b@example.com", "c@example.com"},
		want:  "mail=250 ok rcpt=550 5.6.0 message rejected g rcpt=550 5.6.0 message rejected g rcpt=550 5.6.0 message rejected g data=503 5.5.1 failed precondition: all rcpts failed",
		// Judged once for the stage, not once per recipient.
		matched: `{"matched_rules":["g"],"matched_tags":["g"]}`,
		calls:   `["m@mail","m@rcpt"]`,
	}, {
		name: "REJECT at DATA, temporary; the rule is asked at each stage until then",
		steps: `
- filter: policy_action
  tag: g
  match: {matcher: test_answer, id: m, data: MATCH}
  action: REJECT
  code: 450
  message: 4.7.0 try again later`,
		rcpts: []string{"a@example.com", "b@example.com"}, smtp: true,
		want:    "mail=250 ok rcpt=250 ok rcpt=250 ok data=450 4.7.0 try again later",
		matched: `{"matched_rules":["g"],"matched_tags":["g"]}`,
		calls:   `["m@mail","m@rcpt","m@rcpt","m@data"]`,
	}, {
		name: "LOG then REJECT in one group",
		steps: `
- filter: policy_action
  tag: g
  name: dark
  match: {matcher: test_answer, id: dark, default: MATCH}
  action: LOG
- filter: policy_action
  tag: g
  name: live
  match: {matcher: test_answer, id: live, rcpt: MATCH}
  action: REJECT
  message: not today`,
		rcpts: []string{"a@example.com"}, smtp: true,
		want:    "mail=250 ok rcpt=550 5.7.1 not today data=503 5.5.1 failed precondition: all rcpts failed",
		matched: `{"matched_rules":["dark","live"],"matched_tags":["g"]}`,
		// dark fired once (at MAIL) and is retired; the group went on.
		calls: `["dark@mail","live@mail","live@rcpt"]`,
	}, {
		name: "MATCH decides the group: its later rules never run",
		steps: `
- filter: policy_action
  tag: g
  name: allow
  match: {matcher: test_answer, id: allow, default: MATCH}
- filter: policy_action
  tag: g
  name: deny
  match: {matcher: test_answer, id: deny, default: MATCH}
  action: REJECT
- filter: policy_action
  tag: other
  match: {matcher: test_answer, id: other}`,
		rcpts: []string{"a@example.com"}, smtp: true,
		want:    "mail=250 ok rcpt=250 ok data=250 ok",
		matched: `{"matched_rules":["allow"],"matched_tags":["g"]}`,
		calls:   `["allow@mail","other@mail","other@rcpt","other@data"]`,
	}, {
		name: "a rule that fired is not asked again at later stages",
		steps: `
- filter: policy_action
  tag: g
  name: seen
  match: {matcher: test_answer, id: seen, default: MATCH}
  action: LOG`,
		rcpts: []string{"a@example.com"}, smtp: true,
		want:    "mail=250 ok rcpt=250 ok data=250 ok",
		matched: `{"matched_rules":["seen"]}`,
		calls:   `["seen@mail"]`,
	}, {
		name: "not known skips the rest of the group for the stage, and is asked again next stage",
		steps: `
- filter: policy_action
  tag: g
  name: first
  match: {matcher: test_answer, id: first, mail: UNMET}
  action: REJECT
- filter: policy_action
  tag: g
  name: second
  match: {matcher: test_answer, id: second, default: MATCH}
  action: REJECT
  message: 5.7.1 second
- filter: policy_action
  tag: h
  match: {matcher: test_answer, id: other}`,
		rcpts: []string{"a@example.com"}, smtp: true,
		want:    "mail=250 ok rcpt=550 5.7.1 second data=503 5.5.1 failed precondition: all rcpts failed",
		matched: `{"matched_rules":["second"],"matched_tags":["g"]}`,
		// The recipient is answered: later steps are not asked about it.
		calls: `["first@mail","other@mail","first@rcpt","second@rcpt"]`,
	}, {
		name: "never known: never decided",
		steps: `
- filter: policy_action
  tag: g
  match: {matcher: test_answer, id: m, default: UNMET}
  action: REJECT`,
		rcpts: []string{"a@example.com"},
		want:  "mail=250 ok rcpt=250 ok data=250 ok", matched: "none",
		calls: `["m@mail","m@rcpt","m@data"]`,
	}, {
		name: "header_from is known once message_validation has run",
		steps: `
- filter: test_signal
  name: koukan.message_validation_filter.MessageValidationFilter
  value: {status: 3, header_from: bob@example.com}
- filter: policy_action
  tag: spoofing
  match: {all: [{matcher: address_list, which_addr: header_from, domains: [example.com]}, {matcher: test_answer, id: m, default: MATCH}]}
  action: REJECT
  message: 5.7.1 not authorized to send as example.com`,
		rcpts: []string{"a@example.org"}, smtp: true,
		want:    "mail=250 ok rcpt=250 ok data=550 5.7.1 not authorized to send as example.com",
		matched: `{"matched_rules":["spoofing"],"matched_tags":["spoofing"]}`,
		calls:   `["m@data"]`,
	}, {
		name: "PER_RCPT: one recipient per transaction",
		steps: `
- filter: policy_action
  tag: max_rcpts
  mode: PER_RCPT
  match: {matcher: num_rcpts, max_rcpts: 1}
  action: REJECT
  code: 451
  message: 4.5.3 too many recipients`,
		rcpts: []string{"a@example.com", "b@example.com", "c@example.com"}, smtp: true,
		want: "mail=250 ok rcpt=250 ok rcpt=451 4.5.3 too many recipients rcpt=451 4.5.3 too many recipients data=250 ok",
		// The rule rejected two recipients and is filed once (reference §12.3).
		matched: `{"matched_rules":["max_rcpts"],"matched_tags":["max_rcpts"]}`,
		calls:   "none",
	}, {
		name: "PER_RCPT: each recipient on its own; not known does nothing; no retirement",
		steps: `
- filter: policy_action
  tag: g
  mode: PER_RCPT
  match: {matcher: test_answer, id: m, rcpts: {a@example.com: MATCH, b@example.com: UNMET, d@example.com: MATCH}}
  action: REJECT
  message: 5.1.1 no such user`,
		rcpts:   []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com"},
		want:    "mail=250 ok rcpt=550 5.1.1 no such user rcpt=250 ok rcpt=250 ok rcpt=550 5.1.1 no such user data=250 ok",
		matched: `{"matched_rules":["g"],"matched_tags":["g"]}`,
		calls:   `["m@rcpt","m@rcpt","m@rcpt","m@rcpt"]`,
	}, {
		name: "valid envelope (the reference's submission chain): bad recipients",
		steps: `
- filter: policy_action
  tag: valid_envelope
  match: {matcher: invalid_mail_from}
  action: REJECT
  code: 501
  message: 5.1.3 Bad mailbox address syntax
- filter: policy_action
  tag: valid_envelope
  mode: PER_RCPT
  match: {matcher: invalid_rcpt_to}
  action: REJECT
  code: 501
  message: 5.1.3 Bad mailbox address syntax`,
		rcpts: []string{"a@example.com", "no domain", "b@example.com"}, smtp: true,
		want:    "mail=250 ok rcpt=250 ok rcpt=501 5.1.3 Bad mailbox address syntax rcpt=250 ok data=250 ok",
		matched: `{"matched_rules":["valid_envelope"],"matched_tags":["valid_envelope"]}`,
		calls:   "none",
	}} {
		t.Run(c.name, func(t *testing.T) {
			steps := paChain(t, rt, c.steps)
			tr := &tx.Tx{RestID: "t1", MailFrom: &tx.Mailbox{Address: "alice@example.com"},
				RemoteHost: &tx.HostPort{Host: "192.0.2.9", Port: 40000}}
			paDeliver(t, steps, tr, c.rcpts, c.smtp)
			if got := paOutcome(tr); got != c.want {
				t.Errorf("responses\n got %s\nwant %s", got, c.want)
			}
			if got := paSignal(tr, paPolicySignal); got != c.matched {
				t.Errorf("signal\n got %s\nwant %s", got, c.matched)
			}
			if got := paSignal(tr, "test_calls"); got != c.calls {
				t.Errorf("matcher calls\n got %s\nwant %s", got, c.calls)
			}
		})
	}
}

// An invalid envelope sender fails MAIL.
func TestPolicyActionInvalidMailFrom(t *testing.T) {
	rt := paRuntime(t)
	steps := paChain(t, rt, `
- filter: policy_action
  tag: valid_envelope
  match: {matcher: invalid_mail_from}
  action: REJECT
  code: 501
  message: 5.1.3 Bad mailbox address syntax`)
	for from, want := range map[string]string{
		"alice@example.com": "mail=250 ok rcpt=250 ok data=250 ok",
		"":                  "mail=250 ok rcpt=250 ok data=250 ok",
		"alice@":            "mail=501 5.1.3 Bad mailbox address syntax rcpt=503 5.5.1 failed precondition: MAIL data=none",
	} {
		tr := &tx.Tx{RestID: "t1", MailFrom: &tx.Mailbox{Address: from}}
		paDeliver(t, steps, tr, []string{"a@example.com"}, true)
		if got := paOutcome(tr); got != want {
			t.Errorf("MAIL FROM:<%s>\n got %s\nwant %s", from, got, want)
		}
	}
}

// The match expressions of reference §7.2: not keeps "not known"; any and all stop at the
// first answer that is not NO_MATCH (any) or not MATCH (all), left to right.
func TestMatchExpressions(t *testing.T) {
	rt := paRuntime(t)
	leaf := func(id, answer string) string {
		return fmt.Sprintf("{matcher: test_answer, id: %s, mail: %s}", id, answer)
	}
	for _, c := range []struct {
		match, want, calls string
	}{
		{"", "MATCH", "none"},
		{"match: {}", "MATCH", "none"},
		{"match: " + leaf("a", "MATCH"), "MATCH", `["a@mail"]`},
		{"match: " + leaf("a", "NO_MATCH"), "NO_MATCH", `["a@mail"]`},
		{"match: " + leaf("a", "UNMET"), "UNMET", `["a@mail"]`},
		{"match: {not: " + leaf("a", "MATCH") + "}", "NO_MATCH", `["a@mail"]`},
		{"match: {not: " + leaf("a", "NO_MATCH") + "}", "MATCH", `["a@mail"]`},
		{"match: {not: " + leaf("a", "UNMET") + "}", "UNMET", `["a@mail"]`},
		{"match: {any: [" + leaf("a", "NO_MATCH") + ", " + leaf("b", "UNMET") + ", " + leaf("c", "MATCH") + "]}", "UNMET", `["a@mail","b@mail"]`},
		{"match: {any: [" + leaf("a", "NO_MATCH") + ", " + leaf("b", "MATCH") + ", " + leaf("c", "UNMET") + "]}", "MATCH", `["a@mail","b@mail"]`},
		{"match: {any: [" + leaf("a", "NO_MATCH") + ", " + leaf("b", "NO_MATCH") + "]}", "NO_MATCH", `["a@mail","b@mail"]`},
		{"match: {any: []}", "NO_MATCH", "none"},
		{"match: {all: [" + leaf("a", "MATCH") + ", " + leaf("b", "UNMET") + ", " + leaf("c", "NO_MATCH") + "]}", "UNMET", `["a@mail","b@mail"]`},
		{"match: {all: [" + leaf("a", "MATCH") + ", " + leaf("b", "NO_MATCH") + ", " + leaf("c", "UNMET") + "]}", "NO_MATCH", `["a@mail","b@mail"]`},
		{"match: {all: [" + leaf("a", "MATCH") + ", " + leaf("b", "MATCH") + "]}", "MATCH", `["a@mail","b@mail"]`},
		{"match: {all: []}", "MATCH", "none"},
		{"match: {not: {any: [" + leaf("a", "NO_MATCH") + ", {all: [" + leaf("b", "MATCH") + ", " + leaf("c", "MATCH") + "]}]}}", "NO_MATCH", `["a@mail","b@mail","c@mail"]`},
		{"match: {not: {all: [" + leaf("a", "MATCH") + ", {any: [" + leaf("b", "UNMET") + ", " + leaf("c", "MATCH") + "]}]}}", "UNMET", `["a@mail","b@mail"]`},
		// The reference's name of the policy_action output; nothing is filed yet.
		{"match: {matcher: koukan.policy_action_filter.PolicyActionFilter, tag: x}", "NO_MATCH", "none"},
		{"match: {not: {matcher: koukan.policy_action_filter.PolicyActionFilter, tag: x}}", "MATCH", "none"},
	} {
		steps := paChain(t, rt, "- filter: policy_action\n"+paIndent("tag: g\naction: REJECT\n"+c.match))
		// MAIL only: the answer is that stage's.
		tr := &tx.Tx{RestID: "t1", MailFrom: &tx.Mailbox{Address: "alice@example.com"}}
		if err := chain.New(append(steps, &chaintest.Upstream{})...).Update(context.Background(), tr, nil); err != nil {
			t.Fatal(err)
		}
		got := "NO_MATCH"
		switch {
		case tr.MailResponse != nil && tr.MailResponse.Code == 550:
			got = "MATCH"
		case paSignal(tr, paUnmetSignal) == `{"stage":"0/mail","tags":["g"]}`:
			got = "UNMET"
		}
		if got != c.want {
			t.Errorf("%s: got %s, want %s (mail %v, unmet %s)", c.match, got, c.want, tr.MailResponse, paSignal(tr, paUnmetSignal))
		}
		if calls := paSignal(tr, "test_calls"); calls != c.calls {
			t.Errorf("%s: calls %s, want %s", c.match, calls, c.calls)
		}
	}
}

// The policy_action matcher reuses what earlier rules recorded: an allow list.
func TestPolicyActionMatcher(t *testing.T) {
	rt := paRuntime(t)
	steps := paChain(t, rt, `
- filter: policy_action
  tag: trusted
  name: internal
  match: {matcher: network_address, cidr: [10.0.0.0/8, "2001:db8::/32"]}
- filter: policy_action
  tag: trusted
  name: saw_auth
  match: {matcher: smtp_auth}
  action: LOG
- filter: policy_action
  tag: audit
  match: {matcher: koukan.policy_action_filter.PolicyActionFilter, rule: saw_auth}
  action: LOG
- filter: policy_action
  tag: relay
  match: {not: {matcher: policy_action, tag: trusted}}
  action: REJECT
  message: 5.7.1 relaying denied`)
	for _, c := range []struct {
		ip, auth, want, matched string
	}{
		{"10.1.2.3", "", "mail=250 ok rcpt=250 ok data=250 ok", `{"matched_rules":["internal"],"matched_tags":["trusted"]}`},
		{"2001:db8::25", "", "mail=250 ok rcpt=250 ok data=250 ok", `{"matched_rules":["internal"],"matched_tags":["trusted"]}`},
		{"192.0.2.9", "", "mail=550 5.7.1 relaying denied rcpt=503 5.5.1 failed precondition: MAIL data=none", `{"matched_rules":["relay"],"matched_tags":["relay"]}`},
		// LOG files the rule, not the tag: the group is not decided.
		{"192.0.2.9", "true", "mail=550 5.7.1 relaying denied rcpt=503 5.5.1 failed precondition: MAIL data=none",
			`{"matched_rules":["saw_auth","audit","relay"],"matched_tags":["relay"]}`},
	} {
		tr := &tx.Tx{RestID: "t1", MailFrom: &tx.Mailbox{Address: "alice@example.com"},
			RemoteHost: &tx.HostPort{Host: c.ip, Port: 40000}}
		if c.auth != "" {
			tr.SMTPMeta = map[string]json.RawMessage{"auth": json.RawMessage(c.auth)}
		}
		paDeliver(t, steps, tr, []string{"a@example.org"}, true)
		if got := paOutcome(tr); got != c.want {
			t.Errorf("%s auth=%q:\n got %s\nwant %s", c.ip, c.auth, got, c.want)
		}
		if got := paSignal(tr, paPolicySignal); got != c.matched {
			t.Errorf("%s auth=%q: signal\n got %s\nwant %s", c.ip, c.auth, got, c.matched)
		}
	}
}

// A weighted action draws in proportion to the weights; a weight of 0 is never drawn.
func TestPolicyActionWeighted(t *testing.T) {
	rt := paRuntime(t)
	for _, c := range []struct {
		action                 string
		someReject, someAccept bool
	}{
		{"[[1, LOG], [1, REJECT]]", true, true},
		{"[[1, LOG], [0, REJECT]]", false, true},
		{"[[0, LOG], [2.5, REJECT]]", true, false},
	} {
		steps := paChain(t, rt, "- filter: policy_action\n  tag: g\n  action: "+c.action)
		rejects, accepts := 0, 0
		for range 200 {
			tr := &tx.Tx{RestID: "t1", MailFrom: &tx.Mailbox{Address: "alice@example.com"}}
			paDeliver(t, steps, tr, nil, true)
			switch tr.MailResponse.Code {
			case 550:
				rejects++
			case 250:
				accepts++
			default:
				t.Fatalf("%s: mail response %v", c.action, tr.MailResponse)
			}
		}
		if (rejects > 0) != c.someReject || (accepts > 0) != c.someAccept {
			t.Errorf("%s: %d rejects, %d accepts in 200", c.action, rejects, accepts)
		}
	}
}

// The response of REJECT: its defaults, and the enhanced code put in front of a message
// that has none.
func TestPolicyActionResponses(t *testing.T) {
	rt := paRuntime(t)
	for _, c := range []struct{ opts, want string }{
		{"", "550 5.6.0 message rejected g"},
		{"name: rule1", "550 5.6.0 message rejected rule1"},
		{"code: 451", "451 4.6.0 message rejected g"},
		{"message: go away", "550 5.7.1 go away"},
		{"code: 421\nmessage: go away", "421 4.7.1 go away"},
		{"code: 550\nmessage: 5.7.26 unauthenticated mail is prohibited", "550 5.7.26 unauthenticated mail is prohibited"},
	} {
		steps := paChain(t, rt, "- filter: policy_action\n"+paIndent("tag: g\naction: REJECT\n"+c.opts))
		tr := &tx.Tx{RestID: "t1", MailFrom: &tx.Mailbox{Address: "alice@example.com"}}
		paDeliver(t, steps, tr, nil, true)
		if got := tr.MailResponse.String(); got != c.want {
			t.Errorf("%q: got %s, want %s", c.opts, got, c.want)
		}
	}
}

// Mistakes in a rule fail `koukan check` (and so a reload) with the script's line.
func TestPolicyActionConfigErrors(t *testing.T) {
	rt := paRuntime(t)
	for _, c := range []struct{ step, want string }{
		{"match: {matcher: smtp_auth}", `reads option "tag", which this step does not set`},
		{"tag: g\nacton: REJECT", `option "acton" is not used by scripts/filters/policy_action.lua`},
		{"tag: g\nmatch: {matcher: no_such}", "policy_action g: match: unknown matcher no_such: no matcher script matchers/no_such.lua"},
		{"tag: g\nmatch: {any: [{matcher: smtp_tls}, {not: {matcher: no_such}}]}", "match.any[2].not: unknown matcher no_such"},
		// The reference's example config names this output with the wrong module (§12.15).
		{"tag: g\nmatch: {matcher: koukan.remote_host_filter.SpfCheckFilter}", "did you mean koukan.spf_check_filter.SpfCheckFilter, or spf_check?"},
		{"tag: g\nmatch: {not: {matcher: smtp_auth}, any: []}", "match: an expression has one of the keys matcher, not, any, all"},
		{"tag: g\nmatch: {any: {matcher: smtp_auth}}", "match: any must be a list of expressions"},
		{"tag: g\nmatch: smtp_auth", "match: an expression is a table"},
		{"tag: g\naction: DROP", "action DROP is not MATCH, REJECT or LOG"},
		{"tag: g\naction: [[0, LOG], [0, REJECT]]", "the weights of action add up to nothing"},
		{"tag: g\naction: [[1, LOG], [-1, REJECT]]", "action[2] must be [weight, ACTION]"},
		{"tag: g\nmode: per_rcpt", "mode must be PER_RCPT or left out"},
		{"tag: g\naction: REJECT\ncode: 250", "code must be a 4xx or 5xx reply code"},
		{"tag: g\naction: REJECT\ncode: 450\nmessage: 5.7.1 no", "enhanced status code 5.7.1 must have the class of the code 450"},
		// The matchers' own options, checked when the rule is set up.
		{"tag: g\nmatch: {matcher: network_address, cidr: 10.0.0.0/33}", `network_address: cidr[1]: not a CIDR network: "10.0.0.0/33"`},
		{"tag: g\nmatch: {matcher: network_address}", "network_address: cidr must be a network"},
		{"tag: g\nmatch: {matcher: num_rcpts, max_rcpts: many}", "num_rcpts: max_rcpts must be a number"},
		{"tag: g\nmatch: {matcher: address_list, which_addr: envelope}", "address_list: which_addr must be mail_from, rcpt_to or header_from"},
		{"tag: g\nmatch: {matcher: policy_action}", "policy_action matcher: set tag or rule"},
	} {
		cfg := paParseChain(t, "- filter: policy_action\n"+paIndent(c.step))
		fs := luabind.CheckConfig(cfg, rt.Library())
		if !strings.Contains(fs.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %s", c.step, fs, c.want)
		}
	}
}

// An unknown matcher fails the check at the script's line, naming the config's step.
func TestPolicyActionUnknownMatcher(t *testing.T) {
	rt := paRuntime(t)
	cfg := paParseChain(t, "- filter: policy_action\n  tag: g\n  match: {matcher: no_such}")
	fs := luabind.CheckConfig(cfg, rt.Library()).Errors()
	want := regexp.MustCompile(`^scripts/filters/policy_action\.lua:[0-9]+:[0-9]+: smoke run \(step "policy_action" at router\.yaml:6:5\) failed: .*unknown matcher no_such`)
	if len(fs) != 1 || !want.MatchString(fs[0].String()) {
		t.Errorf("got %v, want one finding matching %s", fs, want)
	}
}

func paIndent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// The shipped policy scripts pass the linter without a finding, and their smoke runs
// without options fail only for want of required options (a warning).
func TestPolicyScriptsLint(t *testing.T) {
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	mine := []string{"filters/policy_action.lua", "matchers/network_address.lua", "matchers/smtp_tls.lua",
		"matchers/smtp_auth.lua", "matchers/num_rcpts.lua", "matchers/invalid_mail_from.lua",
		"matchers/invalid_rcpt_to.lua", "matchers/address_list.lua", "matchers/policy_action.lua"}
	isMine := func(file string) bool {
		for _, m := range mine {
			if strings.HasSuffix(file, "/"+m) {
				return true
			}
		}
		return false
	}
	lib, findings := luabind.Load([]luabind.Source{{Name: "scripts", FS: os.DirFS(dir)}})
	for _, f := range findings {
		if isMine(f.File) {
			t.Errorf("lint: %s", f)
		}
	}
	if lib == nil {
		t.Skipf("other scripts do not load yet: %v", findings.Errors())
	}
	for _, m := range mine {
		kind, name, _ := strings.Cut(strings.TrimSuffix(m, ".lua"), "/")
		found := false
		for _, s := range lib.Scripts() {
			found = found || s.Name == name && strings.HasSuffix(s.File, "/"+kind+"/"+name+".lua")
		}
		if !found {
			t.Errorf("%s was not loaded", m)
		}
	}
	for _, f := range luabind.Smoke(lib).Errors() {
		if isMine(f.File) {
			t.Errorf("smoke: %s", f)
		}
	}
}
