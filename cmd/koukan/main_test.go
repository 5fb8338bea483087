package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCapture(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelpAndUnknownCommands(t *testing.T) {
	if code, out, _ := runCapture("--help"); code != 0 || !strings.Contains(out, "serve") || !strings.Contains(out, "check") {
		t.Errorf("--help: %d %q", code, out)
	}
	for _, c := range commands {
		code, out, _ := runCapture(c.name, "--help")
		if code != 0 || !strings.Contains(out, "Usage: koukan "+c.name) {
			t.Errorf("%s --help: %d %q", c.name, code, out)
		}
	}
	if code, _, errOut := runCapture("frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
	if code, _, _ := runCapture(); code != 2 {
		t.Errorf("no command: exit %d", code)
	}
}

func TestVersion(t *testing.T) {
	if code, out, _ := runCapture("version"); code != 0 || !strings.HasPrefix(out, "koukan ") {
		t.Errorf("version: %d %q", code, out)
	}
}

func TestCheck(t *testing.T) {
	code, out, _ := runCapture("check", "../../config/testdata/good")
	if code != 0 || !strings.Contains(out, "warning:") {
		t.Errorf("check good configs: exit %d\n%s", code, out)
	}
	if code, _, _ := runCapture("check", "--strict", "../../config/testdata/good/router.yaml"); code != 1 {
		t.Errorf("--strict with warnings: exit %d, want 1", code)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "router.yaml")
	os.WriteFile(bad, []byte("rest_listener:\n  addr: [127.0.0.1, 8000]\n  session_uri: http://localhost:8000\nstorage:\n  url: mysql://x\n"), 0o644)
	code, out, _ = runCapture("check", bad)
	if code != 1 || !strings.Contains(out, bad+":5:8: storage.url:") {
		t.Errorf("check bad config: exit %d\n%s", code, out)
	}
	lua := filepath.Join(dir, "x.lua")
	os.WriteFile(lua, []byte("return {}"), 0o644)
	if code, out, _ := runCapture("check", lua); code != 1 || !strings.Contains(out, "filters/, policies/ or matchers/") {
		t.Errorf("check a script outside a script directory: exit %d %q", code, out)
	}
	os.Mkdir(filepath.Join(dir, "filters"), 0o755)
	os.Rename(lua, filepath.Join(dir, "filters", "x.lua"))
	if code, out, _ := runCapture("check", filepath.Join(dir, "filters", "x.lua")); code != 0 || out != "" {
		t.Errorf("check a clean script: exit %d %q", code, out)
	}
	if code, _, _ := runCapture("check"); code != 2 {
		t.Errorf("check without paths: exit %d", code)
	}
	if code, _, _ := runCapture("check", filepath.Join(dir, "missing.yaml")); code != 2 {
		t.Errorf("check missing file: exit %d", code)
	}
}

func TestRouterBadConfig(t *testing.T) {
	code, _, errOut := runCapture("router", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 1 || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("router with a missing config: exit %d %q", code, errOut)
	}
}
