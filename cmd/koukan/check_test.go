package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of the check suite")

// The check suite: each directory under testdata/check is a bad script or config with the
// findings `koukan check` must print for it (want.txt, paths relative to the case), and
// exit status 1.
func TestCheckGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/check/*")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, dir := range cases {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			code, out, errOut := runCapture("check", dir)
			got := strings.ReplaceAll(out, dir+string(filepath.Separator), "")
			want := filepath.Join(dir, "want.txt")
			if *update {
				os.WriteFile(want, []byte(got), 0o644)
			}
			wantText, err := os.ReadFile(want)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(wantText) {
				t.Errorf("findings:\n%s\nwant:\n%s", got, wantText)
			}
			if code != 1 || errOut != "" {
				t.Errorf("exit %d, stderr %q", code, errOut)
			}
		})
	}
}

func TestCheckJSON(t *testing.T) {
	code, out, _ := runCapture("check", "--format", "json", "testdata/check/unknown_hook")
	var fs []finding
	if err := json.Unmarshal([]byte(out), &fs); err != nil || code != 1 || len(fs) != 1 {
		t.Fatalf("exit %d, %v: %s", code, err, out)
	}
	if f := fs[0]; f.Line != 2 || f.Col != 12 || f.Severity != "error" || !strings.HasPrefix(f.Message, `unknown hook "rpct"`) ||
		!strings.HasSuffix(f.File, "unknown_hook/scripts/filters/x.lua") {
		t.Errorf("finding %+v", f)
	}
}
