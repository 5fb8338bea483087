package rest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/rest/resttest"
)

// The API key goes with every request, also after a redirect to another host, where
// net/http itself would drop the Authorization header.
func TestAPIKey(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	rcv := newReceiver(t, resttest.Options{Middleware: rec.wrap})
	// A redirects to B by another name: a replica elsewhere.
	elsewhere := strings.Replace(rcv.URL(), "127.0.0.1", "localhost", 1)
	var mu sync.Mutex
	var atA []string
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		atA = append(atA, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Location", elsewhere+r.URL.RequestURI())
		w.WriteHeader(http.StatusPermanentRedirect)
	}))
	defer a.Close()
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("koukan_secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 5*time.Second)
	up, err := newClient(t, Options{APIKeyFile: keyFile}).Create(ctx, a.URL+"/senders/x/transactions", envelope())
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Update(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := up.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if len(atA) != 1 || atA[0] != "Bearer koukan_secret" {
		t.Errorf("A got Authorization %q", atA)
	}
	if len(rec.reqs) != 3 {
		t.Fatalf("B got %d requests, want 3", len(rec.reqs))
	}
	for _, s := range rec.reqs {
		if got := s.header.Get("Authorization"); got != "Bearer koukan_secret" {
			t.Errorf("%s %s at B: Authorization %q", s.method, s.path, got)
		}
	}

	// Without a key file, no header; a bad key file is an error at once.
	if _, err := newClient(t, Options{}).Create(ctx, rcv.URL()+"/senders/x/transactions", envelope()); err != nil {
		t.Fatal(err)
	}
	if posts := rec.of("POST"); posts[len(posts)-1].header.Get("Authorization") != "" {
		t.Errorf("a client without a key sent Authorization %q", posts[len(posts)-1].header.Get("Authorization"))
	}
	for name, content := range map[string]string{"empty": "\n", "two": "a b\n"} {
		bad := filepath.Join(t.TempDir(), name)
		os.WriteFile(bad, []byte(content), 0o600)
		if _, err := NewClient(Options{APIKeyFile: bad}); err == nil {
			t.Errorf("a key file %q is accepted", content)
		}
	}
	if _, err := NewClient(Options{APIKeyFile: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("a missing key file is accepted")
	}
}

// The client certificate is presented to an upstream that asks for one (mutual TLS), over
// TLS 1.2 or later only.
func TestClientCertificate(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range r.TLS.PeerCertificates {
			seen = append(seen, c.Subject.CommonName)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	certFile, keyFile := clientCert(t, dir, "router.internal")
	ctx := testCtx(t, 5*time.Second)
	uri := srv.URL + "/senders/x/transactions"

	_, err := newClient(t, Options{InsecureSkipVerify: true, CertFile: certFile, KeyFile: keyFile}).Create(ctx, uri, envelope())
	if e := wantKind(t, err, KindStatus); e.Status != http.StatusServiceUnavailable {
		t.Fatalf("error %v", e)
	}
	if len(seen) != 1 || seen[0] != "router.internal" {
		t.Errorf("the server saw client certificates %q", seen)
	}
	_, err = newClient(t, Options{InsecureSkipVerify: true}).Create(ctx, uri, envelope())
	wantKind(t, err, KindTransport)

	if _, err := NewClient(Options{CertFile: certFile}); err == nil {
		t.Error("a certificate without its key is accepted")
	}

	old := httptest.NewUnstartedServer(http.NotFoundHandler())
	old.TLS = &tls.Config{MaxVersion: tls.VersionTLS11}
	old.Config.ErrorLog = log.New(io.Discard, "", 0)
	old.StartTLS()
	defer old.Close()
	_, err = newClient(t, Options{InsecureSkipVerify: true}).Create(ctx, old.URL+"/senders/x/transactions", envelope())
	wantKind(t, err, KindTransport)
}

// clientCert writes a self-signed client certificate for name into dir.
func clientCert(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}
