package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koukan/koukan/engine/httpauth"
)

// koukan apikey new prints a key and the line that lets it in; the line parses as an
// api_keys_file and names the key's hash, never the key.
func TestAPIKeyNew(t *testing.T) {
	code, out, _ := runCapture("apikey", "new", "--sender", "app", "--trusted")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "koukan_") {
		t.Fatalf("exit %d, output %q", code, out)
	}
	key, line := lines[0], lines[1]
	if want := "sender app " + httpauth.Credential(key) + " trusted"; line != want {
		t.Errorf("line %q, want %q", line, want)
	}
	if _, err := httpauth.ParseKeys("keys", []byte(line)); err != nil {
		t.Error(err)
	}

	keyFile := filepath.Join(t.TempDir(), "ops.key")
	code, out, _ = runCapture("apikey", "--admin", "ops", "new", "--key-out", keyFile)
	saved, err := os.ReadFile(keyFile)
	if err != nil || code != 0 {
		t.Fatalf("--key-out: exit %d, %v", code, err)
	}
	if want := "admin ops " + httpauth.Credential(strings.TrimSpace(string(saved))) + "\n"; out != want {
		t.Errorf("--key-out printed %q, want %q", out, want)
	}
	if fi, _ := os.Stat(keyFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("the key file's mode is %v", fi.Mode())
	}
	if code, _, errOut := runCapture("apikey", "new", "--admin", "ops", "--key-out", keyFile); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("overwriting a key file: exit %d %q", code, errOut)
	}

	for _, args := range [][]string{
		{"apikey"}, {"apikey", "old"}, {"apikey", "new"}, {"apikey", "new", "--sender", "a", "--admin", "b"},
		{"apikey", "new", "--sender", "a/b"}, {"apikey", "new", "--sender", "a", "more"},
	} {
		if code, out, errOut := runCapture(args...); code != 2 || out != "" || errOut == "" {
			t.Errorf("%q: exit %d, %q %q", args, code, out, errOut)
		}
	}
}
