package auth

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
)

// A key renamed into place is picked up even when nothing but the file changed: the
// same size, the same modification time (a rotation within one tick of the file
// system's clock, or a tool that preserves times).
func TestKeyCacheRename(t *testing.T) {
	dir := t.TempDir()
	keyA := testEd25519Key()
	keyB := ed25519.NewKeyFromSeed([]byte("another seed, also 32 bytes long"))
	path := pemFile(t, dir, "dkim.pem", "PRIVATE KEY", pkcs8(t, keyA))
	var c KeyCache
	if k, err := c.Load(path); err != nil || !keyA.Equal(k) {
		t.Fatalf("Load = %v, %v; want key A", k, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	tmp := pemFile(t, dir, "new.pem", "PRIVATE KEY", pkcs8(t, keyB))
	if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "dkim.pem")); err != nil {
		t.Fatal(err)
	}
	if nfi, err := os.Stat(path); err != nil || nfi.Size() != fi.Size() || !nfi.ModTime().Equal(fi.ModTime()) {
		t.Fatalf("the test needs the same size and time: %v, %v", nfi, err)
	}
	if k, err := c.Load(path); err != nil || !keyB.Equal(k) {
		t.Fatalf("Load after the rename = %v, %v; want key B", k, err)
	}
}
