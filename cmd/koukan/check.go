package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/koukan/koukan/config"
)

var checkCmd = &command{
	name:    "check",
	summary: "lint configs (and, once the Lua runtime lands, scripts): file:line:col per finding",
	usage:   "PATH...",
	help: `Checks router, gateway and all-in-one config files with the same validation the servers
run at startup and prints one "file:line:col: message" line per finding. A directory is
searched for *.yaml and *.yml files. Exit status: 0 clean, 1 errors found, 2 usage error
or a file check cannot handle yet (Lua scripts: the Lua runtime is being built).`,
	flags: func(fs *flag.FlagSet, out *output) func() int {
		strict := fs.Bool("strict", false, "treat warnings (such as keys the reference ignored) as errors")
		return func() int {
			if fs.NArg() == 0 {
				fmt.Fprintln(out.stderr, "koukan check: name at least one config file or directory")
				return 2
			}
			return out.check(fs.Args(), *strict)
		}
	},
}

func (o *output) check(paths []string, strict bool) int {
	status := 0
	worse := func(s int) { status = max(status, s) }
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			switch ext := strings.ToLower(filepath.Ext(path)); {
			case ext == ".yaml" || ext == ".yml":
				worse(o.checkConfig(path, strict))
			case ext == ".lua":
				fmt.Fprintf(o.stderr, "%s: not checked: Lua linting is not built yet\n", path)
				worse(2)
			case path == p:
				fmt.Fprintf(o.stderr, "%s: not a config (.yaml, .yml) or script (.lua)\n", path)
				worse(2)
			}
			return nil
		})
		if err != nil {
			fmt.Fprintf(o.stderr, "koukan check: %v\n", err)
			worse(2)
		}
	}
	return status
}

// checkConfig prints the findings for one config file and returns its exit status.
func (o *output) checkConfig(path string, strict bool) int {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(o.stderr, "%s: %v\n", path, err)
		return 1
	}
	warns, err := config.Check(config.DetectKind(data), path, data)
	for _, w := range warns {
		fmt.Fprintf(o.stdout, "%s: warning: %s\n", w.Pos, w.Msg)
	}
	var problems config.Errors
	if errors.As(err, &problems) {
		for _, p := range problems {
			fmt.Fprintln(o.stdout, p)
		}
		return 1
	}
	if err != nil {
		fmt.Fprintf(o.stdout, "%s: %v\n", path, err)
		return 1
	}
	if strict && len(warns) > 0 {
		return 1
	}
	return 0
}
