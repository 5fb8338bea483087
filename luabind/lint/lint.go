// Package lint statically checks one koukan Lua script before it is loaded,
// so that `koukan check` and hot reload can reject a broken script with
// file:line:col messages instead of failing on the first message that
// reaches it at run time.
//
// Only gopher-lua's syntax tree is inspected; nothing is executed. Analyze
// reports syntax errors, reads of undefined globals, assignments to globals
// (scripts share no global state between calls), a return value of the wrong
// shape for the script's Kind, unknown filter hook names, writes to the
// read-only options table and, as warnings, unused locals. It also returns
// what the loader can learn statically: the hooks a filter defines and the
// option keys the script reads, so that missing or unknown options in the
// YAML configuration can be reported before any mail flows.
package lint

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/yuin/gopher-lua/parse"
)

// Kind is the role a script plays; it decides what the chunk must return.
type Kind int

const (
	// Filter scripts return a table of optional phase hooks (mail, rcpt, data).
	Filter Kind = iota
	// Policy scripts return a function(tx, rcpt) choosing a destination.
	Policy
	// Matcher scripts return a function(tx) answering true, false or nil.
	Matcher
)

// contract states what a script of kind k must return, for messages; it is
// empty for values that are not a Kind, which skips the return checks.
func (k Kind) contract() string {
	switch k {
	case Filter:
		return "a filter must return a table of hooks (mail, rcpt, data)"
	case Policy:
		return "a policy must return a function(tx, rcpt)"
	case Matcher:
		return "a matcher must return a function(tx)"
	}
	return ""
}

// Severity tells whether a finding blocks loading the script.
type Severity int

const (
	// Error findings make the script unusable.
	Error Severity = iota
	// Warning findings are worth fixing but do not block loading.
	Warning
)

// Finding is one problem, positioned so editors can jump to it.
type Finding struct {
	File      string
	Line, Col int // 1-based; Col counts bytes
	Severity  Severity
	Message   string
}

// String formats f the way compilers do, "file:line:col: message", so the
// output of `koukan check` is understood by editors and CI annotations.
func (f Finding) String() string {
	prefix := ""
	if f.Severity == Warning {
		prefix = "warning: "
	}
	return fmt.Sprintf("%s:%d:%d: %s%s", f.File, f.Line, f.Col, prefix, f.Message)
}

// Pos is a 1-based line and byte column in the script.
type Pos struct{ Line, Col int }

// OptionUse describes how the script reads one option key.
type OptionUse struct {
	// Reads are the positions of the key in each read, in source order.
	Reads []Pos
	// Guarded is true when every read copes with the key being absent, so
	// the option is optional; see Info.Options for what counts as a guard.
	Guarded bool
}

// Info is what the loader can know about a script without running it.
type Info struct {
	// Hooks are the names of the returned table's function-valued fields
	// (filters), with the position of each name's last definition.
	Hooks map[string]Pos
	// ReturnsFunction is true when the chunk returns a function expression
	// or a local bound to one.
	ReturnsFunction bool
	// Options are the option keys the script reads as opts.key or
	// opts["key"] (a read of opts.list[1] or opts.x.y reads "list" or "x").
	// A read is guarded when its value is only tested or defaulted: the
	// condition of if/elseif/while/until, the operand of not, the left
	// operand of and/or, a side of == or ~= compared with nil, and any
	// operand of and/or whose result is itself tested or defaulted. A read
	// is also guarded inside the then-branch of an if, the body of a while,
	// or the right operand of and, when the condition checked the same key
	// (opts.key or opts.key ~= nil, possibly joined with and).
	Options map[string]OptionUse
	// OptionsDynamic is set when the options table escapes static view:
	// indexed with anything but a string constant, passed whole to a
	// function or method, iterated, returned, assigned to another variable
	// or used as an operand other than a test or a nil comparison. Then
	// Options may be incomplete.
	OptionsDynamic bool
}

// Analyze parses src and reports its problems, sorted by position. file
// names the script in findings. globals are the names the runtime provides
// (string, table, koukan, ...). kind says which return shape is expected;
// a value that is not one of Filter, Policy, Matcher skips the return checks.
// After a syntax error, Analyze reports only that error.
func Analyze(file string, src []byte, kind Kind, globals map[string]bool) (Info, []Finding) {
	info := Info{Hooks: map[string]Pos{}, Options: map[string]OptionUse{}}
	toks, bad := scan(src)
	chunk, err := parse.Parse(bytes.NewReader(src), file)
	if err != nil {
		return info, []Finding{syntaxFinding(file, err, toks, bad)}
	}
	a := newAnalyzer(file, src, kind, globals, toks, &info)
	a.chunk(chunk)
	sort.SliceStable(a.findings, func(i, j int) bool {
		fi, fj := a.findings[i], a.findings[j]
		if fi.Line != fj.Line {
			return fi.Line < fj.Line
		}
		return fi.Col < fj.Col
	})
	return info, a.findings
}
