package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// postfix is a private Postfix instance on loopback: its own config, queue and data
// directories, an smtpd on a free port, relaying everything to relayhost. It is the
// internet's most common MTA, met on both sides of the gateway.
type postfix struct {
	dir  string
	port int
}

// startPostfix runs Postfix relaying to relayhost ("127.0.0.1:PORT"), or skips the test where
// Postfix is not installed (.ci/run installs it).
func startPostfix(t *testing.T, relayhost string) *postfix {
	t.Helper()
	if _, err := exec.LookPath("postfix"); err != nil {
		t.Skip("postfix is not installed")
	}
	if os.Geteuid() != 0 {
		t.Skip("a private postfix instance needs root")
	}
	daemonDir, err := exec.Command("postconf", "-d", "-h", "daemon_directory").Output()
	if err != nil {
		t.Fatalf("postconf: %v", err)
	}
	// Postfix wants its directories on a path every component of which root owns; the
	// test's temp dir qualifies. Its queue is owned by the postfix user.
	dir := t.TempDir()
	// The postfix user walks through it and its parent.
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	p := &postfix{dir: dir, port: freePort(t)}
	host, port, _ := strings.Cut(relayhost, ":")
	mainCF := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
daemon_directory = %[2]s
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.test
mydestination =
mynetworks = 127.0.0.0/8
inet_interfaces = loopback-only
inet_protocols = ipv4
relayhost = [%[3]s]:%[4]s
smtp_tls_security_level = none
smtpd_tls_security_level = none
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtp_connection_cache_on_demand = no
alias_maps =
alias_database =
`, dir, strings.TrimSpace(string(daemonDir)), host, port)
	masterCF := fmt.Sprintf(`127.0.0.1:%d inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`, p.port)
	for _, d := range []string{"conf", "queue", "data"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "conf", "main.cf"), []byte(mainCF), 0o644)
	os.WriteFile(filepath.Join(dir, "conf", "master.cf"), []byte(masterCF), 0o644)
	exec.Command("chown", "postfix", filepath.Join(dir, "data")).Run()
	if out, err := exec.Command("postfix", "-c", filepath.Join(dir, "conf"), "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "maillog"))
		t.Fatalf("postfix start: %v\n%s\n%s", err, out, log)
	}
	t.Cleanup(func() {
		exec.Command("postfix", "-c", filepath.Join(dir, "conf"), "stop").Run()
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := dialTCP(p.port); err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfix did not listen on %d", p.port)
		}
	}
}

// log is Postfix's log so far, for failure messages.
func (p *postfix) log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "maillog"))
	return string(b)
}

// smtpSink runs Postfix's smtp-sink on a free port, writing each message into dir; it skips
// the test where smtp-sink is not installed.
func smtpSink(t *testing.T) (port int, dir string) {
	t.Helper()
	bin, err := exec.LookPath("smtp-sink")
	if err != nil {
		if _, err = os.Stat("/usr/sbin/smtp-sink"); err != nil {
			t.Skip("smtp-sink is not installed")
		}
		bin = "/usr/sbin/smtp-sink"
	}
	dir = t.TempDir()
	// smtp-sink writes as nobody, through the test's private temp directories.
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o777)
	port = freePort(t)
	cmd := exec.Command(bin, "-u", "nobody", "-d", filepath.Join(dir, "%M."), fmt.Sprintf("127.0.0.1:%d", port), "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := dialTCP(port); err == nil {
			c.Close()
			return port, dir
		}
		if time.Now().After(deadline) {
			t.Fatal("smtp-sink did not listen")
		}
	}
}

// sunk lists the messages smtp-sink wrote into dir (non-empty files only: empty ones are
// aborted transactions).
func sunk(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && len(b) > 0 {
			out = append(out, string(b))
		}
	}
	return out
}

// The harness itself: swaks → Postfix → smtp-sink.
func TestPostfixHarness(t *testing.T) {
	sinkPort, sinkDir := smtpSink(t)
	pf := startPostfix(t, fmt.Sprintf("127.0.0.1:%d", sinkPort))
	out, err := exec.Command("swaks", "--server", "127.0.0.1", "--port", fmt.Sprint(pf.port), "--from", "a@example.com",
		"--to", "b@example.org", "--body", "harness test").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(10 * time.Second); len(sunk(sinkDir)) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("nothing reached the sink:\n%s", pf.log())
		}
	}
	if m := sunk(sinkDir)[0]; !strings.Contains(m, "harness test") {
		t.Errorf("sink got %q", m)
	}
}
