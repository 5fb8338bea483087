package config

import (
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/koukan/koukan/luabind/lint"
	"github.com/koukan/koukan/scripts"
	"gopkg.in/yaml.v3"
)

// These tests hold docs/config.md to the decoder: every key the decoder knows is in its
// tables and nothing else is, an ignored key's row quotes its warning and a required key's
// says so, the YAML examples load without a problem and between them set every key that
// has an effect, and the options of the shipped Lua scripts are those the scripts read.

const configDoc = "../docs/config.md"

// The decoders of the three kinds of file, each from the top.
var kinds = []struct {
	kind   Kind
	decode func(d *decoder, p path, n *yaml.Node)
}{
	{KindRouter, func(d *decoder, p path, n *yaml.Node) { d.router(p, n) }},
	{KindGateway, func(d *decoder, p path, n *yaml.Node) { d.gateway(p, n) }},
	{KindServe, func(d *decoder, p path, n *yaml.Node) { d.serve(p, n) }},
}

// A key is named in the documentation by its path: "global.executor.output.max_inflight";
// [] for the items of a list ("sender[].tag[].name"); * for names of the user's choosing
// ("smtp_output.hosts.*.ehlo_host"); a chain step's options under its filter
// ("endpoint[].chain[rest_output].verify"), except filter itself ("endpoint[].chain[].filter").

// pathTokens splits a decoder path into keys and "[label]" items.
func pathTokens(p path) []string {
	var out []string
	for s := string(p); s != ""; {
		switch end := strings.IndexAny(s[1:], ".[") + 1; {
		case s[0] == '.':
			s = s[1:]
		case s[0] == '[':
			end = strings.IndexByte(s, ']') + 1
			out, s = append(out, s[:end]), s[end:]
		case end == 0:
			out, s = append(out, s), ""
		default:
			out, s = append(out, s[:end]), s[end:]
		}
	}
	return out
}

func joinKey(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}

// namer turns decoder paths into documented paths.
type namer struct {
	steps map[string]string // the filter of each chain step seen, by decoder path
	named map[string]bool   // documented paths of mappings whose keys are the user's names
}

func newNamer(named map[string]bool) *namer {
	return &namer{steps: map[string]string{}, named: named}
}

func (nm *namer) name(p path) string {
	var out, raw string
	for _, t := range pathTokens(p) {
		named := nm.named[out]
		switch {
		case strings.HasPrefix(t, "["):
			raw += t
			if f, ok := nm.steps[raw]; ok {
				out += "[" + f + "]"
			} else {
				out += "[]"
			}
		case named:
			raw, out = joinKey(raw, t), joinKey(out, "*")
		default:
			raw, out = joinKey(raw, t), joinKey(out, t)
		}
	}
	return out
}

var stepFilter = regexp.MustCompile(`chain\[[^\]]+\]\.filter$`)

// key names key of the mapping at decoder path p, which the visit hook is showing with n.
func (nm *namer) key(p path, n *yaml.Node, key string) string {
	if t := pathTokens(p); len(t) >= 2 && t[len(t)-2] == "chain" {
		nm.steps[string(p)] = scalarValue(n, "filter")
	}
	return stepFilter.ReplaceAllString(joinKey(nm.name(p), key), "chain[].filter")
}

func scalarValue(n *yaml.Node, key string) string {
	for _, e := range mappingKeys(n) {
		if e.k.Value == key && deref(e.v).Kind == yaml.ScalarNode {
			return deref(e.v).Value
		}
	}
	return ""
}

// mappingKeys lists the pairs of n with "<<" merges expanded (no checks: the decoder makes
// them).
func mappingKeys(n *yaml.Node) []entry {
	var out []entry
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		if k.ShortTag() != "!!merge" {
			out = append(out, entry{k, v})
			continue
		}
		for _, m := range append([]*yaml.Node{v}, v.Content...) {
			if m = deref(m); m.Kind == yaml.MappingNode {
				out = append(out, mappingKeys(m)...)
			}
		}
	}
	return out
}

// The shapes a key's value is tried in while walking, in order, until one makes the
// decoder read keys inside it.
const (
	shapeMapping = iota // {}
	shapeList           // [{}]
	shapeNames          // {"*": {}}
	shapeLeaf           // a value without keys of its own: not written
)

func mappingNode(pairs ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: pairs}
}

