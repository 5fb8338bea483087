package tests

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/koukan/koukan/engine/store/sqlite" // the sqlite driver, to check the database
)

// smallDisk mounts a tmpfs of size bytes on dir, or skips the test where mounting is not
// allowed (it needs root). The mount goes when the test ends.
func smallDisk(t *testing.T, dir string, size int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small file system (it needs root): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			// Lazily, if something still holds it: it goes when that does.
			exec.Command("umount", "-l", dir).Run()
			t.Logf("umount %s: %v %s", dir, err, out)
		}
	})
}

// fill writes a file into dir until its file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return path
		}
	}
}

// The disk under the router's SQLite database fills up under load: clients are told to
// come back later at once (REST 507 or 503 with a problem body, SMTP 451 4.3.x), nothing
// acknowledged is lost, the database stays sound, and once space returns the router takes
// mail again by itself. It prints the ledger and what it measured.
func TestFaultDiskFull(t *testing.T) {
	sink := startSink(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	smallDisk(t, data, 16<<20)
	p := startFaultPair(t, dir, "sqlite:///data/router.db", sink, 1, true)
	router, gw, url := p.router, p.gw, p.url

	l := &ledger{}
	stop := make(chan struct{})
	wait := steadyLoad(l, stop, p)
	time.Sleep(time.Second)
	full := time.Now()
	filler := fill(t, data)
	time.Sleep(3 * time.Second)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	var back time.Time
	for deadline := time.Now().Add(20 * time.Second); back.IsZero(); time.Sleep(50 * time.Millisecond) {
		for _, e := range l.history() {
			if e.ack && e.at.After(freed) {
				back = e.at.Add(e.took)
				break
			}
		}
		if time.Now().After(deadline) {
			close(stop)
			wait()
			t.Fatalf("nothing acknowledged 20 s after space returned\n%s", logsOf(router, gw))
		}
	}
	time.Sleep(time.Second)
	close(stop)
	wait()

	drain(t, url+"/metrics", sink, 30*time.Second)
	l.settle(t, sink, 10*time.Second)
	var slowest event
	answers := map[string]int{}
	for _, e := range l.history() {
		if e.at.Add(e.took).Before(full) || e.at.After(back) {
			continue
		}
		if e.took > slowest.took {
			slowest = e
		}
		if e.ack {
			continue
		}
		answers[e.answer]++
		if strings.HasPrefix(e.id, "rest") && !strings.HasPrefix(e.answer, "507 ") && !strings.HasPrefix(e.answer, "503 ") ||
			strings.HasPrefix(e.id, "smtp") && !strings.HasPrefix(e.answer, "45") {
			t.Errorf("%s while the disk was full: %s", e.id, e.answer)
		}
	}
	t.Logf("disk full for %v; acknowledging again %v after space returned; slowest answer meanwhile %v (%s: %q); answers %v",
		freed.Sub(full).Round(time.Millisecond), back.Sub(freed).Round(time.Millisecond), slowest.took.Round(time.Millisecond),
		slowest.id, slowest.answer, answers)
	if slowest.took > 10*time.Second {
		t.Errorf("a client waited %v while the disk was full", slowest.took)
	}
	if answers["507 storage_full"] == 0 {
		t.Errorf("no client was told the storage is full: %v", answers)
	}

	if code := router.stop(t); code != 0 {
		t.Errorf("the router exited %d", code)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "router.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRowContext(context.Background(), "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check: %q %v", check, err)
	}
	if t.Failed() {
		t.Log(logsOf(router, gw))
	}
}
