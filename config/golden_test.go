package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected messages in testdata/bad/*.err")

// TestBadConfigs loads each testdata/bad/<kind>-<case>.yaml with the loader its kind names
// and compares the errors with <kind>-<case>.err.
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	loaders := map[string]func(string) error{
		"router":  func(p string) error { _, _, err := LoadRouter(p); return err },
		"gateway": func(p string) error { _, _, err := LoadGateway(p); return err },
		"serve":   func(p string) error { _, _, err := LoadServe(p); return err },
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			kind, _, _ := strings.Cut(name, "-")
			load, ok := loaders[kind]
			if !ok {
				t.Fatalf("%s: the name must start with router-, gateway- or serve-", file)
			}
			err := load(file)
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("got %v, want config.Errors", err)
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}
