// Package tests holds end-to-end tests: they build the real koukan binary and drive it as a
// user would, from the command line and, as the servers land, over SMTP and HTTP on
// loopback ports.
package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// koukan is the path of the binary built for this test run.
var koukan string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "koukan-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	koukan = filepath.Join(dir, "koukan")
	build := exec.Command("go", "build", "-o", koukan, "../cmd/koukan")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building koukan:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the binary did.
type result struct {
	code           int
	stdout, stderr string
}

func runKoukan(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(koukan, args...)
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running koukan %v: %v", args, err)
	}
	return r
}
