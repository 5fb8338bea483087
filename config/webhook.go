package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"
)

// Webhook is where a sender's delivery events are POSTed, signed (a Koukan extension; see
// docs/webhooks.md).
type Webhook struct {
	// URL receives one POST per event.
	URL string
	// SecretFile holds the HMAC-SHA256 key that signs each POST; a relative path is relative
	// to the config file's directory. Secret is its content, read at load with surrounding
	// whitespace trimmed.
	SecretFile string
	Secret     Secret
	// Timeout bounds one POST (10 s).
	Timeout time.Duration
	// MaxAge is how long an event is retried before it is dropped (3 days).
	MaxAge time.Duration
}

// Secret is key material. It formats (with any verb), logs and marshals as [redacted], so
// that printing a config never shows it.
type Secret []byte

const redacted = "[redacted]"

func (Secret) String() string               { return redacted }
func (Secret) Format(f fmt.State, _ rune)   { io.WriteString(f, redacted) }
func (Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

func (d *decoder) webhook(p path, n *yaml.Node) *Webhook {
	w := &Webhook{Timeout: 10 * time.Second, MaxAge: 72 * time.Hour}
	d.fields(p, n,
		scalar("url", &w.URL, httpURL).must(),
		sub("secret_file", func(d *decoder, p path, n *yaml.Node) {
			w.SecretFile, w.Secret = d.secretFile(p, deref(n))
		}).must(),
		scalar("timeout", &w.Timeout, positiveSeconds),
		scalar("max_age", &w.MaxAge, positiveSeconds),
	)
	return w
}

// secretFile reads the key file that n names. Messages name the file, never its content.
func (d *decoder) secretFile(p path, n *yaml.Node) (string, Secret) {
	name, ok := text(d, p, n)
	if !ok {
		return "", nil
	}
	file := name
	if !filepath.IsAbs(file) && d.file != "" {
		file = filepath.Join(filepath.Dir(d.file), file)
	}
	b, err := os.ReadFile(file)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is in the message already
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.errorf(n, p, "%q does not exist", file)
	case err != nil:
		d.errorf(n, p, "cannot read %q: %v", file, err)
	case len(bytes.TrimSpace(b)) == 0:
		d.errorf(n, p, "%q is empty; it must hold the webhook's signing key", file)
	default:
		return name, Secret(bytes.TrimSpace(b))
	}
	return name, nil
}
