package lint

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/yuin/gopher-lua/ast"
)

// maxDepth bounds the recursion over the tree, so that a pathological script
// yields a finding rather than exhausting the stack of the process that is
// hot-reloading it.
const maxDepth = 1000

// context says what happens to an expression's value; it decides whether
// an option read copes with the option being absent.
type context int

const (
	valueCtx   context = iota // the value is used as is
	testCtx                   // only its truth or nil-ness matters
	defaultCtx                // nil is replaced by a default (left of or)
)

type localKind int

const (
	plainLocal localKind = iota
	localFunc
	loopVar
	param
)

var unusedMessages = map[localKind]string{
	plainLocal: "unused local %q",
	localFunc:  "unused local function %q",
	loopVar:    "unused loop variable %q",
}

type shapeKind int

const (
	unknown shapeKind = iota
	table
	function
	literal
)

// shape is what an expression statically evaluates to, as far as the
// return checks care; what names it for messages.
type shape struct {
	kind shapeKind
	what string
}

// hook is a function-valued named field of a table: a filter hook if the
// table is the one returned.
type hook struct {
	name string
	pos  Pos
}

// local is a declared variable and what the walk has learnt about it.
type local struct {
	name       string
	pos        Pos
	kind       localKind
	used       bool
	options    bool // bound to the chunk's ... at top level
	reassigned bool // so its initializer no longer tells its shape
	shape      shape
	hooks      []hook // function-valued fields, should it be the returned table
}

// globalRead is kept until the whole script is seen, as a global may be
// assigned (and so defined) after the read.
type globalRead struct {
	name string
	pos  Pos
	hint string
}

// analyzer walks one parsed chunk in source order, which keeps the lexical
// scopes right and lets token columns be matched left to right.
type analyzer struct {
	file    string
	src     []byte
	kind    Kind
	globals map[string]bool
	info    *Info

	toks      []token
	lineStart map[int]int // line -> index of its first token
	cursor    map[int]int // line -> index of its first token not yet matched
	pos       map[ast.Expr]Pos

	vars   []*local // locals in scope, innermost last
	scopes []int    // len(vars) at each open block

	fnDepth int      // 0 while in the chunk's own body
	depth   int      // recursion depth, bounded by maxDepth
	deep    bool     // maxDepth was hit
	guards  []string // option keys known to be present here

	globalWrites map[string]bool
	globalReads  []globalRead
	returned     bool // the chunk body has a return statement
	returnPos    Pos  // of the last one seen

	findings []Finding
}

func newAnalyzer(file string, src []byte, kind Kind, globals map[string]bool, toks []token, info *Info) *analyzer {
	a := &analyzer{
		file: file, src: src, kind: kind, globals: globals, info: info, toks: toks,
		lineStart:    map[int]int{},
		cursor:       map[int]int{},
		pos:          map[ast.Expr]Pos{},
		globalWrites: map[string]bool{},
	}
	for i := len(toks) - 1; i >= 0; i-- {
		a.lineStart[toks[i].line] = i
	}
	return a
}

func (a *analyzer) add(p Pos, sev Severity, format string, args ...any) {
	a.findings = append(a.findings, Finding{File: a.file, Line: p.Line, Col: p.Col, Severity: sev, Message: fmt.Sprintf(format, args...)})
}

// at finds the column of the next token on line spelling text, after the
// ones already matched since the walk follows source order; strOK also
// accepts a string literal (for keys like ["mail"]). When nothing matches,
// which happens when the tree's line is not the token's (a parenthesized
// name takes the line of its "("), it gives column 1.
func (a *analyzer) at(line int, text string, strOK bool) Pos {
	for i := max(a.lineStart[line], a.cursor[line]); i < len(a.toks) && a.toks[i].line == line; i++ {
		if t := a.toks[i]; t.text == text && (t.kind == word || strOK && t.kind == str) {
			a.cursor[line] = i + 1
			return Pos{line, t.col}
		}
	}
	return Pos{line, 1}
}

// isLocalFunction tells `local function f` from `local f = function`: the
// tree is the same, but only the former sees f inside its body.
func (a *analyzer) isLocalFunction(s *ast.LocalAssignStmt) bool {
	if len(s.Names) != 1 || len(s.Exprs) != 1 {
		return false
	}
	if _, ok := s.Exprs[0].(*ast.FunctionExpr); !ok {
		return false
	}
	for i := max(a.lineStart[s.Line()], a.cursor[s.Line()]); i+2 < len(a.toks) && a.toks[i].line == s.Line(); i++ {
		if t := a.toks[i]; t.kind == word && t.text == "local" {
			return a.toks[i+1].text == "function" && a.toks[i+2].text == s.Names[0]
		}
	}
	return false
}

