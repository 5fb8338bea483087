package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A config written for the reference system, with the keys it ignored, SQLAlchemy storage
// URLs and a Python logging block, checks clean apart from warnings.
const referenceRouter = `
global:
  gc_interval: 300
  mailer_daemon_mailbox: mailer-daemon@example.com
rest_listener:
  addr: ["127.0.0.1", 8000]
  session_uri: http://localhost:8000
storage:
  url: sqlite:///router.db
  session_refresh_interval: 1
  gc_interval: 3600
sender:
  - name: submission
    output_chain: submission
    retry: output_chain
    notification: output_chain
rest_endpoint:
  - name: gateway
    endpoint: http://localhost:8001
    sender: router
    tag: outbound
endpoint:
  - name: submission
    msa: true
    output_handler:
      downstream_timeout: 5
      upstream_refresh: 10
      retry_params:
        max_attempts: 3
      notification:
        sender: submission
    chain:
      - filter: message_builder
      - filter: received_header
      - filter: router
        policy:
          name: dest_domain
          destination:
            endpoint: gateway
      - filter: dns_resolution
        static_hosts:
          - {host: 127.0.0.1, port: 2525}
      - filter: rest_output
logging:
  version: 1
  disable_existing_loggers: false
  formatters:
    brief:
      format: "%(asctime)s %(message)s"
  handlers:
    console:
      class: logging.StreamHandler
      formatter: brief
  root:
    level: DEBUG
    handlers: [console]
`

func TestCheckReferenceConfig(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "router.yaml"), []byte(referenceRouter), 0o644)
	r := runKoukan(t, dir, "check", "router.yaml")
	if r.code != 0 {
		t.Fatalf("check exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		`router.yaml:3:3: warning: global: key "gc_interval" is ignored`,
		`router.yaml:24:5: warning: endpoint[submission]: key "msa" is ignored`,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check output lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestCheckBadConfigNamesThePlace(t *testing.T) {
	dir := t.TempDir()
	bad := strings.Replace(referenceRouter, "output_chain: submission", "output_chain: submision", 1)
	bad = strings.Replace(bad, "url: sqlite:///router.db", "url: sqlite://db-host/router.db", 1)
	os.WriteFile(filepath.Join(dir, "router.yaml"), []byte(bad), 0o644)
	r := runKoukan(t, dir, "check", "router.yaml")
	if r.code != 1 {
		t.Fatalf("check of a bad config: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		`router.yaml:9:8: storage.url: sqlite urls take no host`,
		`router.yaml:14:19: sender[submission].output_chain: "submision" is not an endpoint name (known: submission)`,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check output lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestHelp(t *testing.T) {
	r := runKoukan(t, t.TempDir(), "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "Usage: koukan <command>") {
		t.Errorf("--help: exit %d\n%s", r.code, r.stdout)
	}
	r = runKoukan(t, t.TempDir(), "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "koukan ") {
		t.Errorf("version: exit %d %q", r.code, r.stdout)
	}
}

// A gateway config with a mistake stops the gateway at once, naming the place.
func TestGatewayBadConfig(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "gateway.yaml"), []byte("smtp_listener:\n  services:\n    - addr: [127.0.0.1, 2525]\n      endpoint: nowhere\n"), 0o644)
	r := runKoukan(t, dir, "gateway", "--config", "gateway.yaml")
	if r.code != 1 || !strings.Contains(r.stderr, "gateway.yaml:4:17") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}
