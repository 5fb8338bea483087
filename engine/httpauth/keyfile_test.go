package httpauth

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koukan/koukan/internal/syncbuf"
)

// replaceFile writes data next to path and renames it over path, as editors save.
func replaceFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// status is what the middleware in front of a 200 handler answers key for sender app.
func status(t *testing.T, srv *httptest.Server, key string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+"/senders/app/transactions", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// eventuallyStatus waits for key to get want, as the watcher picks a change up.
func eventuallyStatus(t *testing.T, srv *httptest.Server, key string, want int, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got := status(t, srv, key)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d, want %d", what, got, want)
		}
	}
}

// watched serves the API behind the key file at path, watched until the test ends; the
// watcher logs to log.
func watched(t *testing.T, path string, log io.Writer) *httptest.Server {
	t.Helper()
	f, err := OpenKeyFile(path, slog.New(slog.NewTextHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go f.Watch(ctx)
	srv := httptest.NewServer(Middleware(Options{Keys: f, TxSender: lookup, Log: slog.New(slog.DiscardHandler)})(http.HandlerFunc(api)))
	t.Cleanup(srv.Close)
	return srv
}

// A key file changed on disk is in force without a restart: a key added works, a key
// removed is refused; a version that does not read leaves the keys in force and says where.
func TestKeyFileFollowsTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "api_keys")
	oldKey, oldCred := NewKey()
	newKey, newCred := NewKey()
	replaceFile(t, path, "sender app "+oldCred+"\n")
	var log syncbuf.Buffer
	srv := watched(t, path, &log)
	if got := status(t, srv, oldKey); got != 200 {
		t.Fatalf("the key at startup: %d", got)
	}

	// Rotation: the new key added, then the old one removed.
	replaceFile(t, path, "sender app "+oldCred+"\nsender app "+newCred+"\n")
	eventuallyStatus(t, srv, newKey, 200, "a key added to the file")
	replaceFile(t, path, "sender app "+newCred+"\n")
	eventuallyStatus(t, srv, oldKey, 401, "a key removed from the file")

	// A typo: the keys in force stay, and the log names the line.
	replaceFile(t, path, "sender app "+newCred+"\nsender app sha256:nothex\n")
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(log.String(), "api keys not reloaded"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no log of the bad file:\n%s", log.String())
		}
	}
	if !strings.Contains(log.String(), path+":2:") {
		t.Errorf("the log does not say where the file is wrong:\n%s", log.String())
	}
	if got := status(t, srv, newKey); got != 200 {
		t.Errorf("a bad file revoked the keys in force: %d", got)
	}
}

// Kubernetes mounts a Secret as symlinks into a ..data directory and updates it by
// swapping the ..data symlink: the file's own name never changes.
func TestKeyFileFollowsASymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	oldKey, oldCred := NewKey()
	newKey, newCred := NewKey()
	for i, cred := range []string{oldCred, newCred} {
		v := filepath.Join(dir, "..v"+string(rune('1'+i)))
		if err := os.Mkdir(v, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(v, "api_keys"), []byte("sender app "+cred+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "api_keys")
	if err := os.Symlink(filepath.Join("..data", "api_keys"), path); err != nil {
		t.Fatal(err)
	}
	srv := watched(t, path, io.Discard)
	if got := status(t, srv, oldKey); got != 200 {
		t.Fatalf("the key at startup: %d", got)
	}
	// The swap: a new ..data symlink renamed over the old one.
	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	eventuallyStatus(t, srv, newKey, 200, "the key of the new version")
	eventuallyStatus(t, srv, oldKey, 401, "the key of the old version")
}
