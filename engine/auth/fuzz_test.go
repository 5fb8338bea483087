package auth

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

// FuzzParseHeader feeds arbitrary messages to Verify, exercising the
// header splitting and tag parsing done here before go-msgauth sees the
// message. Verify must not fail on in-memory input, must report one
// result per DKIM-Signature field, and nothing may pass without the key.
func FuzzParseHeader(f *testing.F) {
	msg := readTestdata(f, "trivial.msg")
	sig := mustSign(f, msg, SignOptions{Domain: "example.com", Selector: "sel", Key: testEd25519Key()})
	f.Add(sig + msg)
	f.Add(sig + sig + msg)
	f.Add("DKIM-Signature: v=1; a=rsa-sha256; d=x; s=y\r\n\r\n")
	f.Add(" continuation first\r\nDKIM-Signature:\r\n\tv=1\r\n")
	f.Add("dkim-signature : d=a;d=b;;=\nFrom: a\n\nbody")
	f.Add("")
	dns := txtMap{"sel._domainkey.example.com": {"v=DKIM1; k=ed25519; p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}
	f.Fuzz(func(t *testing.T, msg string) {
		res, err := Verify(context.Background(), strings.NewReader(msg), dns.lookup)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		_, fields, err := readHeaderString(msg)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range fields {
			if strings.EqualFold(f.name, "DKIM-Signature") {
				n++
			}
		}
		if len(res) != n {
			t.Fatalf("%d results for %d signatures", len(res), n)
		}
		for i, r := range res {
			if r.Result == "pass" {
				t.Fatalf("signature passed with a bogus key: %+v", r)
			}
			// neutral only marks signatures beyond the limit; elsewhere
			// it would mean go-msgauth saw fewer signatures than we did.
			if (r.Result == "neutral") != (i >= maxSignatures) {
				t.Fatalf("result %d of %d: %+v", i, n, r)
			}
		}
	})
}

// FuzzParseKey checks that key parsing never panics and only returns the
// key types DKIM signing accepts.
func FuzzParseKey(f *testing.F) {
	der, err := x509.MarshalPKCS8PrivateKey(testEd25519Key())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{0x30, 0}}))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		key, err := parseKey(b)
		if err != nil {
			return
		}
		if _, err := NewSigner(SignOptions{Domain: "example.com", Selector: "s", Key: key}); err != nil &&
			!strings.Contains(err.Error(), "RSA key too short") {
			t.Fatalf("parseKey returned a key NewSigner refuses: %v", err)
		}
	})
}

func readHeaderString(s string) ([]byte, []headerField, error) {
	return readHeader(bufio.NewReader(strings.NewReader(s)))
}
