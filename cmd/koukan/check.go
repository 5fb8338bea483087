package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/httpauth"
	"github.com/koukan/koukan/luabind"
	"github.com/koukan/koukan/luabind/lint"
)

var checkCmd = &command{
	name:    "check",
	summary: "lint configs and Lua scripts: file:line:col per finding",
	usage:   "[--strict] [--format text|json] PATH...",
	help: `Checks router, gateway and all-in-one config files and Lua scripts with the same
compile and validation path the servers run, and prints one "file:line:col: message" line
per finding.

A directory is searched for configs (*.yaml, *.yml) and for script directories (those
with filters/, policies/ or matchers/ in them); a .lua file stands for its script
directory. Scripts are checked for syntax errors, undefined globals, unknown hook names,
wrong return shapes, then smoke-run against a sample transaction in the sandbox. A router
config is checked together with the scripts it would load (scripts.paths): chain steps that
name no script, options a script never reads, and options a script needs that the step
does not set; each configured step is smoke-run with its options.

Exit status: 0 clean (warnings allowed unless --strict), 1 errors found, 2 usage error.`,
	flags: func(fs *flag.FlagSet, out *output) func() int {
		strict := fs.Bool("strict", false, "treat warnings (such as keys the reference ignored) as errors")
		format := fs.String("format", "text", "output `format`: text, or json for editors and CI")
		return func() int {
			if fs.NArg() == 0 {
				fmt.Fprintln(out.stderr, "koukan check: name at least one config file, script or directory")
				return 2
			}
			if *format != "text" && *format != "json" {
				fmt.Fprintf(out.stderr, "koukan check: unknown format %q (text or json)\n", *format)
				return 2
			}
			return out.check(fs.Args(), *strict, *format)
		}
	},
}

