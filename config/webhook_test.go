package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const webhookRouter = `
rest_listener:
  addr: [127.0.0.1, 8000]
  session_uri: http://127.0.0.1:8000
storage:
  url: sqlite:///router.db
sender:
  - name: app
    output_chain: out
    webhook: {url: "https://hooks.example.com/koukan", secret_file: keys/hook.key}
    tag:
      - name: inherits
      - name: quiet
        webhook: null
      - name: own
        webhook: {url: "http://127.0.0.1:9000/hook", secret_file: %s, timeout: 2.5, max_age: 3600}
  - name: plain
    output_chain: out
endpoint:
  - name: out
    chain: [{filter: rest_output, static_endpoint: "http://127.0.0.1:9"}]
`

// A webhook's secret file is read at load, relative to the config; tags inherit, replace or
// turn off their sender's webhook; and the secret never shows when the config is printed.
func TestWebhook(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeKey := func(name, content string) string {
		p := filepath.Join(dir, "keys", name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	writeKey("hook.key", "s3cret-shared-key\n")
	own := writeKey("own.key", "other-key")
	cfg := filepath.Join(dir, "router.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(webhookRouter, own)), 0o644); err != nil {
		t.Fatal(err)
	}
	r, warns, err := LoadRouter(cfg)
	if err != nil || len(warns) > 0 {
		t.Fatalf("LoadRouter: %v %v", err, warns)
	}
	app := settings(t, r, "app", "").Webhook
	if app == nil || app.URL != "https://hooks.example.com/koukan" || string(app.Secret) != "s3cret-shared-key" ||
		app.SecretFile != "keys/hook.key" || app.Timeout != 10*time.Second || app.MaxAge != 72*time.Hour {
		t.Errorf("sender app webhook = %+v", app)
	}
	if got := settings(t, r, "app", "inherits").Webhook; got != app {
		t.Errorf("tag inherits: %+v, want the sender's", got)
	}
	if got := settings(t, r, "app", "quiet").Webhook; got != nil {
		t.Errorf("tag quiet: %+v, want none", got)
	}
	if got := settings(t, r, "app", "own").Webhook; got == nil || got.URL != "http://127.0.0.1:9000/hook" ||
		string(got.Secret) != "other-key" || got.Timeout != 2500*time.Millisecond || got.MaxAge != time.Hour {
		t.Errorf("tag own: %+v", got)
	}
	if got := settings(t, r, "plain", "").Webhook; got != nil {
		t.Errorf("sender plain: %+v, want none", got)
	}

	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "webhook", app, "secret", app.Secret)
	js, err := json.Marshal(app)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprint(app), fmt.Sprintf("%+v %#v %s %x %d %v", *app, *app, app.Secret, app.Secret, app.Secret, []byte(nil)), logged.String(), string(js)} {
		if strings.Contains(out, "s3cret") || strings.Contains(out, fmt.Sprintf("%x", "s3cret")) || strings.Contains(out, "115 51 99") {
			t.Errorf("the secret shows: %s", out)
		}
	}
}