func (a *analyzer) push() { a.scopes = append(a.scopes, len(a.vars)) }

// pop closes the innermost block and warns about its unused locals.
func (a *analyzer) pop() {
	n := a.scopes[len(a.scopes)-1]
	a.scopes = a.scopes[:len(a.scopes)-1]
	for _, l := range a.vars[n:] {
		if msg, ok := unusedMessages[l.kind]; ok && !l.used && !strings.HasPrefix(l.name, "_") {
			a.add(l.pos, Warning, msg, l.name)
		}
	}
	a.vars = a.vars[:n]
}

func (a *analyzer) declare(name string, p Pos, kind localKind) *local {
	l := &local{name: name, pos: p, kind: kind}
	a.vars = append(a.vars, l)
	return l
}

func (a *analyzer) lookup(name string) *local {
	for i := len(a.vars) - 1; i >= 0; i-- {
		if a.vars[i].name == name {
			return a.vars[i]
		}
	}
	return nil
}

func (a *analyzer) isOptions(e ast.Expr) bool {
	id, ok := e.(*ast.IdentExpr)
	if !ok {
		return false
	}
	l := a.lookup(id.Value)
	return l != nil && l.options
}

// tooDeep reports, once, that the tree is nested beyond maxDepth.
func (a *analyzer) tooDeep(line int) bool {
	if a.depth < maxDepth {
		return false
	}
	if !a.deep {
		a.deep = true
		a.add(Pos{line, 1}, Error, "nesting is too deep to check (more than %d levels)", maxDepth)
	}
	return true
}

func (a *analyzer) chunk(stmts []ast.Stmt) {
	a.push()
	for _, s := range stmts {
		a.stmt(s, true)
	}
	a.checkReturn(stmts)
	a.pop()
	for _, r := range a.globalReads {
		if a.globals[r.name] || a.globalWrites[r.name] {
			continue
		}
		if r.hint != "" {
			a.add(r.pos, Error, "undefined global %q (did you mean %q?)", r.name, r.hint)
		} else {
			a.add(r.pos, Error, "undefined global %q", r.name)
		}
	}
}

func (a *analyzer) block(stmts []ast.Stmt) {
	a.push()
	for _, s := range stmts {
		a.stmt(s, false)
	}
	a.pop()
}

// stmt walks one statement; top is set for the chunk's own statements,
// the only place where options are bound.
func (a *analyzer) stmt(s ast.Stmt, top bool) {
	if a.tooDeep(s.Line()) {
		return
	}
	a.depth++
	defer func() { a.depth-- }()
	switch s := s.(type) {
	case *ast.LocalAssignStmt:
		a.localAssign(s, top)
	case *ast.AssignStmt:
		for _, lhs := range s.Lhs {
			a.target(lhs)
		}
		for _, e := range s.Rhs {
			a.expr(e, valueCtx)
		}
		for i, lhs := range s.Lhs {
			if i < len(s.Rhs) && a.shape(s.Rhs[i]).kind == function {
				a.addHook(lhs)
			}
		}
	case *ast.FuncCallStmt:
		a.expr(s.Expr, valueCtx)
	case *ast.FuncDefStmt:
		target, method := s.Name.Func, s.Name.Func == nil
		if method {
			// function M:name() assigns M.name, like function M.name().
			key := &ast.StringExpr{Value: s.Name.Method}
			key.SetLine(s.Line())
			field := &ast.AttrGetExpr{Object: s.Name.Receiver, Key: key}
			field.SetLine(s.Line())
			target = field
		}
		a.target(target)
		a.addHook(target)
		a.function(s.Func, method)
	case *ast.ReturnStmt:
		p := a.at(s.Line(), "return", false)
		if a.fnDepth == 0 {
			a.returned, a.returnPos = true, p
		}
		for _, e := range s.Exprs {
			a.expr(e, valueCtx)
		}
	case *ast.DoBlockStmt:
		a.block(s.Stmts)
	case *ast.WhileStmt:
		a.expr(s.Condition, testCtx)
		n := a.guard(s.Condition)
		a.block(s.Stmts)
		a.guards = a.guards[:n]
	case *ast.RepeatStmt:
		// The condition sees the body's locals.
		a.push()
		for _, st := range s.Stmts {
			a.stmt(st, false)
		}
		a.expr(s.Condition, testCtx)
		a.pop()
	case *ast.IfStmt:
		a.expr(s.Condition, testCtx)
		n := a.guard(s.Condition)
		a.block(s.Then)
		a.guards = a.guards[:n]
		a.block(s.Else)
	case *ast.NumberForStmt:
		p := a.at(s.Line(), s.Name, false)
		a.expr(s.Init, valueCtx)
		a.expr(s.Limit, valueCtx)
		a.expr(s.Step, valueCtx)
		a.push()
		a.declare(s.Name, p, loopVar)
		for _, st := range s.Stmts {
			a.stmt(st, false)
		}
		a.pop()
	case *ast.GenericForStmt:
		ps := make([]Pos, len(s.Names))
		for i, n := range s.Names {
			ps[i] = a.at(s.Line(), n, false)
		}
		for _, e := range s.Exprs {
			a.expr(e, valueCtx)
		}
		a.push()
		for i, n := range s.Names {
			a.declare(n, ps[i], loopVar)
		}
		for _, st := range s.Stmts {
			a.stmt(st, false)
		}
		a.pop()
	}
}

