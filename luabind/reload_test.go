package luabind

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/chain/chaintest"
)

// save writes a file as editors do: a new file renamed over the old one.
func save(t *testing.T, path, src string) {
	t.Helper()
	tmp := path + ".tmp~"
	if err := os.WriteFile(tmp, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func stamp(version string) string {
	return fmt.Sprintf("local M = {}\nfunction M.data(tx, msg)\n  msg:prepend(\"X-Version\", %q)\nend\nreturn M\n", version)
}

// Scripts edited while transactions flow: none fails, the broken edit is never used, and
// each good edit takes effect within a second of its save.
func TestHotReloadUnderLoad(t *testing.T) {
	dir := scripts(t, map[string]string{"filters/stamp.lua": stamp("1")})
	rt := newRuntime(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rt.Watch(ctx, []string{dir}, 0)
	time.Sleep(50 * time.Millisecond) // the watch is set up

	const n = 1000
	var mu sync.Mutex
	seen := map[string]int{}
	var failures []string
	jobs := make(chan int)
	var wg sync.WaitGroup
	versionOf := regexp.MustCompile(`^X-Version: (\S+)\r\n`)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				s := step(t, rt, "stamp", nil)
				tr := txTo("a@example.com")
				up := &chaintest.Upstream{}
				err := chain.New(s, up).Update(ctx, tr, messageOf("Subject: x\r\n\r\nhi\r\n"))
				body := ""
				if len(up.Bodies) == 1 {
					body = string(up.Bodies[0])
				}
				mu.Lock()
				switch m := versionOf.FindStringSubmatch(body); {
				case err != nil || tr.DataResponse == nil || tr.DataResponse.Code != 250:
					failures = append(failures, fmt.Sprintf("%v %v", err, tr.DataResponse))
				case m == nil:
					failures = append(failures, "no version stamp: "+body)
				default:
					seen[m[1]]++
				}
				mu.Unlock()
			}
		}()
	}
	file := filepath.Join(dir, "filters", "stamp.lua")
	edits := []struct{ src, version string }{
		{stamp("2"), "2"},
		{"local M = {}\nfunction M.data(tx, msg)\n  msg:prepend(\"X-Version\", \"broken\"\nend\nreturn M\n", ""},
		{stamp("3"), "3"},
	}
	next := 0
	for i := range n {
		if i > 0 && i%250 == 0 && next < len(edits) {
			e := edits[next]
			next++
			before := rt.Status()
			saved := time.Now()
			save(t, file, e.src)
			for {
				st := rt.Status()
				if e.version == "" && st.LastAttempt.After(saved) {
					if st.LastError == "" || st.Hash != before.Hash {
						t.Fatalf("the broken edit was swapped in: %+v", st)
					}
					if !strings.Contains(st.LastError, "stamp.lua:4:1: syntax error") {
						t.Errorf("the reload error does not place the problem: %s", st.LastError)
					}
					break
				}
				if e.version != "" && st.Hash != before.Hash {
					if d := time.Since(saved); d > time.Second {
						t.Errorf("edit %d took effect after %v", next, d)
					}
					break
				}
				if time.Since(saved) > 5*time.Second {
					t.Fatalf("edit %d never took effect: %+v", next, st)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d transactions failed, e.g. %s", len(failures), failures[0])
	}
	if seen["broken"] > 0 || seen["1"] == 0 || seen["2"] == 0 || seen["3"] == 0 {
		t.Errorf("versions seen: %v", seen)
	}
	if total := seen["1"] + seen["2"] + seen["3"]; total != n {
		t.Errorf("%d of %d transactions stamped", total, n)
	}
}
