package rest

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/rest/resttest"
)

// Certificates are verified against CAFile (or not at all when asked), and
// a TLS upstream that offers HTTP/2 gets it.
func TestTLS(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	rcv := newReceiver(t, resttest.Options{TLS: true, Middleware: rec.wrap})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rcv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 5*time.Second)
	uri := rcv.URL() + "/senders/x/transactions"

	_, err := newClient(t, Options{}).Create(ctx, uri, envelope())
	wantKind(t, err, KindTransport)

	for _, opts := range []Options{{CAFile: ca}, {InsecureSkipVerify: true}} {
		if _, err := newClient(t, opts).Create(ctx, uri, envelope()); err != nil {
			t.Fatalf("%+v: %v", opts, err)
		}
	}
	for _, s := range rec.of("POST") {
		if s.proto != 2 {
			t.Errorf("HTTP/%d, want HTTP/2", s.proto)
		}
	}

	if _, err := NewClient(Options{CAFile: filepath.Join(t.TempDir(), "missing.pem")}); err == nil {
		t.Error("a missing CA file is accepted")
	}
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient(Options{CAFile: notPEM}); err == nil {
		t.Error("a CA file without certificates is accepted")
	}
}