func (a *analyzer) localAssign(s *ast.LocalAssignStmt, top bool) {
	if a.isLocalFunction(s) {
		l := a.declare(s.Names[0], a.at(s.Line(), s.Names[0], false), localFunc)
		l.shape = shape{function, "a function"}
		a.function(s.Exprs[0].(*ast.FunctionExpr), false)
		return
	}
	ps := make([]Pos, len(s.Names))
	for i, n := range s.Names {
		ps[i] = a.at(s.Line(), n, false)
	}
	for _, e := range s.Exprs {
		a.expr(e, valueCtx)
	}
	// Shapes are taken before declaring: the right-hand side sees the
	// outer scope (local x = x).
	ls := make([]local, len(s.Names))
	for i, n := range s.Names {
		ls[i] = local{name: n, pos: ps[i]}
		if i < len(s.Exprs) {
			ls[i].shape = a.shape(s.Exprs[i])
			ls[i].hooks = a.tableHooks(s.Exprs[i])
			_, dots := s.Exprs[i].(*ast.Comma3Expr)
			ls[i].options = top && i == 0 && dots
		}
	}
	for i := range ls {
		a.vars = append(a.vars, &ls[i])
	}
}

// function walks a function body; method adds the implicit self.
func (a *analyzer) function(f *ast.FunctionExpr, method bool) {
	a.fnDepth++
	a.push()
	if method {
		a.declare("self", Pos{}, param)
	}
	for _, n := range f.ParList.Names {
		a.declare(n, a.at(f.Line(), n, false), param)
	}
	for _, s := range f.Stmts {
		a.stmt(s, false)
	}
	a.pop()
	a.fnDepth--
}

// target walks the left-hand side of an assignment.
func (a *analyzer) target(e ast.Expr) {
	switch t := e.(type) {
	case *ast.IdentExpr:
		p := a.at(t.Line(), t.Value, false)
		if l := a.lookup(t.Value); l != nil {
			l.reassigned = true
			return
		}
		a.globalWrites[t.Value] = true
		a.add(p, Error, "assigns global %q; declare it local (scripts share no globals between calls)", t.Value)
	case *ast.AttrGetExpr:
		if a.isOptions(t.Object) {
			a.ident(t.Object.(*ast.IdentExpr))
		} else {
			a.expr(t.Object, valueCtx)
		}
		a.expr(t.Key, valueCtx)
		root := t.Object
		for {
			inner, ok := root.(*ast.AttrGetExpr)
			if !ok {
				break
			}
			root = inner.Object
		}
		if a.isOptions(root) {
			a.add(a.pos[root], Error, "options are read-only: cannot assign to %s", path(t))
		}
	}
}

// path renders an assignment target like opts.x["y z"] for messages.
func path(e ast.Expr) string {
	var parts []string
	for {
		t, ok := e.(*ast.AttrGetExpr)
		if !ok {
			break
		}
		switch k := t.Key.(type) {
		case *ast.StringExpr:
			if isName(k.Value) {
				parts = append(parts, "."+k.Value)
			} else {
				parts = append(parts, fmt.Sprintf("[%q]", k.Value))
			}
		default:
			parts = append(parts, "[...]")
		}
		e = t.Object
	}
	if id, ok := e.(*ast.IdentExpr); ok {
		parts = append(parts, id.Value)
	}
	slices.Reverse(parts)
	return strings.Join(parts, "")
}

