package luabind

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/koukan/koukan/luabind/lint"
	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// Source is a directory of scripts: filters/, policies/ and matchers/ under FS. Name is
// how its files are shown in messages: a directory path, or "builtin" for the scripts
// shipped in the binary.
type Source struct {
	Name string
	FS   fs.FS
}

// kindDirs maps each kind of script to its directory in a Source.
var kindDirs = map[lint.Kind]string{lint.Filter: "filters", lint.Policy: "policies", lint.Matcher: "matchers"}

// Script is one compiled script.
type Script struct {
	Name string // the file name without .lua: what configs refer to
	Kind lint.Kind
	File string // where it came from, as messages show it
	Hash string // sha256 of the source
	Info lint.Info
	// Source is kept for the smoke run's and the check's messages.
	Source []byte
	proto  *lua.FunctionProto
}

type scriptKey struct {
	kind lint.Kind
	name string
}

// Library is every script of the search path, compiled and linted: one version of the
// scripts, swapped as a whole on reload.
type Library struct {
	scripts map[scriptKey]*Script
	// Hash identifies the version: it changes when any script does.
	Hash string
}

// Lookup finds the script of a kind by name, or nil.
func (l *Library) Lookup(kind lint.Kind, name string) *Script {
	return l.scripts[scriptKey{kind, name}]
}

// Scripts lists the scripts, by kind and name.
func (l *Library) Scripts() []*Script {
	out := make([]*Script, 0, len(l.scripts))
	for _, s := range l.scripts {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Findings are the problems found in scripts (or in a config's use of them), each placed
// at file:line:col. As an error it lists them all.
type Findings []lint.Finding

func (fs Findings) Error() string {
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(f.String())
	}
	return b.String()
}

// Errors are the findings of severity Error.
func (fs Findings) Errors() Findings {
	var out Findings
	for _, f := range fs {
		if f.Severity == lint.Error {
			out = append(out, f)
		}
	}
	return out
}

// Load reads, lints and compiles every script of the sources. A name found in several
// sources is taken from the first: an operator's directory shadows the shipped scripts.
// It returns the library with all findings; the library is nil if any is an error.
func Load(sources []Source) (*Library, Findings) {
	lib := &Library{scripts: map[scriptKey]*Script{}}
	var findings Findings
	sum := sha256.New()
	for _, src := range sources {
		for _, kind := range []lint.Kind{lint.Filter, lint.Policy, lint.Matcher} {
			dir := kindDirs[kind]
			entries, err := fs.ReadDir(src.FS, dir)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				findings = append(findings, lint.Finding{File: path.Join(src.Name, dir), Line: 1, Col: 1, Message: fmt.Sprintf("cannot read the directory: %v", unwrapPath(err))})
				continue
			}
			for _, e := range entries {
				name, ok := strings.CutSuffix(e.Name(), ".lua")
				if !ok || e.IsDir() || strings.HasPrefix(name, ".") || lib.scripts[scriptKey{kind, name}] != nil {
					continue
				}
				file := path.Join(src.Name, dir, e.Name())
				data, err := fs.ReadFile(src.FS, path.Join(dir, e.Name()))
				if err != nil {
					findings = append(findings, lint.Finding{File: file, Line: 1, Col: 1, Message: fmt.Sprintf("cannot read the script: %v", unwrapPath(err))})
					continue
				}
				s, fs := compile(file, name, kind, data)
				findings = append(findings, fs...)
				if s != nil {
					lib.scripts[scriptKey{kind, name}] = s
					fmt.Fprintf(sum, "%d %s %s\n", kind, name, s.Hash)
				}
			}
		}
	}
	lib.Hash = hex.EncodeToString(sum.Sum(nil))[:16]
	if len(findings.Errors()) > 0 {
		return nil, findings
	}
	return lib, findings
}

// compile lints one script and compiles it to a function prototype, shared by every state
// that runs it.
func compile(file, name string, kind lint.Kind, src []byte) (*Script, Findings) {
	info, findings := lint.Analyze(file, src, kind, API())
	for _, f := range findings {
		if f.Severity == lint.Error {
			return nil, findings
		}
	}
	chunk, err := parse.Parse(bytes.NewReader(src), file)
	if err != nil {
		// The linter parses with the same parser and reports syntax errors itself.
		return nil, append(findings, lint.Finding{File: file, Line: 1, Col: 1, Message: "syntax error"})
	}
	proto, err := lua.Compile(chunk, file)
	if err != nil {
		return nil, append(findings, lint.Finding{File: file, Line: 1, Col: 1, Message: err.Error()})
	}
	h := sha256.Sum256(src)
	return &Script{Name: name, Kind: kind, File: file, Hash: hex.EncodeToString(h[:])[:16], Info: info, Source: src, proto: proto}, findings
}

// unwrapPath drops the operation and path from a file error: messages already name the file.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