func strNode(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// stepsNode is a chain with one step of each filter the decoder treats on its own.
func stepsNode() *yaml.Node {
	filters := slices.Sorted(maps.Keys(builtinSteps))
	filters = append(filters, slices.Sorted(maps.Keys(ignoredScriptKeys))...)
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, f := range filters {
		n.Content = append(n.Content, mappingNode(strNode("filter"), strNode(f)))
	}
	return n
}

// declaredKeys walks every key decode knows. Starting from an empty document, it adds
// each key the decoder asks about, as a mapping, then a list of one mapping, then a
// mapping of one name, until the decoder reads keys inside it or none of them works (a
// scalar, or a value the decoder reads without fields); it decodes again until nothing
// new is found. It returns the keys by documented path, and the documented paths of the
// mappings keyed by names of the user's choosing.
func declaredKeys(t *testing.T, decode func(d *decoder, p path, n *yaml.Node)) (map[string]field, map[string]bool) {
	t.Helper()
	shape := map[string]int{}
	for range 100 {
		named := map[string]bool{}
		for k, s := range shape {
			named[k] = s == shapeNames
		}
		nm := newNamer(named)
		keys, visited := map[string]field{}, map[string]bool{}
		d := newDecoder("walk.yaml")
		d.visit = func(p path, n *yaml.Node, fs []field) {
			visited[nm.name(p)] = true
			for _, f := range fs {
				k := nm.key(p, n, f.key)
				keys[k] = f
				if f.ignored != "" || mappingHas(n, f.key) {
					continue
				}
				switch {
				case f.key == "chain":
					n.Content = append(n.Content, strNode(f.key), stepsNode())
				case shape[k] == shapeMapping:
					n.Content = append(n.Content, strNode(f.key), mappingNode())
				case shape[k] == shapeList:
					n.Content = append(n.Content, strNode(f.key), &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{mappingNode()}})
				case shape[k] == shapeNames:
					n.Content = append(n.Content, strNode(f.key), mappingNode(strNode("*"), mappingNode()))
				}
			}
		}
		decode(d, "", mappingNode())
		grew := false
		for k, f := range keys {
			found := map[int]string{shapeMapping: k, shapeList: k + "[]", shapeNames: k + ".*"}
			if f.key == "chain" || shape[k] == shapeLeaf || visited[found[shape[k]]] {
				continue
			}
			shape[k]++
			grew = true
		}
		if !grew {
			return keys, named
		}
	}
	t.Fatal("the walk of the decoder's keys does not settle")
	return nil, nil
}

func mappingHas(n *yaml.Node, key string) bool {
	for _, e := range mappingKeys(n) {
		if e.k.Value == key {
			return true
		}
	}
	return false
}

// configDocument is what the tests read from docs/config.md.
type configDocument struct {
	keys     map[Kind]map[string]docRow // the rows of each file's tables, by key
	examples map[Kind][]docExample      // the YAML examples of each file's section
	scripts  map[string]docRow          // the rows of the script options tables, by "filters/name"
}

// docRow is a table row and where it is.
type docRow struct {
	line  int
	cells []string
}

// docExample is a YAML block and the line of its first line.
type docExample struct {
	line int
	src  string
}

var (
	codeSpan     = regexp.MustCompile("`([^`]+)`")
	scriptOption = regexp.MustCompile("`([^`]+)`( \\(required\\))?")
	// The sections of docs/config.md the tests read.
	fileSections   = map[string]Kind{"## router.yaml": KindRouter, "## gateway.yaml": KindGateway, "## serve.yaml": KindServe}
	scriptSections = map[string]string{"### Filters": "filters", "### Routing policies": "policies", "### Matchers": "matchers"}
)

const scriptsSection = "## Options of the shipped Lua scripts"

