package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestSyntaxErrorLines(t *testing.T) {
	// yaml.v3 prints 0-based lines for parser errors and none on line 1; the messages here
	// name the 1-based line of the problem.
	for _, c := range []struct{ yaml, want string }{
		{"a: b: c\n", "t.yaml:1: invalid YAML: mapping values are not allowed in this context"},
		{"x: 1\na: b: c\n", "t.yaml:2: invalid YAML: mapping values are not allowed in this context"},
		{"x: 1\n- a\n", "t.yaml:2: invalid YAML: did not find expected key"},
		{"x: [1,\n", "t.yaml:2: invalid YAML: did not find expected node content"},
		{"x: 1\ny: *nope\n", "t.yaml:2:4: invalid YAML: unknown anchor 'nope' referenced"},
	} {
		_, _, err := ParseRouter("t.yaml", []byte(c.yaml))
		if err == nil || err.Error() != c.want {
			t.Errorf("%q: got %v, want %s", c.yaml, err, c.want)
		}
	}
}

func TestAliasLoopsEnd(t *testing.T) {
	bomb := "    a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
	for c := 'b'; c <= 'f'; c++ {
		bomb += fmt.Sprintf("    %c: &%c [%s]\n", c, c, strings.Repeat(fmt.Sprintf("*%c, ", c-1), 9)+fmt.Sprintf("*%c", c-1))
	}
	for name, options := range map[string]string{
		"self":       "    x: &x [*x]\n",
		"merge self": "    x: &x {<<: *x}\n",
		"bomb":       bomb,
		"merge":      "    x: &x {y: 1}\n    z: {<<: *x, w: 2}\n",
	} {
		src := "endpoint:\n- name: e\n  chain:\n  - filter: lua\n" + options + "  - filter: rest_output\n"
		_, _, err := ParseRouter("t.yaml", []byte(minimalListener+minimalStorage+src))
		switch {
		case name == "merge" && err != nil:
			t.Errorf("%s: %v", name, err)
		case name != "merge" && (err == nil || !strings.Contains(err.Error(), "itself")):
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestWarningsComeWithErrors(t *testing.T) {
	src := minimalListener + "storage: {url: 'oracle://db'}\nglobal: {tx_idle_timeout: 5}\n"
	r, warns, err := ParseRouter("t.yaml", []byte(src))
	if r != nil || len(warns) != 1 || err == nil {
		t.Fatalf("got %v, %v, %v", r, warns, err)
	}
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Pos != (Position{"t.yaml", 2, 16}) {
		t.Errorf("errors = %#v", errs)
	}
}

// unknownSteps is a StepChecker that knows one script, dkim_sign, and its options.
type unknownSteps struct{}

func (unknownSteps) CheckStep(s *Step) []Problem {
	switch {
	case s.Builtin():
		return nil
	case s.Filter != "dkim_sign":
		return []Problem{{Pos: s.Pos, Msg: fmt.Sprintf("no script %s.lua", s.Filter)}}
	}
	var ps []Problem
	for k, v := range s.Options {
		if k != "key" && k != "domain" && k != "selector" {
			ps = append(ps, Problem{Pos: v.KeyPos, Msg: fmt.Sprintf("dkim_sign: unknown option %q", k)})
		}
	}
	return ps
}

func TestCheckSteps(t *testing.T) {
	r := parseRouter(t, `endpoint:
- name: e
  chain:
  - filter: dkim_sign
    key: k.pem
    selectr: s1
  - filter: recieved_header
  - filter: rest_output
`)
	err := r.CheckSteps(unknownSteps{})
	want := "t.yaml:8:5: dkim_sign: unknown option \"selectr\"\nt.yaml:9:5: no script recieved_header.lua"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want\n%s", err, want)
	}
	if err := parseRouter(t, "").CheckSteps(unknownSteps{}); err != nil {
		t.Errorf("no steps: %v", err)
	}
}

func TestValuePlain(t *testing.T) {
	r := parseRouter(t, `endpoint:
- name: e
  chain:
  - filter: policy_action
    match: {any: [{matcher: smtp_auth}, {not: {matcher: num_rcpts, max_rcpts: 1e3}}]}
    action: [[1.5, LOG]]
    when: 2024-01-02
    huge: 100000000000000000000
    none: ~
  - filter: rest_output
`)
	opts := r.Endpoint("e").Chain[0].Options
	plain := map[string]any{}
	for k, v := range opts {
		plain[k] = v.Plain()
	}
	check(t, "options", plain, map[string]any{
		"match":  map[string]any{"any": []any{map[string]any{"matcher": "smtp_auth"}, map[string]any{"not": map[string]any{"matcher": "num_rcpts", "max_rcpts": 1000.0}}}},
		"action": []any{[]any{1.5, "LOG"}},
		"when":   "2024-01-02",
		"huge":   1e20,
		"none":   nil,
	})
}

func ExampleParseRouter() {
	_, _, err := ParseRouter("router.yaml", []byte(`
rest_listener:
  addr: [localhost, 8000]
  session_uri: http://localhost:8000
storage:
  url: sqlite:///router.db
  session_refresh_interval: thirty
sender:
- name: submission
  ouput_chain: submission
  output_chain: submision
endpoint:
- name: ingress
  chain: [{filter: rest_output}]
- name: submission
  chain: [{filter: rest_output}]
`))
	fmt.Println(err)
	// Output:
	// router.yaml:7:29: storage.session_refresh_interval: expected a number of seconds, got "thirty"
	// router.yaml:10:3: sender[submission]: unknown key "ouput_chain" (did you mean "output_chain"?)
	// router.yaml:11:17: sender[submission].output_chain: "submision" is not an endpoint name (known: ingress, submission)
}
