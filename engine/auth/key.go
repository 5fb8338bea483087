package auth

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// LoadKey reads a PEM private key file for DKIM signing: PKCS#1 RSA
// ("RSA PRIVATE KEY") or PKCS#8 RSA or Ed25519 ("PRIVATE KEY"), as
// openssl genrsa/genpkey write them.
func LoadKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

func parseKey(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM data")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("unsupported DKIM key type %T", key)
	}
	return nil, fmt.Errorf("unsupported PEM block %q, want \"RSA PRIVATE KEY\" or \"PRIVATE KEY\"", block.Type)
}

// KeyCache holds keys loaded from files so that signing does not parse a
// PEM file per message, while still picking up keys operators rotate in
// place: a file whose modification time or size changed is read again, and
// so is a path that now names another file (a key renamed into place, or a
// Kubernetes Secret's symlink swapped), even within one tick of the file
// system's clock.
// The zero value is ready to use and safe for concurrent use.
type KeyCache struct {
	mu   sync.Mutex
	keys map[string]cachedKey
}

type cachedKey struct {
	fi  os.FileInfo
	key crypto.Signer
}

// Load returns the key in the file at path, from the cache when the file
// looks unchanged. A file that fails to load is not cached, so a fixed file
// is picked up on the next call.
func (c *KeyCache) Load(path string) (crypto.Signer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	e, ok := c.keys[path]
	c.mu.Unlock()
	if ok && os.SameFile(e.fi, fi) && e.fi.ModTime().Equal(fi.ModTime()) && e.fi.Size() == fi.Size() {
		return e.key, nil
	}

	// Stat the opened file so the cache entry describes exactly the
	// content read, even if the file is replaced meanwhile.
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil {
		c.keys = make(map[string]cachedKey)
	}
	c.keys[path] = cachedKey{fi: fi, key: key}
	return key, nil
}