func readConfigDoc(t *testing.T) *configDocument {
	t.Helper()
	data, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := &configDocument{keys: map[Kind]map[string]docRow{}, examples: map[Kind][]docExample{}, scripts: map[string]docRow{}}
	var kind Kind
	var inScripts bool
	var scriptDir string
	var block *docExample
	for i, l := range strings.Split(string(data), "\n") {
		line := i + 1
		switch {
		case block != nil && l == "```":
			doc.examples[kind] = append(doc.examples[kind], *block)
			block = nil
		case block != nil:
			block.src += l + "\n"
		case l == "```yaml" && kind != "":
			block = &docExample{line: line + 1}
		case strings.HasPrefix(l, "## "):
			kind, inScripts, scriptDir = fileSections[l], l == scriptsSection, ""
		case strings.HasPrefix(l, "### ") && inScripts:
			scriptDir = scriptSections[l]
		case strings.HasPrefix(l, "| `"):
			cells := strings.Split(strings.Trim(l, "|"), " | ")
			row := docRow{line, cells}
			for _, m := range codeSpan.FindAllStringSubmatch(cells[0], -1) {
				switch {
				case kind != "":
					if doc.keys[kind] == nil {
						doc.keys[kind] = map[string]docRow{}
					}
					if prev, dup := doc.keys[kind][m[1]]; dup {
						t.Errorf("%s:%d: %s is documented at line %d already", configDoc, line, m[1], prev.line)
					}
					doc.keys[kind][m[1]] = row
				case scriptDir != "":
					doc.scripts[scriptDir+"/"+m[1]] = row
				}
			}
		}
	}
	if len(doc.keys) != 3 || len(doc.scripts) == 0 {
		t.Fatalf("%s: found tables for %d kinds of file and %d scripts; the sections are %v and %q", configDoc, len(doc.keys), len(doc.scripts),
			slices.Sorted(maps.Keys(fileSections)), scriptsSection)
	}
	return doc
}

// walkedKeys walks the keys of each kind of file. A serve file's are only its sections:
// the test checks that those hold the keys of router.yaml and gateway.yaml.
func walkedKeys(t *testing.T) (map[Kind]map[string]field, map[Kind]map[string]bool) {
	t.Helper()
	keys, named := map[Kind]map[string]field{}, map[Kind]map[string]bool{}
	for _, k := range kinds {
		keys[k.kind], named[k.kind] = declaredKeys(t, k.decode)
	}
	own := map[string]field{}
	for p, f := range keys[KindServe] {
		section, inner, nested := strings.Cut(p, ".")
		if !nested {
			own[p] = f
		} else if _, ok := keys[Kind(section)][inner]; !ok {
			t.Errorf("serve file key %s is not the %s.yaml key %s", p, section, inner)
		}
	}
	for _, section := range []Kind{KindRouter, KindGateway} {
		for p := range keys[section] {
			if _, ok := keys[KindServe][string(section)+"."+p]; !ok {
				t.Errorf("%s.yaml key %s is not a serve file key under %s:", section, p, section)
			}
		}
	}
	keys[KindServe] = own
	return keys, named
}

// TestConfigReferenceKeys checks that docs/config.md documents every key and nothing else,
// with the warning of each ignored key, and required keys as such.
func TestConfigReferenceKeys(t *testing.T) {
	doc := readConfigDoc(t)
	walked, _ := walkedKeys(t)
	for _, k := range kinds {
		keys, rows := walked[k.kind], doc.keys[k.kind]
		for _, p := range slices.Sorted(maps.Keys(keys)) {
			f, row := keys[p], rows[p]
			text := strings.Join(row.cells, "|")
			switch {
			case row.line == 0:
				t.Errorf("%s: the %s.yaml key %s is not documented (add a row for it)", configDoc, k.kind, p)
			case f.ignored != "" && !strings.Contains(text, f.ignored):
				t.Errorf("%s:%d: %s is accepted with the warning %q, which its row does not quote", configDoc, row.line, p, f.ignored)
			case f.required && !strings.Contains(text, "required"):
				t.Errorf("%s:%d: %s is required, which its row does not say", configDoc, row.line, p)
			}
		}
		for p, row := range rows {
			if _, ok := keys[p]; !ok {
				t.Errorf("%s:%d: %s is not a key of %s.yaml", configDoc, row.line, p, k.kind)
			}
		}
	}
}

