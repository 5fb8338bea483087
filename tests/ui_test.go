package tests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromium finds headless Chromium (Debian's chromium package), or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (Debian package chromium); the status page is not rendered")
	return ""
}

// renderHeadless runs Chromium headless on url with args (--dump-dom, --screenshot=...)
// and returns what it printed on stdout.
func renderHeadless(t *testing.T, bin, url string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	profile := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--headless", "--no-sandbox", "--disable-gpu",
		"--disable-dev-shm-usage", "--no-first-run", "--user-data-dir=" + profile}, append(args, url)...)...)
	cmd.Env = append(os.Environ(), "HOME="+profile)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errOut.String())
	}
	return out.Bytes()
}

// The status page, rendered by a real browser: live queue figures, a transaction just
// created, the loaded scripts, and the chart.
func TestStatusPageInChromium(t *testing.T) {
	bin := chromium(t)
	s := startServe(t, t.TempDir())
	// A suspended domain keeps the transaction queued (held), whatever DNS says.
	if res, body := request(t, "POST", s.api+"/admin/domains/example.net/suspend", ""); res.StatusCode != 200 {
		t.Fatalf("suspend: %d %s", res.StatusCode, body)
	}
	res, body := request(t, "POST", s.api+"/senders/submission/transactions",
		`{"mail_from":{"m":"me@localhost"},"rcpt_to":[{"m":"someone@example.net"}],"body":{"inline":"Subject: held\r\n\r\nhello\r\n"}}`,
		"Content-Type", "application/json")
	if res.StatusCode != 201 {
		t.Fatalf("POST: %d %s", res.StatusCode, body)
	}
	loc := res.Header.Get("Location")
	id := loc[strings.LastIndexByte(loc, '/')+1:]

	dom := string(renderHeadless(t, bin, s.api+"/ui", "--dump-dom"))
	for _, want := range []string{id, "someone@example.net", "<svg", "received_header", `id="queue-held">1<`} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered page lacks %q:\n%s", want, dom)
		}
	}
	// The held transaction counts as held, and not also as due or deferred.
	figures := regexp.MustCompile(`id="queue-(in-flight|due|deferred|held)">(\d+)<`).FindAllStringSubmatch(dom, -1)
	if len(figures) != 4 || figures[1][2] != "0" || figures[2][2] != "0" || figures[3][2] != "1" {
		t.Errorf("queue figures %v: want four, due and deferred 0, held 1", figures)
	}

	shot := filepath.Join(t.TempDir(), "ui.png")
	renderHeadless(t, bin, s.api+"/ui", "--screenshot="+shot, "--window-size=1280,1400", "--hide-scrollbars")
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 10_000 {
		t.Fatalf("screenshot %s: %d bytes, %v", shot, len(png), err)
	}
	t.Logf("screenshot of the status page: %s (%d bytes)", shot, len(png))
}
