package luabind

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// debounce is how long Watch waits after a change for more: an editor's save, a git
// checkout or a ConfigMap update is a burst of events.
const debounce = 100 * time.Millisecond

// Watch reloads the scripts when a file in dirs (script directories, each with filters/,
// policies/ and matchers/) changes, until ctx ends. It watches directories rather than
// files, since editors save by renaming a new file over the old, and Kubernetes swaps a
// ConfigMap by replacing a symlink. With poll > 0 it also rescans that often, for file
// systems that send no events. A reload that fails keeps the running version; Reload
// records and logs why.
func (rt *Runtime) Watch(ctx context.Context, dirs []string, poll time.Duration) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching scripts: %w", err)
	}
	defer w.Close()
	rewatch := func() {
		for _, d := range dirs {
			for _, sub := range []string{"", "filters", "policies", "matchers"} {
				// A directory that does not exist yet is watched from its parent.
				_ = w.Add(filepath.Join(d, sub))
			}
		}
	}
	rewatch()
	var tick <-chan time.Time
	if poll > 0 {
		t := time.NewTicker(poll)
		defer t.Stop()
		tick = t.C
	}
	last := fingerprint(dirs)
	var settle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-w.Errors:
			rt.log.Warn("watching scripts", "err", err)
		case <-w.Events:
			settle = time.After(debounce)
		case <-tick:
			if p := fingerprint(dirs); p != last {
				settle = time.After(0)
			}
		case <-settle:
			settle = nil
			rewatch()
			last = fingerprint(dirs)
			rt.reloadLogged("files changed")
		}
	}
}

// reloadLogged reloads and logs the outcome.
func (rt *Runtime) reloadLogged(why string) {
	before := rt.Status().Hash
	if err := rt.Reload(); err != nil {
		rt.log.Error("scripts not reloaded; the running version stays", "why", why, "errors", err.Error())
		return
	}
	if st := rt.Status(); st.Hash != before {
		rt.log.Info("scripts reloaded", "why", why, "version", st.Hash, "scripts", len(st.Scripts))
	}
}

// ReloadNow is a forced reload (SIGHUP), logged like one after a change.
func (rt *Runtime) ReloadNow() { rt.reloadLogged("reload requested") }

// fingerprint sums the names, sizes and modification times of the scripts in dirs,
// following symlinks as a ConfigMap mount has them.
func fingerprint(dirs []string) uint64 {
	h := fnv.New64a()
	for _, d := range dirs {
		for _, sub := range []string{"filters", "policies", "matchers"} {
			entries, _ := os.ReadDir(filepath.Join(d, sub))
			for _, e := range entries {
				p := filepath.Join(d, sub, e.Name())
				if fi, err := os.Stat(p); err == nil {
					fmt.Fprintf(h, "%s %d %d\n", p, fi.Size(), fi.ModTime().UnixNano())
				}
			}
		}
	}
	return h.Sum64()
}