// TestConfigReferenceExamples loads the YAML examples of each file's section as one file
// (lists of the top level may be split between examples) and checks that they load
// without an error or a warning and set every key that has an effect.
func TestConfigReferenceExamples(t *testing.T) {
	doc := readConfigDoc(t)
	walked, named := walkedKeys(t)
	dir := t.TempDir()
	// The examples name webhook.key as a webhook's secret_file, next to the file.
	if err := os.WriteFile(filepath.Join(dir, "webhook.key"), []byte("a secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range kinds {
		root := combineExamples(t, doc.examples[k.kind])
		nm := newNamer(named[k.kind])
		set := map[string]bool{}
		d := newDecoder(filepath.Join(dir, string(k.kind)+".yaml"))
		d.visit = func(p path, n *yaml.Node, fs []field) {
			for _, e := range mappingKeys(n) {
				set[nm.key(p, n, e.k.Value)] = true
			}
		}
		k.decode(d, "", root)
		d.checkListeners()
		for _, pr := range sortProblems(append(d.errs, d.warns...)) {
			t.Errorf("%s:%d:%d: %s example: %s", configDoc, pr.Pos.Line, pr.Pos.Column, k.kind, pr.Msg)
		}
		for _, p := range slices.Sorted(maps.Keys(walked[k.kind])) {
			// Keys that are ignored, or documented as having no effect, want no example.
			row := doc.keys[k.kind][p]
			if walked[k.kind][p].ignored == "" && !strings.Contains(strings.Join(row.cells, "|"), "No effect") && !set[p] {
				t.Errorf("%s: no example in the %s.yaml section sets %s", configDoc, k.kind, p)
			}
		}
	}
}

// combineExamples reads YAML blocks as one mapping, with the lines of docs/config.md; a
// top-level key in several blocks must be a list in each, and the lists are joined.
func combineExamples(t *testing.T, blocks []docExample) *yaml.Node {
	t.Helper()
	root := mappingNode()
	at := map[string]*yaml.Node{}
	for _, b := range blocks {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(b.src), &doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			t.Errorf("%s:%d: the example is not a YAML mapping: %v", configDoc, b.line, err)
			continue
		}
		shiftLines(&doc, b.line-1, map[*yaml.Node]bool{})
		m := doc.Content[0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			switch prev := at[k.Value]; {
			case prev == nil:
				at[k.Value] = v
				root.Content = append(root.Content, k, v)
			case prev.Kind == yaml.SequenceNode && v.Kind == yaml.SequenceNode:
				prev.Content = append(prev.Content, v.Content...)
			default:
				t.Errorf("%s:%d: %s is in an earlier example too; only lists may be split between examples", configDoc, k.Line, k.Value)
			}
		}
	}
	return root
}

func shiftLines(n *yaml.Node, by int, done map[*yaml.Node]bool) {
	if done[n] {
		return
	}
	done[n] = true
	n.Line += by
	for _, c := range n.Content {
		shiftLines(c, by, done)
	}
}

// TestConfigReferenceScripts checks the options tables of docs/config.md against the
// options each shipped script reads, and which of them it needs.
func TestConfigReferenceScripts(t *testing.T) {
	doc := readConfigDoc(t)
	kindOf := map[string]lint.Kind{"filters": lint.Filter, "policies": lint.Policy, "matchers": lint.Matcher}
	shipped := map[string]bool{}
	err := fs.WalkDir(scripts.FS, ".", func(file string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || filepath.Ext(file) != ".lua" {
			return err
		}
		dir, base := filepath.Split(file)
		name := filepath.Clean(dir) + "/" + strings.TrimSuffix(base, ".lua")
		shipped[name] = true
		src, err := fs.ReadFile(scripts.FS, file)
		if err != nil {
			return err
		}
		info, _ := lint.Analyze(file, src, kindOf[filepath.Clean(dir)], nil)
		if info.OptionsDynamic {
			t.Errorf("scripts/%s reads options the analyzer cannot list", file)
		}
		row, ok := doc.scripts[name]
		if !ok {
			t.Errorf("%s: the shipped script scripts/%s is not in the options tables", configDoc, file)
			return nil
		}
		// Options by name, and whether they are required: a filter or policy needs those it
		// reads without a default (koukan check holds steps to that). Matchers are not
		// checked so, and may need one of several options: only their names are compared.
		matcher := kindOf[filepath.Clean(dir)] == lint.Matcher
		want := map[string]bool{}
		for opt, use := range info.Options {
			want[opt] = !use.Guarded && !matcher
		}
		got := map[string]bool{}
		if len(row.cells) > 1 {
			for _, m := range scriptOption.FindAllStringSubmatch(row.cells[1], -1) {
				got[m[1]] = m[2] != "" && !matcher
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s:%d: scripts/%s options: the table says %v, the script reads %v (true: required)", configDoc, row.line, file, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, row := range doc.scripts {
		if !shipped[name] {
			t.Errorf("%s:%d: %s is not a shipped script", configDoc, row.line, name)
		}
	}
}
