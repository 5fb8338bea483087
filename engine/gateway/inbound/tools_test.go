package inbound

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/rest/resttest"
)

// Interoperability with real clients: swaks (Perl's Net::SMTP-style
// client, with STARTTLS, implicit TLS, AUTH and PIPELINING) and Postfix's
// smtp-source (a HELO client).

func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed", name)
	}
	return path
}

func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, needTool(t, name), args...)
	cmd.Stdin = nil // a tool that prompts gets EOF, not a hang
	out, err := cmd.CombinedOutput()
	if len(out) > 4000 {
		out = append(out[:4000], "..."...)
	}
	return string(out), err
}

func swaks(t *testing.T, e *env, args ...string) (string, error) {
	t.Helper()
	base := []string{"--server", e.addr, "--helo", "swaks.test", "--from", "alice@example.com", "--to", "bob@example.com",
		"--timeout", "30", "--header", "Subject: swaks test"}
	return run(t, "swaks", append(base, args...)...)
}

func TestSwaks(t *testing.T) {
	t.Parallel()
	needTool(t, "swaks")
	srvTLS, _ := serverTLS(t)
	secrets := writeSecrets(t)
	starttls := start(t, Options{TLS: srvTLS, AuthSecrets: secrets}, resttest.Options{})
	implicit := start(t, Options{TLS: srvTLS, ImplicitTLS: true, AuthSecrets: secrets}, resttest.Options{})

	cases := []struct {
		name string
		e    *env
		args []string
		tls  bool
	}{
		{"plain", starttls, nil, false},
		{"pipelining", starttls, []string{"--pipeline", "--to", "bob@example.com,carol@example.com"}, false},
		{"STARTTLS + AUTH PLAIN sha256", starttls, []string{"--tls", "--auth", "PLAIN", "--auth-user", "machine", "--auth-password", testSecrets["machine"]}, true},
		{"STARTTLS + AUTH LOGIN bcrypt", starttls, []string{"--tls", "--auth", "LOGIN", "--auth-user", "alice", "--auth-password", testSecrets["alice"]}, true},
		{"implicit TLS + AUTH PLAIN bcrypt $2y$", implicit, []string{"--tlsc", "--auth", "PLAIN", "--auth-user", "bob", "--auth-password", testSecrets["bob"]}, true},
	}
	delivered := map[*env]int{}
	for _, c := range cases {
		out, err := swaks(t, c.e, c.args...)
		if err != nil {
			t.Errorf("%s: %v\n%s", c.name, err, out)
			continue
		}
		delivered[c.e]++
		txs := c.e.finished(delivered[c.e])
		rc := txs[len(txs)-1]
		if !strings.Contains(string(rc.Body), "Subject: swaks test") || !rc.BodyFinalized {
			t.Errorf("%s: body %q", c.name, rc.Body)
		}
		if got := meta(t, rc, "tls"); got != map[bool]string{true: "true", false: "false"}[c.tls] {
			t.Errorf("%s: smtp_meta.tls %s", c.name, got)
		}
		if c.name == "pipelining" && (len(rc.Tx.RcptTo) != 2 || !strings.Contains(out, " -> DATA\n<-  250 2.0.0 Roger")) {
			t.Errorf("%s: rcpts %v, or not pipelined:\n%s", c.name, rc.Tx.RcptTo, out)
		}
	}

	// AUTH is not offered before TLS, so swaks cannot authenticate.
	out, err := swaks(t, starttls, "--auth", "PLAIN", "--auth-user", "machine", "--auth-password", testSecrets["machine"])
	if err == nil || !strings.Contains(out, "authentication") {
		t.Errorf("AUTH without TLS: %v\n%s", err, out)
	}
	// A wrong secret over TLS.
	out, err = swaks(t, starttls, "--tls", "--auth", "LOGIN", "--auth-user", "alice", "--auth-password", "nope")
	if err == nil || !strings.Contains(out, "535 5.7.8") {
		t.Errorf("wrong secret: %v\n%s", err, out)
	}
}

func TestSmtpSource(t *testing.T) {
	t.Parallel()
	needTool(t, "smtp-source")
	e := start(t, Options{}, resttest.Options{})
	// 2 sessions, 6 messages of 3000 bytes, 2 recipients each, HELO.
	out, err := run(t, "smtp-source", "-s", "2", "-m", "6", "-l", "3000", "-r", "2", "-f", "alice@example.com", "-t", "bob@example.com", e.addr)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	txs := e.finished(6)
	if len(txs) != 6 {
		t.Fatalf("%d transactions", len(txs))
	}
	for _, rc := range txs {
		if meta(t, rc, "esmtp") != "false" || rc.Tx.DataResponse == nil || rc.Tx.DataResponse.Code != 250 || len(rc.Body) < 3000 || len(rc.Tx.RcptTo) != 2 {
			t.Errorf("%s (smtp_meta %s)", describe([]resttest.Received{rc}), rc.Tx.SMTPMeta)
		}
	}
}
