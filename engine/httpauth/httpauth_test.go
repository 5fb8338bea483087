package httpauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// api is a stand-in for the API behind the middleware: it says what it was asked and what
// it knows of the caller.
func api(w http.ResponseWriter, r *http.Request) {
	json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "trusted": Trusted(r.Context()),
		"may_use_app": MayUse(r.Context(), "app")})
}

// txSenders are the transactions the stand-in API has, by id.
var txSenders = map[string]string{"tx-app": "app", "tx-other": "other"}

func lookup(_ context.Context, id string) (string, bool, error) {
	if id == "broken" {
		return "", false, errors.New("the database is down")
	}
	s, ok := txSenders[id]
	return s, ok, nil
}

func TestMiddleware(t *testing.T) {
	appKey, appCred := NewKey()
	otherKey, otherCred := NewKey()
	bothKey, bothCred := NewKey()
	adminKey, adminCred := NewKey()
	gwKey, gwCred := NewKey()
	keys, err := ParseKeys("keys", []byte(strings.Join([]string{
		"sender app " + appCred,
		"sender other " + otherCred,
		"sender app " + bothCred,
		"sender other " + bothCred,
		"admin ops " + adminCred,
		"sender ingress " + gwCred + " trusted",
	}, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Middleware(Options{Keys: keys, TxSender: lookup, Log: slog.New(slog.DiscardHandler)})(http.HandlerFunc(api)))
	defer srv.Close()

	for _, c := range []struct {
		method, path, key string
		status            int
		code              string // of the problem body; "" when the API answered
	}{
		{"GET", "/healthz", "", 200, ""},
		{"GET", "/readyz", "", 200, ""},
		{"POST", "/senders/app/transactions", "", 401, "unauthorized"},
		{"POST", "/senders/app/transactions", "nonsense", 401, "unauthorized"},
		{"POST", "/senders/app/transactions", appKey + "x", 401, "unauthorized"},
		{"POST", "/senders/app/transactions", appKey, 200, ""},
		{"POST", "/senders/other/transactions", appKey, 403, "forbidden"},
		{"POST", "/senders/other/transactions", bothKey, 200, ""},
		{"GET", "/transactions/tx-other", otherKey, 200, ""},
		{"GET", "/transactions/tx-app", otherKey, 404, "unknown_transaction"},
		{"POST", "/senders/app/transactions", adminKey, 200, ""},
		{"GET", "/transactions/tx-app", appKey, 200, ""},
		{"PUT", "/transactions/tx-app/body", appKey, 200, ""},
		{"POST", "/transactions/tx-app/cancel", appKey, 200, ""},
		{"GET", "/transactions/tx-other", appKey, 404, "unknown_transaction"},
		{"PUT", "/transactions/tx-other/blob/b1", appKey, 404, "unknown_transaction"},
		{"GET", "/transactions/tx-missing", appKey, 404, "unknown_transaction"},
		{"GET", "/transactions/tx-other", bothKey, 200, ""},
		{"GET", "/transactions/tx-other", adminKey, 200, ""},
		{"GET", "/transactions/tx-other", "", 401, "unauthorized"},
		{"GET", "/transactions/broken", appKey, 500, "internal_error"},
		{"GET", "/openapi.json", appKey, 200, ""},
		{"GET", "/openapi.json", "", 401, "unauthorized"},
		{"GET", "/metrics", appKey, 403, "forbidden"},
		{"GET", "/metrics", adminKey, 200, ""},
		{"GET", "/admin/scripts", "", 401, "unauthorized"},
		{"GET", "/admin/scripts", gwKey, 403, "forbidden"},
		{"GET", "/admin/scripts", adminKey, 200, ""},
		{"GET", "/mailbox", appKey, 403, "forbidden"},
		// Path tricks are sorted as the API's mux routes them.
		{"GET", "/senders/app/../../admin/scripts", appKey, 307, ""},
		{"GET", "/senders/app%2F..%2F..%2Fadmin/transactions", appKey, 403, "forbidden"},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		if c.key != "" {
			req.Header.Set("Authorization", "Bearer "+c.key)
		}
		res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var p struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(body, &p)
		if res.StatusCode != c.status || p.Error.Code != c.code {
			t.Errorf("%s %s key %.10q: %d %s, want %d %s", c.method, c.path, c.key, res.StatusCode, body, c.status, c.code)
		}
		if res.StatusCode == 401 && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), `Bearer realm="koukan"`) {
			t.Errorf("%s %s: 401 with WWW-Authenticate %q", c.method, c.path, res.Header.Get("WWW-Authenticate"))
		}
		if strings.Contains(string(body), c.key) && c.key != "" {
			t.Errorf("%s %s: the key is in the answer", c.method, c.path)
		}
	}

	// What the API learns of its caller.
	for key, want := range map[string]string{
		appKey:   `"may_use_app":true,"path":"/senders/app/transactions","trusted":false`,
		gwKey:    `"may_use_app":false,"path":"/senders/ingress/transactions","trusted":true`,
		adminKey: `"may_use_app":true,"path":"/senders/ingress/transactions","trusted":false`,
	} {
		path := "/senders/ingress/transactions"
		if key == appKey {
			path = "/senders/app/transactions"
		}
		req, _ := http.NewRequest("POST", srv.URL+path, nil)
		req.Header.Set("Authorization", "bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !strings.Contains(string(body), want) {
			t.Errorf("the API saw %s, want %s", body, want)
		}
	}
	// Without the middleware, everyone may do everything (no api_keys_file).
	ctx := context.Background()
	if CallerOf(ctx) != nil || !Trusted(ctx) || !MayUse(ctx, "anything") {
		t.Error("a request without the middleware is limited")
	}
}