// finding is one line of check output.
type finding struct {
	File     string `json:"file"`
	Line     int    `json:"line,omitempty"`
	Col      int    `json:"col,omitempty"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

func (f finding) String() string {
	pos := config.Position{File: f.File, Line: f.Line, Column: f.Col}.String()
	if f.Severity == "warning" {
		return pos + ": warning: " + f.Message
	}
	return pos + ": " + f.Message
}

type checker struct {
	findings []finding
	usage    bool // a usage error: exit 2
}

func (c *checker) add(file string, line, col int, warning bool, msg string) {
	sev := "error"
	if warning {
		sev = "warning"
	}
	c.findings = append(c.findings, finding{file, line, col, sev, msg})
}

func (c *checker) addLint(fs luabind.Findings) {
	for _, f := range fs {
		c.add(f.File, f.Line, f.Col, f.Severity == lint.Warning, strings.TrimPrefix(f.Message, "warning: "))
	}
}

func (o *output) check(paths []string, strict bool, format string) int {
	c := &checker{}
	var configs, scriptDirs []string
	for _, p := range paths {
		configs, scriptDirs = c.collect(p, configs, scriptDirs, o)
	}
	// Scripts a config loads are checked with the config's options; the others alone.
	checked := map[string]bool{}
	for _, path := range configs {
		for _, dir := range c.checkConfig(path) {
			checked[filepath.Clean(dir)] = true
		}
	}
	for _, dir := range scriptDirs {
		if checked[filepath.Clean(dir)] {
			continue
		}
		lib, fs := luabind.Load([]luabind.Source{{Name: dir, FS: os.DirFS(dir)}})
		c.addLint(fs)
		if lib != nil {
			c.addLint(luabind.Smoke(lib))
		}
	}
	// A script reached both directly and through a config is reported once.
	slices.SortStableFunc(c.findings, func(a, b finding) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col), cmp.Compare(a.Message, b.Message))
	})
	c.findings = slices.Compact(c.findings)
	status := 0
	for _, f := range c.findings {
		if f.Severity == "error" || strict {
			status = 1
		}
	}
	if format == "json" {
		enc := json.NewEncoder(o.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(append([]finding{}, c.findings...))
	} else {
		for _, f := range c.findings {
			fmt.Fprintln(o.stdout, f)
		}
	}
	if c.usage {
		return 2
	}
	return status
}

// scriptKinds are the directories that make their parent a script directory.
var scriptKinds = []string{"filters", "policies", "matchers"}

// collect sorts what path holds into config files and script directories.
func (c *checker) collect(path string, configs, scriptDirs []string, o *output) ([]string, []string) {
	addDir := func(dir string) {
		if !slices.Contains(scriptDirs, dir) {
			scriptDirs = append(scriptDirs, dir)
		}
	}
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if slices.Contains(scriptKinds, d.Name()) {
				addDir(filepath.Dir(p))
				return fs.SkipDir
			}
			return nil
		}
		switch ext := strings.ToLower(filepath.Ext(p)); {
		case ext == ".yaml" || ext == ".yml":
			configs = append(configs, p)
		case ext == ".lua" && slices.Contains(scriptKinds, filepath.Base(filepath.Dir(p))):
			addDir(filepath.Dir(filepath.Dir(p)))
		case ext == ".lua":
			c.add(p, 0, 0, false, "a script must be in a filters/, policies/ or matchers/ directory")
		case p == path:
			fmt.Fprintf(o.stderr, "%s: not a config (.yaml, .yml) or script (.lua)\n", p)
			c.usage = true
		}
		return nil
	})
	if err != nil {
		fmt.Fprintf(o.stderr, "koukan check: %v\n", err)
		c.usage = true
	}
	return configs, scriptDirs
}

// checkConfig checks one config file and, for a router, the scripts it would load, whose
// directories it returns.
// checkKeyFiles reads the api_keys_file of each REST listener as the server would at
// startup (the path as written, from the working directory), and lists its problems at
// their lines.
func (c *checker) checkKeyFiles(path string, s *config.Serve) {
	var files []string
	if s.Router != nil && s.Router.RestListener.APIKeysFile != "" {
		files = append(files, s.Router.RestListener.APIKeysFile)
	}
	if s.Gateway != nil && s.Gateway.RestListener != nil && s.Gateway.RestListener.APIKeysFile != "" {
		files = append(files, s.Gateway.RestListener.APIKeysFile)
	}
	for _, f := range files {
		_, err := httpauth.LoadKeys(f)
		var joined interface{ Unwrap() []error }
		errs := []error{err}
		if errors.As(err, &joined) {
			errs = joined.Unwrap()
		}
		for _, e := range errs {
			var ke *httpauth.KeyError
			switch {
			case e == nil:
			case errors.As(e, &ke):
				c.add(ke.File, ke.Line, ke.Col, false, ke.Msg)
			default:
				c.add(path, 0, 0, false, e.Error())
			}
		}
	}
}

func (c *checker) checkConfig(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		c.add(path, 0, 0, false, err.Error())
		return nil
	}
	parsed, warns, err := config.Check(config.DetectKind(data), path, data)
	for _, w := range warns {
		c.add(w.Pos.File, w.Pos.Line, w.Pos.Column, true, w.Msg)
	}
	var problems config.Errors
	switch {
	case errors.As(err, &problems):
		for _, p := range problems {
			c.add(p.Pos.File, p.Pos.Line, p.Pos.Column, false, p.Msg)
		}
		return nil
	case err != nil:
		c.add(path, 0, 0, false, err.Error())
		return nil
	case parsed == nil:
		return nil
	}
	c.checkKeyFiles(path, parsed)
	cfg := parsed.Router
	if cfg == nil {
		return nil
	}
	lib, fs := luabind.Load(scriptSources(cfg.Scripts))
	c.addLint(fs)
	if lib != nil {
		c.addLint(luabind.CheckConfig(cfg, lib))
	}
	return cfg.Scripts.Paths
}
