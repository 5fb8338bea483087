package config

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// decoder walks a yaml.Node tree and records problems with their positions. Facts that need
// more than one section (references, listen addresses) are collected while walking and
// checked once the walk is done.
type decoder struct {
	file  string
	errs  []Problem
	warns []Problem
	facts
	listens []listenAddr // checked across the whole file
	// budget is how many nodes value may still expand (a bound on alias bombs); exhausted
	// records that this was reported.
	budget    int
	exhausted bool
	merging   map[*yaml.Node]bool // mappings being merged by "<<", to stop a merge of itself
	// visit, when set, is shown every mapping decoded with fields, and the fields, before
	// they are decoded; a test walks every key the decoder knows with it.
	visit func(p path, n *yaml.Node, fs []field)
}

// facts are what a router or gateway config checks once it is decoded.
type facts struct {
	refs          []ref
	dests         []pendingDestination
	notifications []site
	senders       []senderSites // one per Sender, in order
}

// config decodes one router or gateway config with its own facts, so that the sections of a
// serve file do not see each other's names.
func config[T any](d *decoder, decode func() *T) *T {
	saved := d.facts
	d.facts = facts{}
	defer func() { d.facts = saved }()
	return decode()
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, budget: 1 << 16, merging: map[*yaml.Node]bool{}}
}

// path names a place in a config for messages, e.g. sender[submission].tag[smtp-msa].retry.
type path string

func (p path) key(k string) path {
	if p == "" {
		return path(k)
	}
	return p + "." + path(k)
}

func (p path) item(label string) path { return p + "[" + path(label) + "]" }

// say prefixes msg with the path, if there is one.
func (p path) say(msg string) string {
	if p == "" {
		return msg
	}
	return string(p) + ": " + msg
}

func (d *decoder) pos(n *yaml.Node) Position {
	return Position{File: d.file, Line: n.Line, Column: n.Column}
}

func (d *decoder) errorAt(at Position, p path, format string, args ...any) {
	d.errs = append(d.errs, Problem{Pos: at, Msg: p.say(fmt.Sprintf(format, args...))})
}

func (d *decoder) errorf(n *yaml.Node, p path, format string, args ...any) {
	d.errorAt(d.pos(n), p, format, args...)
}

func (d *decoder) warnAt(at Position, p path, format string, args ...any) {
	d.warns = append(d.warns, Problem{Pos: at, Msg: p.say(fmt.Sprintf(format, args...))})
}

func (d *decoder) warnf(n *yaml.Node, p path, format string, args ...any) {
	d.warnAt(d.pos(n), p, format, args...)
}

// field is one key of a mapping and how to decode its value.
type field struct {
	key      string
	required bool
	ignored  string // when set, the key is accepted with this warning and not decoded
	decode   func(d *decoder, p path, v *yaml.Node)
}

// must marks f as required: absent or null is an error.
func (f field) must() field {
	f.required = true
	return f
}

// notNull makes null an error for f, where the key itself may be left out.
func (f field) notNull() field {
	decode := f.decode
	f.decode = func(d *decoder, p path, n *yaml.Node) {
		if isNull(deref(n)) {
			d.errorf(deref(n), p, "needs a value")
			return
		}
		decode(d, p, n)
	}
	return f
}

// ignored is a key the reference system accepted that has no effect in Koukan; why says
// what happens instead.
func ignored(key, why string) field { return field{key: key, ignored: why} }

// sub decodes key with fn, which receives the value as written (null included).
func sub(key string, fn func(d *decoder, p path, v *yaml.Node)) field {
	return field{key: key, decode: fn}
}

// parser turns a non-null scalar into a T, or reports why it cannot.
type parser[T any] func(d *decoder, p path, n *yaml.Node) (T, bool)

// scalar decodes key into *dst; null or absent keep the default already in *dst.
func scalar[T any](key string, dst *T, parse parser[T]) field {
	return sub(key, func(d *decoder, p path, n *yaml.Node) {
		if n = deref(n); isNull(n) {
			return
		}
		if v, ok := parse(d, p, n); ok {
			*dst = v
		}
	})
}

// nullable decodes a key whose null means "off": null sets *dst to nil, a value sets it to
// point at the value, and an absent key keeps the default already in *dst.
func nullable[T any](key string, dst **T, parse parser[T]) field {
	return sub(key, func(d *decoder, p path, n *yaml.Node) {
		if n = deref(n); isNull(n) {
			*dst = nil
			return
		}
		if v, ok := parse(d, p, n); ok {
			*dst = &v
		}
	})
}

// fields decodes mapping n with fs; any other key is an error with a suggestion. It reports
// whether n was a mapping (or null, an empty one).
func (d *decoder) fields(p path, n *yaml.Node, fs ...field) bool {
	return d.fieldsAndRest(p, n, nil, fs...)
}