// Mutual TLS: a listener with client_ca refuses clients without a certificate from that CA
// in the handshake; with api keys, a certificate's name can stand for a caller (cn:).
func TestClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	writePEM(t, caFile, "CERTIFICATE", ca.cert.Raw)
	certFile, keyFile := ca.issue(t, dir, "127.0.0.1")
	conf, err := ServerTLS(certFile, keyFile, caFile)
	if err != nil {
		t.Fatal(err)
	}
	if conf.MinVersion != tls.VersionTLS12 || conf.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("ServerTLS = %+v", conf)
	}
	keys, err := ParseKeys("keys", []byte("sender ingress cn:gateway trusted\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(Middleware(Options{Keys: keys, TxSender: lookup, Log: slog.New(slog.DiscardHandler)})(http.HandlerFunc(api)))
	srv.TLS = conf
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()

	client := func(cn string, maxVersion uint16) *http.Client {
		c := &tls.Config{RootCAs: ca.pool(), MaxVersion: maxVersion}
		if cn != "" {
			cf, kf := ca.issue(t, dir, cn)
			cert, err := tls.LoadX509KeyPair(cf, kf)
			if err != nil {
				t.Fatal(err)
			}
			c.Certificates = []tls.Certificate{cert}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: c}, Timeout: 10 * time.Second}
	}
	get := func(c *http.Client) (int, string, error) {
		res, err := c.Post(srv.URL+"/senders/ingress/transactions", "application/json", nil)
		if err != nil {
			return 0, "", err
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body), nil
	}
	if status, body, err := get(client("gateway", 0)); err != nil || status != 200 || !strings.Contains(body, `"trusted":true`) {
		t.Errorf("the gateway's certificate: %d %s %v", status, body, err)
	}
	if status, body, err := get(client("someone", 0)); err != nil || status != 401 {
		t.Errorf("another certificate of the CA: %d %s %v, want 401", status, body, err)
	}
	if _, _, err := get(client("", 0)); err == nil {
		t.Error("a client without a certificate got through the handshake")
	}
	other := newCA(t)
	cf, kf := other.issue(t, dir, "gateway")
	cert, _ := tls.LoadX509KeyPair(cf, kf)
	stranger := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool(), Certificates: []tls.Certificate{cert}}}}
	if _, _, err := get(stranger); err == nil {
		t.Error("a certificate of another CA got through the handshake")
	}
	if _, _, err := get(client("gateway", tls.VersionTLS11)); err == nil {
		t.Error("TLS 1.1 got through the handshake")
	}
	if _, err := ServerTLS(certFile, keyFile, filepath.Join(dir, "missing.pem")); err == nil {
		t.Error("a missing client_ca is accepted")
	}
	if _, err := ServerTLS(filepath.Join(dir, "missing.crt"), keyFile, ""); err == nil {
		t.Error("a missing certificate is accepted")
	}
}

// testCA issues certificates good for both ends of a TLS connection.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert, key}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue writes a certificate for name (a common name, and an IP address if it is one).
func (ca *testCA) issue(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, name+serial.String()+".crt"), filepath.Join(dir, name+serial.String()+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
