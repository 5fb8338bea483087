package httpauth

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// KeySource gives the keys in force for each request: a fixed set (*Keys) or a file kept
// up to date (*KeyFile).
type KeySource interface {
	Current() *Keys
}

// Current makes a fixed set of keys a KeySource.
func (k *Keys) Current() *Keys { return k }

// KeyFile is an api_keys_file kept in force as it changes, so that a key is added, revoked
// or rotated without a restart: Watch re-reads it when it changes, Reload when asked
// (SIGHUP). A version that does not read (a typo) leaves the keys in force as they were,
// and the error says file:line:column.
type KeyFile struct {
	path string
	log  *slog.Logger
	keys atomic.Pointer[Keys]

	mu   sync.Mutex // serializes reloads; guards data
	data []byte     // the file as last loaded
}

// OpenKeyFile reads path; the keys must read at startup.
func OpenKeyFile(path string, log *slog.Logger) (*KeyFile, error) {
	if log == nil {
		log = slog.Default()
	}
	f := &KeyFile{path: path, log: log}
	if _, err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Current is the keys in force.
func (f *KeyFile) Current() *Keys { return f.keys.Load() }

// Reload reads the file again and puts it in force if it changed and reads; changed says
// whether it did. On error the keys in force stay.
func (f *KeyFile) Reload() (changed bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := os.ReadFile(f.path)
	if err != nil {
		return false, fmt.Errorf("api keys: %w", err)
	}
	if f.keys.Load() != nil && bytes.Equal(data, f.data) {
		return false, nil
	}
	k, err := ParseKeys(f.path, data)
	if err != nil {
		return false, err
	}
	f.keys.Store(k)
	f.data = data
	return true, nil
}

// ReloadLogged is Reload with its outcome logged (never a key: only counts and errors).
func (f *KeyFile) ReloadLogged(why string) {
	changed, err := f.Reload()
	switch {
	case err != nil:
		f.log.Error("api keys not reloaded; the keys in force stay", "file", f.path, "why", why, "errors", err.Error())
	case changed:
		f.log.Info("api keys reloaded", "file", f.path, "why", why, "entries", len(f.Current().entries))
	}
}

// keyFileSettle is how long Watch waits after a change for more: an editor's save or a
// Kubernetes Secret update is a burst of events.
const keyFileSettle = 100 * time.Millisecond

// Watch reloads the file when its directory changes, until ctx ends. It watches the
// directory, not the file: editors save by renaming a new file over the old one, and
// Kubernetes updates a mounted Secret or ConfigMap by swapping a symlink next to it.
func (f *KeyFile) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching api keys: %w", err)
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(f.path)); err != nil {
		return fmt.Errorf("watching api keys: %w", err)
	}
	var settle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-w.Errors:
			f.log.Warn("watching api keys", "file", f.path, "err", err)
		case <-w.Events:
			settle = time.After(keyFileSettle)
		case <-settle:
			settle = nil
			f.ReloadLogged("file changed")
		}
	}
}