// fieldsAndRest is fields, but hands the keys that are not in fs to rest.
func (d *decoder) fieldsAndRest(p path, n *yaml.Node, rest func(k, v *yaml.Node), fs ...field) bool {
	n = deref(n)
	if isNull(n) { // an empty section: only missing required keys can be wrong
		n = &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column}
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, p, "expected a mapping, got %s", describe(n))
		return false
	}
	if d.visit != nil {
		d.visit(p, n, fs)
	}
	seen := map[string]bool{}
	for _, e := range d.entries(p, n) {
		k := e.k.Value
		seen[k] = true
		f, known := findField(fs, k)
		switch {
		case !known && rest != nil:
			rest(e.k, e.v)
		case !known:
			d.unknownKey(p, e.k, fs)
		case f.ignored != "":
			d.warnf(e.k, p, "key %q is ignored (%s)", k, f.ignored)
		case f.required && isNull(deref(e.v)):
			d.errorf(deref(e.v), p.key(k), "needs a value")
		default:
			f.decode(d, p.key(k), e.v)
		}
	}
	for _, f := range fs {
		if f.required && !seen[f.key] {
			d.errorf(n, p, "missing required key %q", f.key)
		}
	}
	return true
}

func findField(fs []field, key string) (field, bool) {
	for _, f := range fs {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

func (d *decoder) unknownKey(p path, k *yaml.Node, fs []field) {
	var names []string
	for _, f := range fs {
		if f.ignored == "" {
			names = append(names, f.key)
		}
	}
	msg := fmt.Sprintf("unknown key %q", k.Value)
	if p == "" {
		msg = fmt.Sprintf("unknown top-level key %q", k.Value)
	}
	if s := closest(k.Value, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	d.errorf(k, p, "%s", msg)
}

type entry struct{ k, v *yaml.Node }

// entries lists the pairs of mapping n. It expands "<<" merge keys (keys written in n win
// over merged ones) and reports duplicate and non-scalar keys.
func (d *decoder) entries(p path, n *yaml.Node) []entry {
	var out, merged []entry
	first := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge":
			merged = append(merged, d.mergeSources(p, v)...)
		case k.Kind != yaml.ScalarNode:
			d.errorf(k, p, "keys must be plain strings, got %s", describe(k))
		case first[k.Value] != nil:
			d.errorf(k, p, "duplicate key %q (first at line %d)", k.Value, first[k.Value].Line)
		default:
			first[k.Value] = k
			out = append(out, entry{k, v})
		}
	}
	for _, e := range merged {
		if first[e.k.Value] == nil {
			first[e.k.Value] = e.k
			out = append(out, e)
		}
	}
	return out
}

// mergeSources returns the pairs that a "<<" key merges in: one mapping or a list of them.
func (d *decoder) mergeSources(p path, v *yaml.Node) []entry {
	v = deref(v)
	if v.Kind != yaml.SequenceNode {
		return d.merge(p, v)
	}
	var out []entry
	for _, m := range v.Content {
		out = append(out, d.merge(p, deref(m))...)
	}
	return out
}

func (d *decoder) merge(p path, m *yaml.Node) []entry {
	switch {
	case m.Kind != yaml.MappingNode:
		d.errorf(m, p, "<< merges mappings, got %s", describe(m))
		return nil
	case d.merging[m]:
		d.errorf(m, p, "<< merges a mapping into itself")
		return nil
	}
	d.merging[m] = true
	defer delete(d.merging, m)
	return d.entries(p, m)
}

// list calls item for each element of sequence n; null is an empty list.
func (d *decoder) list(p path, n *yaml.Node, item func(i int, n *yaml.Node)) {
	if n = deref(n); isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, p, "expected a list, got %s", describe(n))
		return
	}
	for i, c := range n.Content {
		item(i, deref(c))
	}
}

// listOf decodes key as a list of T, each element named in paths by label.
func listOf[T any](key string, dst *[]T, decode func(d *decoder, p path, n *yaml.Node) T) field {
	return sub(key, func(d *decoder, p path, n *yaml.Node) {
		d.list(p, n, func(i int, n *yaml.Node) { *dst = append(*dst, decode(d, p.item(d.label(i, n)), n)) })
	})
}

// label names list element n in paths: by its name key when it has one, else by index.
func (d *decoder) label(i int, n *yaml.Node) string {
	if n.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(n.Content); j += 2 {
			k, v := n.Content[j], deref(n.Content[j+1])
			if k.Value == "name" && v.Kind == yaml.ScalarNode && v.Value != "" {
				return v.Value
			}
		}
	}
	return strconv.Itoa(i)
}

// mapping calls each for every pair of a mapping whose keys are names chosen by the user.
func (d *decoder) mapping(p path, n *yaml.Node, each func(k, v *yaml.Node)) {
	if n = deref(n); isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, p, "expected a mapping, got %s", describe(n))
		return
	}
	for _, e := range d.entries(p, n) {
		each(e.k, deref(e.v))
	}
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe renders a value for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing"
		case "!!str":
			return strconv.Quote(n.Value)
		}
		return n.Value
	}
	return "an unreadable value"
}

// closest returns the candidate nearest to word, or "" if none is near enough to be a typo.
func closest(word string, candidates []string) string {
	best, bestDist := "", max(1, len(word)/4)+1
	for _, c := range candidates {
		if dist := editDistance(strings.ToLower(word), c); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	return best
}

// editDistance counts the insertions, deletions, substitutions and swaps of adjacent bytes
// that turn a into b (optimal string alignment distance).
func editDistance(a, b string) int {
	rows := make([][]int, len(a)+1)
	for i := range rows {
		rows[i] = make([]int, len(b)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			rows[i][j] = min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				rows[i][j] = min(rows[i][j], rows[i-2][j-2]+1)
			}
		}
	}
	return rows[len(a)][len(b)]
}
