package tests

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freePort finds a loopback port nothing listens on.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// server is a koukan process serving HTTP.
type server struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

// startServer runs koukan with args in dir and waits until url answers.
func startServer(t *testing.T, dir, url string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(koukan, args...)
	cmd.Dir = dir
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd, out}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			s.cmd.Wait()
		}
	})
	// Generous: on a loaded CI machine, opening and migrating a PostgreSQL schema has taken
	// over 10 s.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("koukan %v did not start serving %s:\n%s", args, url, out)
		}
	}
}

// stop sends SIGTERM and returns the exit code.
func (s *server) stop(t *testing.T) int {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("koukan did not stop on SIGTERM:\n%s", s.out)
	}
	return s.cmd.ProcessState.ExitCode()
}

func request(t *testing.T, method, url, body string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// TestRouterServesAndKeepsTransactions runs `koukan router` with a reference-format config,
// creates a transaction and uploads its body over HTTP, stops it with SIGTERM, starts it
// again on the same database and reads the transaction back.
func TestRouterServesAndKeepsTransactions(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := strings.NewReplacer(`["127.0.0.1", 8000]`, fmt.Sprintf(`["127.0.0.1", %d]`, port),
		"http://localhost:8000", base).Replace(referenceRouter)
	os.WriteFile(filepath.Join(dir, "router.yaml"), []byte(cfg), 0o644)

	srv := startServer(t, dir, base+"/openapi.json", "router", "--config", "router.yaml")
	res, body := request(t, "POST", base+"/senders/submission/transactions",
		`{"mail_from":{"m":"alice@example.com"},"rcpt_to":[{"m":"bob@example.com"}]}`, "Content-Type", "application/json")
	if res.StatusCode != 201 {
		t.Fatalf("create: %d %s", res.StatusCode, body)
	}
	loc := res.Header.Get("Location")
	if res, body := request(t, "PUT", loc+"/body", "Subject: hi\r\n\r\nhello\r\n"); res.StatusCode != 200 {
		t.Fatalf("PUT: %d %s", res.StatusCode, body)
	}
	if code := srv.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, srv.out)
	}
	if _, err := os.Stat(filepath.Join(dir, "router.db")); err != nil {
		t.Errorf("sqlite:///router.db is not relative to the working directory: %v", err)
	}

	srv = startServer(t, dir, base+"/openapi.json", "router", "--config", "router.yaml")
	res, body = request(t, "GET", loc, "")
	if res.StatusCode != 200 || !strings.Contains(body, `"finalized":true`) || !strings.Contains(body, `"retry":{}`) {
		t.Errorf("after restart: %d %s", res.StatusCode, body)
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("second exit %d:\n%s", code, srv.out)
	}
}

func dialTCP(port int) (net.Conn, error) {
	return net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
}
