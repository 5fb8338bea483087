package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func pemFile(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pkcs8(t *testing.T, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	rsaKey := testRSAKey(t)
	edKey := testEd25519Key()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	good := []struct {
		path string
		want crypto.Signer
	}{
		{pemFile(t, dir, "rsa1.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), rsaKey},
		{pemFile(t, dir, "rsa8.pem", "PRIVATE KEY", pkcs8(t, rsaKey)), rsaKey},
		{pemFile(t, dir, "ed.pem", "PRIVATE KEY", pkcs8(t, edKey)), edKey},
	}
	for _, tt := range good {
		k, err := LoadKey(tt.path)
		if err != nil {
			t.Errorf("LoadKey(%s): %v", tt.path, err)
			continue
		}
		if eq, ok := k.(interface{ Equal(crypto.PrivateKey) bool }); !ok || !eq.Equal(tt.want) {
			t.Errorf("LoadKey(%s) returned a different key", tt.path)
		}
	}

	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		path, wantErr string
	}{
		{filepath.Join(dir, "missing.pem"), "no such file"},
		{garbage, "no PEM data"},
		{pemFile(t, dir, "ec.pem", "PRIVATE KEY", pkcs8(t, ecKey)), "unsupported DKIM key type *ecdsa.PrivateKey"},
		{pemFile(t, dir, "cert.pem", "CERTIFICATE", []byte{1}), `unsupported PEM block "CERTIFICATE"`},
		{pemFile(t, dir, "broken.pem", "RSA PRIVATE KEY", []byte{1, 2, 3}), "broken.pem"},
	}
	for _, tt := range bad {
		if _, err := LoadKey(tt.path); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("LoadKey(%s) error = %v, want it to contain %q", tt.path, err, tt.wantErr)
		}
	}
}

func TestKeyCache(t *testing.T) {
	dir := t.TempDir()
	keyA := testEd25519Key()
	keyB := testRSAKey(t)
	path := pemFile(t, dir, "dkim.pem", "PRIVATE KEY", pkcs8(t, keyA))
	var c KeyCache

	k1, err := c.Load(path)
	if err != nil || !keyA.Equal(k1) {
		t.Fatalf("Load = %v, %v; want key A", k1, err)
	}
	// Rewrite the file with different content but the same size and
	// mtime: the cache must not notice, proving it does not re-read.
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	other := ed25519.NewKeyFromSeed([]byte("another seed, also 32 bytes long"))
	pemFile(t, dir, "dkim.pem", "PRIVATE KEY", pkcs8(t, other))
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if k, err := c.Load(path); err != nil || !keyA.Equal(k) {
		t.Fatalf("Load after unnoticeable change = %v, %v; want cached key A", k, err)
	}

	// Same size, new mtime: re-read.
	if err := os.Chtimes(path, fi.ModTime().Add(time.Second), fi.ModTime().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if k, err := c.Load(path); err != nil || !other.Equal(k) {
		t.Fatalf("Load after mtime change = %v, %v; want the new key", k, err)
	}

	// Rotation in place to a key of another type (and size).
	pemFile(t, dir, "dkim.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(keyB))
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if k, err := c.Load(path); err != nil || !keyB.Equal(k) {
		t.Fatalf("Load after rotation = %v, %v; want key B", k, err)
	}

	// A broken file is an error, not a stale key, and is not cached.
	if err := os.WriteFile(path, []byte("half-written"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Load(path); err == nil {
		t.Fatal("Load of broken file succeeded")
	}
	pemFile(t, dir, "dkim.pem", "PRIVATE KEY", pkcs8(t, keyA))
	if k, err := c.Load(path); err != nil || !keyA.Equal(k) {
		t.Fatalf("Load after fix = %v, %v; want key A", k, err)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Load(path); err == nil {
		t.Fatal("Load of removed file succeeded")
	}
}

func TestKeyCacheConcurrent(t *testing.T) {
	dir := t.TempDir()
	paths := []string{
		pemFile(t, dir, "a.pem", "PRIVATE KEY", pkcs8(t, testEd25519Key())),
		pemFile(t, dir, "b.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(testRSAKey(t))),
	}
	var c KeyCache
	done := make(chan error)
	for i := range 8 {
		go func() {
			var err error
			for range 20 {
				if _, err = c.Load(paths[i%2]); err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