func isName(s string) bool {
	for i, c := range []byte(s) {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

// addHook records M.name = <function> on the local M, in case M turns out
// to be the table the chunk returns.
func (a *analyzer) addHook(e ast.Expr) {
	t, ok := e.(*ast.AttrGetExpr)
	if !ok {
		return
	}
	obj, ok := t.Object.(*ast.IdentExpr)
	if !ok {
		return
	}
	key, ok := t.Key.(*ast.StringExpr)
	if l := a.lookup(obj.Value); ok && l != nil && !l.options {
		l.hooks = append(l.hooks, hook{key.Value, a.pos[key]})
	}
}

// ident resolves a name read, marking a local used or recording a global.
func (a *analyzer) ident(e *ast.IdentExpr) *local {
	p := a.at(e.Line(), e.Value, false)
	a.pos[e] = p
	if l := a.lookup(e.Value); l != nil {
		l.used = true
		return l
	}
	r := globalRead{name: e.Value, pos: p}
	if !a.globals[e.Value] {
		// The hint is taken now, while the locals in scope are known.
		names := slices.Collect(maps.Keys(a.globals))
		for _, l := range a.vars {
			names = append(names, l.name)
		}
		r.hint = Closest(e.Value, names)
	}
	a.globalReads = append(a.globalReads, r)
	return nil
}

func (a *analyzer) expr(e ast.Expr, c context) {
	if e == nil || a.tooDeep(e.Line()) {
		return
	}
	a.depth++
	defer func() { a.depth-- }()
	switch e := e.(type) {
	case *ast.IdentExpr:
		if l := a.ident(e); l != nil && l.options && c != testCtx {
			a.info.OptionsDynamic = true
		}
	case *ast.StringExpr:
		a.pos[e] = a.at(e.Line(), e.Value, true)
	case *ast.AttrGetExpr:
		if a.isOptions(e.Object) {
			a.ident(e.Object.(*ast.IdentExpr))
			a.optionRead(e.Key, c)
			return
		}
		a.expr(e.Object, valueCtx)
		a.expr(e.Key, valueCtx)
	case *ast.TableExpr:
		for _, f := range e.Fields {
			a.expr(f.Key, valueCtx)
			a.expr(f.Value, valueCtx)
		}
	case *ast.FuncCallExpr:
		if e.Func != nil {
			a.expr(e.Func, valueCtx)
		} else {
			a.expr(e.Receiver, valueCtx)
			a.at(e.Line(), e.Method, false)
		}
		for _, arg := range e.Args {
			a.expr(arg, valueCtx)
		}
	case *ast.LogicalOpExpr:
		left := testCtx
		if e.Operator == "or" && c != testCtx {
			left = defaultCtx
		}
		a.expr(e.Lhs, left)
		n := len(a.guards)
		if e.Operator == "and" {
			n = a.guard(e.Lhs)
		}
		a.expr(e.Rhs, c)
		a.guards = a.guards[:n]
	case *ast.RelationalOpExpr:
		lc, rc := valueCtx, valueCtx
		if e.Operator == "==" || e.Operator == "~=" {
			if isNil(e.Rhs) {
				lc = testCtx
			}
			if isNil(e.Lhs) {
				rc = testCtx
			}
		}
		a.expr(e.Lhs, lc)
		a.expr(e.Rhs, rc)
	case *ast.StringConcatOpExpr:
		a.expr(e.Lhs, valueCtx)
		a.expr(e.Rhs, valueCtx)
	case *ast.ArithmeticOpExpr:
		a.expr(e.Lhs, valueCtx)
		a.expr(e.Rhs, valueCtx)
	case *ast.UnaryMinusOpExpr:
		a.expr(e.Expr, valueCtx)
	case *ast.UnaryLenOpExpr:
		a.expr(e.Expr, valueCtx)
	case *ast.UnaryNotOpExpr:
		a.expr(e.Expr, testCtx)
	case *ast.FunctionExpr:
		a.function(e, false)
	}
}

func isNil(e ast.Expr) bool {
	_, ok := e.(*ast.NilExpr)
	return ok
}

// optionRead records opts[key] read in context c.
func (a *analyzer) optionRead(key ast.Expr, c context) {
	k, ok := key.(*ast.StringExpr)
	if !ok {
		a.info.OptionsDynamic = true
		a.expr(key, valueCtx)
		return
	}
	a.expr(k, valueCtx)
	guarded := c != valueCtx || slices.Contains(a.guards, k.Value)
	u, seen := a.info.Options[k.Value]
	u.Reads = append(u.Reads, a.pos[k])
	u.Guarded = guarded && (u.Guarded || !seen)
	a.info.Options[k.Value] = u
}

// guard pushes the option keys that cond being true proves present and
// returns the previous length of the guard stack, to restore it.
func (a *analyzer) guard(cond ast.Expr) int {
	n := len(a.guards)
	todo := []ast.Expr{cond}
	for len(todo) > 0 {
		e := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		switch e := e.(type) {
		case *ast.LogicalOpExpr:
			if e.Operator == "and" {
				todo = append(todo, e.Rhs, e.Lhs)
			}
		case *ast.RelationalOpExpr:
			if e.Operator == "~=" && isNil(e.Rhs) {
				todo = append(todo, e.Lhs)
			} else if e.Operator == "~=" && isNil(e.Lhs) {
				todo = append(todo, e.Rhs)
			}
		case *ast.AttrGetExpr:
			if k, ok := e.Key.(*ast.StringExpr); ok && a.isOptions(e.Object) {
				a.guards = append(a.guards, k.Value)
			}
		}
	}
	return n
}

// shape classifies e as far as the return checks need.
func (a *analyzer) shape(e ast.Expr) shape {
	switch e := e.(type) {
	case *ast.TableExpr:
		return shape{table, "a table"}
	case *ast.FunctionExpr:
		return shape{function, "a function"}
	case *ast.NumberExpr:
		return shape{literal, "a number"}
	case *ast.StringExpr:
		return shape{literal, "a string"}
	case *ast.NilExpr:
		return shape{literal, "nil"}
	case *ast.TrueExpr, *ast.FalseExpr:
		return shape{literal, "a boolean"}
	case *ast.IdentExpr:
		if l := a.lookup(e.Value); l != nil && !l.reassigned {
			return l.shape
		}
	}
	return shape{}
}

// tableHooks lists the function-valued named fields of a table constructor.
func (a *analyzer) tableHooks(e ast.Expr) []hook {
	t, ok := e.(*ast.TableExpr)
	if !ok {
		return nil
	}
	var hooks []hook
	for _, f := range t.Fields {
		if k, ok := f.Key.(*ast.StringExpr); ok && a.shape(f.Value).kind == function {
			hooks = append(hooks, hook{k.Value, a.pos[k]})
		}
	}
	return hooks
}

var hookNames = []string{"data", "mail", "rcpt"}

// checkReturn checks what the chunk returns against its kind and fills
// the Info fields derived from it. Only a final return statement is
// judged; returns nested in blocks are left to the runtime.
func (a *analyzer) checkReturn(stmts []ast.Stmt) {
	var ret *ast.ReturnStmt
	if n := len(stmts); n > 0 {
		ret, _ = stmts[n-1].(*ast.ReturnStmt)
	}
	if ret != nil && len(ret.Exprs) > 0 {
		e := ret.Exprs[0]
		a.info.ReturnsFunction = a.shape(e).kind == function
		hooks := a.tableHooks(e)
		if id, ok := e.(*ast.IdentExpr); ok {
			if l := a.lookup(id.Value); l != nil && !l.reassigned && l.shape.kind == table {
				hooks = l.hooks
			}
		}
		for _, h := range hooks {
			a.info.Hooks[h.name] = h.pos
			if a.kind == Filter && !slices.Contains(hookNames, h.name) {
				if hint := Closest(h.name, hookNames); hint != "" {
					a.add(h.pos, Error, "unknown hook %q (hooks are mail, rcpt, data; did you mean %q?)", h.name, hint)
				} else {
					a.add(h.pos, Error, "unknown hook %q (hooks are mail, rcpt, data)", h.name)
				}
			}
		}
	}
	want := a.kind.contract()
	switch {
	case want == "":
	case ret == nil && !a.returned:
		a.add(a.endPos(), Error, "missing return: %s", want)
	case ret == nil:
	case len(ret.Exprs) == 0:
		a.add(a.returnPos, Error, "missing return value: %s", want)
	default:
		got := a.shape(ret.Exprs[0])
		if got.kind == literal || got.kind == function && a.kind == Filter || got.kind == table && a.kind != Filter {
			a.add(a.returnPos, Error, "%s, not %s", want, got.what)
		}
	}
}

// endPos is the start of the script's last line, where a missing return
// belongs.
func (a *analyzer) endPos() Pos {
	n := bytes.Count(a.src, []byte("\n"))
	if len(a.src) > 0 && a.src[len(a.src)-1] != '\n' {
		n++
	}
	return Pos{max(n, 1), 1}
}
