package tests

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// privatePostgres is a PostgreSQL server of the test's own, on a free loopback port, that
// the test may stop and start: the machine's shared server on 5432 is other tests' to use.
type privatePostgres struct {
	bin, data string
	port      int
	// cred runs the server as the postgres user when the test runs as root, which
	// PostgreSQL refuses to run as.
	cred *syscall.Credential
}

// startPostgres initdb's and starts a private server, or skips the test where PostgreSQL's
// programs are not installed (/usr/lib/postgresql/*/bin, as Debian has them).
func startPostgres(t *testing.T) *privatePostgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		t.Skip("PostgreSQL's server programs are not installed (/usr/lib/postgresql/*/bin)")
	}
	p := &privatePostgres{bin: filepath.Dir(bins[len(bins)-1]), port: freePort(t)}
	dir := t.TempDir()
	p.data = filepath.Join(dir, "pg")
	if err := os.Mkdir(p.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root without a postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		// The postgres user walks down to its data directory.
		os.Chmod(filepath.Dir(dir), 0o755)
		os.Chmod(dir, 0o755)
		if err := os.Chown(p.data, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := p.run("initdb", "-D", p.data, "-U", "postgres", "-A", "trust", "--no-sync", "--no-instructions"); err != nil {
		t.Skipf("initdb of a private PostgreSQL failed: %v\n%s", err, out)
	}
	// fsync is off: the tests stop the server, never the machine, and the OS keeps what
	// the server wrote.
	conf := fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nfsync = off\nmax_connections = 60\n", p.port, p.data)
	f, err := os.OpenFile(filepath.Join(p.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(conf)
	f.Close()
	t.Cleanup(func() { p.run("pg_ctl", "-D", p.data, "-m", "immediate", "-w", "stop") })
	p.start(t)
	return p
}

// run runs one of PostgreSQL's programs as the server's user.
func (p *privatePostgres) run(prog string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(p.bin, prog), args...)
	cmd.Dir = p.data
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (p *privatePostgres) start(t *testing.T) {
	t.Helper()
	if out, err := p.run("pg_ctl", "-D", p.data, "-l", filepath.Join(p.data, "log"), "-w", "-t", "30", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.data, "log"))
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// stop stops the server in mode: "fast" (clients are disconnected, then a clean
// shutdown) or "immediate" (everything killed, crash recovery at the next start).
func (p *privatePostgres) stop(t *testing.T, mode string) {
	t.Helper()
	if out, err := p.run("pg_ctl", "-D", p.data, "-m", mode, "-w", "-t", "30", "stop"); err != nil {
		t.Fatalf("pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
}

func (p *privatePostgres) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// PostgreSQL stopped under load (fast, then immediate shutdown) and started again a few
// seconds later: the router reconnects by itself, whatever was acknowledged is delivered,
// and during the outage clients are told to come back later at once: a JSON 503 on REST,
// 451 on SMTP, never a 500, never a hang. It prints the ledger, the slowest answer during
// the outages and how long the router took to acknowledge again after each start.
func TestFaultPostgresRestart(t *testing.T) {
	pg := startPostgres(t)
	sink := startSink(t)
	dir := t.TempDir()
	// A refresh every 2 s: the router gives its session up after 10 s without the database,
	// well over the outages here.
	p := startFaultPair(t, dir, pg.url(), sink, 2, true)
	router, gw, url := p.router, p.gw, p.url

	l := &ledger{}
	stop := make(chan struct{})
	wait := steadyLoad(l, stop, p)
	const outage = 2 * time.Second // after the stop, which takes a second or two itself
	type window struct {
		mode           string
		down, up, back time.Time
	}
	var outages []window
	time.Sleep(time.Second)
	for _, mode := range []string{"fast", "immediate"} {
		w := window{mode: mode, down: time.Now()}
		pg.stop(t, mode)
		time.Sleep(outage)
		pg.start(t)
		w.up = time.Now()
		// Recovered: a message sent after the start is acknowledged.
		for deadline := time.Now().Add(20 * time.Second); w.back.IsZero(); time.Sleep(50 * time.Millisecond) {
			for _, e := range l.history() {
				if e.ack && e.at.After(w.up) {
					w.back = e.at.Add(e.took)
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("nothing acknowledged 20 s after PostgreSQL started again (%s stop)", mode)
			}
		}
		outages = append(outages, w)
		time.Sleep(time.Second)
	}
	close(stop)
	wait()

	drain(t, url+"/metrics", sink, 30*time.Second)
	l.settle(t, sink, 10*time.Second)
	// During an outage (from the stop until the router acknowledged again) every answer is
	// a temporary failure, and a quick one.
	const bound = 10 * time.Second
	for _, w := range outages {
		var slowest event
		answers := map[string]int{}
		for _, e := range l.history() {
			if e.at.Add(e.took).Before(w.down) || e.at.After(w.back) {
				continue
			}
			if e.took > slowest.took {
				slowest = e
			}
			if e.ack {
				continue
			}
			answers[e.answer]++
			if strings.HasPrefix(e.id, "rest") && !strings.HasPrefix(e.answer, "503 ") ||
				strings.HasPrefix(e.id, "smtp") && !strings.HasPrefix(e.answer, "45") {
				t.Errorf("%s during the %s outage: %s", e.id, w.mode, e.answer)
			}
		}
		t.Logf("%s stop: PostgreSQL down %v; acknowledging again %v after the start; slowest answer meanwhile %v (%s: %q); answers %v",
			w.mode, w.up.Sub(w.down).Round(time.Millisecond), w.back.Sub(w.up).Round(time.Millisecond),
			slowest.took.Round(time.Millisecond), slowest.id, slowest.answer, answers)
		if slowest.took > bound {
			t.Errorf("a client waited %v during the %s outage (bound %v)", slowest.took, w.mode, bound)
		}
	}
	if res, err := restClient.Get(url + "/readyz"); err != nil {
		t.Errorf("the router is gone: %v", err)
	} else if res.Body.Close(); res.StatusCode != 200 {
		t.Errorf("/readyz after the outages: %d", res.StatusCode)
	}
	if t.Failed() {
		t.Log(logsOf(router, gw))
	}
}
