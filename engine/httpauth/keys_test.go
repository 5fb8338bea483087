package httpauth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseKeys(t *testing.T) {
	key, cred := NewKey()
	if !strings.HasPrefix(key, keyPrefix) || len(key) != len(keyPrefix)+43 || cred != Credential(key) {
		t.Fatalf("NewKey() = %q, %q", key, cred)
	}
	if other, _ := NewKey(); other == key {
		t.Fatal("two keys alike")
	}
	k, err := ParseKeys("keys", []byte("# who may call\n\nsender app "+cred+"   # the app\r\nadmin ops\tcn:ops.example.com trusted\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := k.byKey(key); c == nil || c.Name != "sender app" || !c.MayUse("app") || c.MayUse("other") || c.Admin() || c.Trusted() {
		t.Errorf("byKey = %+v", c)
	}
	if c := k.byKey(key + "x"); c != nil {
		t.Errorf("a wrong key gives %+v", c)
	}
	if c := k.byKey(cred); c != nil {
		t.Errorf("the hash as a key gives %+v", c)
	}
}

func TestParseKeysErrors(t *testing.T) {
	const sum = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	for _, c := range []struct{ file, want string }{
		{"", "keys: no keys: every request but health probes would be refused"},
		{"# nothing\n", "keys: no keys"},
		{"user app " + sum, "keys:1:1: a line starts with sender or admin, not \"user\""},
		{"sender app", "keys:1:1: want: sender|admin <name> sha256:<hex>|cn:<name> [trusted]"},
		{"\n  sender app sha256:abc", "keys:2:14: sha256: needs the 64 hex digits"},
		{"sender app " + sum[:20], "keys:1:12: sha256: needs the 64 hex digits"},
		{"sender app secret", "keys:1:12: a credential is sha256:<hex> or cn:<certificate name>, not \"secret\""},
		{"sender app cn:", "keys:1:12: a credential is sha256:<hex> or cn:<certificate name>"},
		{"sender a/b " + sum, "keys:1:8: \"a/b\" is not a sender name"},
		{"sender app " + sum + " trusted admin", "keys:1:92: unknown flag \"admin\" (the only one is trusted)"},
	} {
		_, err := ParseKeys("keys", []byte(c.file))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.file, err, c.want)
		}
	}
	// Every bad line is reported, not only the first.
	_, err := ParseKeys("keys", []byte("x\nsender app "+sum+"\ny\n"))
	if err == nil || !strings.Contains(err.Error(), "keys:1:1:") || !strings.Contains(err.Error(), "keys:3:1:") {
		t.Errorf("two bad lines: %v", err)
	}
	if _, err := LoadKeys(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "api keys:") {
		t.Errorf("a missing file: %v", err)
	}
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("sender app "+sum+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeys(path); err != nil {
		t.Error(err)
	}
}
