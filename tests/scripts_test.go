package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/rest/resttest"
)

const stampRouter = `
rest_listener:
  addr: ["127.0.0.1", %[1]d]
  session_uri: http://127.0.0.1:%[1]d
storage:
  url: sqlite:///router.db
scripts:
  reload: %[3]t
sender:
  - name: app
    output_chain: app
endpoint:
  - name: app
    chain:
      - filter: stamp
        header: X-Stamp
      - filter: rest_output
        static_endpoint: %[2]s
`

func stampScript(version string) string {
	return "local opts = ...\nlocal M = {}\nfunction M.data(tx, msg)\n  msg:prepend(opts.header, \"" + version + "\")\nend\nreturn M\n"
}

// saveFile writes as editors do: a new file renamed over the old one.
func saveFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path+".new", []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

type scriptStatus struct {
	Hash      string `json:"hash"`
	LastError string `json:"last_error"`
	Calls     int    `json:"calls"`
}

func adminScripts(t *testing.T, base string) scriptStatus {
	t.Helper()
	_, body := request(t, "GET", base+"/admin/scripts", "")
	var st scriptStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/admin/scripts: %v: %s", err, body)
	}
	return st
}

// send delivers one message through the router and returns what the receiver got.
func send(t *testing.T, base string, recv *resttest.Receiver, n int) string {
	t.Helper()
	res, body := request(t, "POST", base+"/senders/app/transactions",
		`{"mail_from":{"m":"a@example.com"},"rcpt_to":[{"m":"b@example.com"}],"body":{"inline":"Subject: x\r\n\r\nhi\r\n"}}`,
		"Content-Type", "application/json")
	if res.StatusCode != 201 {
		t.Fatalf("create: %d %s", res.StatusCode, body)
	}
	got, err := recv.WaitFor(t.Context(), n)
	if err != nil {
		t.Fatal(err)
	}
	return string(got[n-1].Body)
}

// The real binary reloads a script when it is saved, keeps the running version when an edit
// is broken (and says why at /admin/scripts), and reloads on SIGHUP.
func TestScriptHotReload(t *testing.T) {
	dir := t.TempDir()
	recv := resttest.NewReceiver(resttest.Options{})
	defer recv.Close()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	os.WriteFile(filepath.Join(dir, "router.yaml"), fmt.Appendf(nil, stampRouter, port, recv.URL(), true), 0o644)
	script := filepath.Join(dir, "scripts", "filters", "stamp.lua")
	os.MkdirAll(filepath.Dir(script), 0o755)
	saveFile(t, script, stampScript("v1"))
	srv := startServer(t, dir, base+"/admin/scripts", "router", "--config", "router.yaml")

	if body := send(t, base, recv, 1); !strings.HasPrefix(body, "X-Stamp: v1\r\n") {
		t.Fatalf("first message: %q", body)
	}
	first := adminScripts(t, base)

	saveFile(t, script, stampScript("v2"))
	saved := time.Now()
	for adminScripts(t, base).Hash == first.Hash {
		if time.Since(saved) > 5*time.Second {
			t.Fatalf("the edit was not loaded:\n%s", srv.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := time.Since(saved); d > time.Second {
		t.Errorf("the edit took %v to load", d)
	}
	if body := send(t, base, recv, 2); !strings.HasPrefix(body, "X-Stamp: v2\r\n") {
		t.Errorf("after the edit: %q", body)
	}

	saveFile(t, script, "local M = {\nreturn M\n")
	var st scriptStatus
	for st = adminScripts(t, base); st.LastError == ""; st = adminScripts(t, base) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(st.LastError, "stamp.lua:2:1: syntax error") {
		t.Errorf("last_error %q", st.LastError)
	}
	if body := send(t, base, recv, 3); !strings.HasPrefix(body, "X-Stamp: v2\r\n") {
		t.Errorf("the broken edit was used: %q", body)
	}
	if code := srv.stop(t); code != 0 {
		t.Fatalf("exit %d:\n%s", code, srv.out)
	}

	// Without watching, SIGHUP reloads.
	os.WriteFile(filepath.Join(dir, "router.yaml"), fmt.Appendf(nil, stampRouter, port, recv.URL(), false), 0o644)
	saveFile(t, script, stampScript("v3"))
	srv = startServer(t, dir, base+"/admin/scripts", "router", "--config", "router.yaml")
	before := adminScripts(t, base)
	saveFile(t, script, stampScript("v4"))
	time.Sleep(300 * time.Millisecond)
	if adminScripts(t, base).Hash != before.Hash {
		t.Fatalf("reloaded without watching or a signal")
	}
	srv.cmd.Process.Signal(syscall.SIGHUP)
	for deadline := time.Now().Add(5 * time.Second); adminScripts(t, base).Hash == before.Hash; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not reload:\n%s", srv.out)
		}
	}
	if body := send(t, base, recv, 4); !strings.HasPrefix(body, "X-Stamp: v4\r\n") {
		t.Errorf("after SIGHUP: %q", body)
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("exit %d:\n%s", code, srv.out)
	}
}
