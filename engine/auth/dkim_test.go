package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// testRSAKey generates one RSA-2048 key per test binary; generation is
// slow under -race.
func testRSAKey(t testing.TB) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaKey
}

// goldenSeed makes the golden test's Ed25519 key, and so its signature,
// reproducible.
var goldenSeed = []byte("koukan dkim golden test key seed")

func testEd25519Key() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(goldenSeed) }

// keyRecord returns the DNS TXT record publishing k's public half.
func keyRecord(t testing.TB, k crypto.Signer) string {
	switch pub := k.Public().(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	}
	t.Fatalf("unexpected key %T", k)
	return ""
}

// txtMap serves TXT records from a map; names it lacks are NXDOMAIN.
type txtMap map[string][]string

func (m txtMap) lookup(ctx context.Context, name string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	txts, ok := m[name]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return txts, nil
}

func readTestdata(t testing.TB, name string) string {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustSign(t testing.TB, msg string, o SignOptions) string {
	t.Helper()
	sig, err := Sign(strings.NewReader(msg), o)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return sig
}

func verify(t testing.TB, msg string, lookup func(context.Context, string) ([]string, error)) []DKIMResult {
	t.Helper()
	res, err := Verify(context.Background(), strings.NewReader(msg), lookup)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return res
}

// tagValue returns the whitespace-free value of a tag in a signature field.
func tagValue(sig, tag string) string {
	_, v, _ := strings.Cut(sig, ":")
	return parseTags(v)[tag]
}

func TestSignVerify(t *testing.T) {
	keys := []struct {
		name string
		key  crypto.Signer
		algo string
	}{
		{"rsa", testRSAKey(t), "rsa-sha256"},
		{"ed25519", testEd25519Key(), "ed25519-sha256"},
	}
	for _, k := range keys {
		for _, file := range []string{"trivial.msg", "multipart.msg"} {
			t.Run(k.name+"/"+file, func(t *testing.T) {
				msg := readTestdata(t, file)
				sig := mustSign(t, msg, SignOptions{Domain: "example.com", Selector: "sel", Key: k.key})
				if !strings.HasPrefix(sig, "DKIM-Signature:") || !strings.HasSuffix(sig, "\r\n") {
					t.Errorf("signature field %q lacks name or final CRLF", sig)
				}
				// go-msgauth folds near, not strictly under, 78 columns.
				lines := strings.Split(strings.TrimSuffix(sig, "\r\n"), "\r\n")
				for _, line := range lines {
					if len(line) > 100 {
						t.Errorf("signature line not folded: %q", line)
					}
				}
				dns := txtMap{"sel._domainkey.example.com": {keyRecord(t, k.key)}}
				got := verify(t, sig+msg, dns.lookup)
				want := []DKIMResult{{
					Domain: "example.com", Selector: "sel", Identifier: "@example.com",
					Result: "pass", Algorithm: k.algo,
				}}
				if len(got) != 1 || got[0] != want[0] {
					t.Errorf("Verify = %+v, want %+v", got, want)
				}

				tampered := sig + strings.Replace(msg, "hello", "Hello", 1)
				if got := verify(t, tampered, dns.lookup); len(got) != 1 || got[0].Result != "fail" {
					t.Errorf("Verify(tampered) = %+v, want fail", got)
				}
			})
		}
	}
}

func TestVerifyFailures(t *testing.T) {
	key := testEd25519Key()
	msg := readTestdata(t, "trivial.msg")
	sig := mustSign(t, msg, SignOptions{Domain: "example.com", Selector: "sel", Key: key})
	signed := sig + msg
	good := txtMap{"sel._domainkey.example.com": {keyRecord(t, key)}}
	tempErr := func(ctx context.Context, name string) ([]string, error) {
		// Wrapped, as another resolver layer would return it.
		return nil, fmt.Errorf("engine/dns: %w", errors.New("SERVFAIL"))
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name       string
		ctx        context.Context
		msg        string
		lookup     func(context.Context, string) ([]string, error)
		result     string
		reasonPart string
	}{
		{"body changed", context.Background(), strings.Replace(signed, "world!", "world?", 1), good.lookup, "fail", "body hash did not verify"},
		{"body appended", context.Background(), signed + "P.S.\r\n", good.lookup, "fail", "body hash did not verify"},
		{"subject changed", context.Background(), strings.Replace(signed, "Subject: hello", "Subject: HELLO", 1), good.lookup, "fail", "signature did not verify"},
		{"From added", context.Background(), sig + "From: mallory@example.net\r\n" + msg, good.lookup, "fail", "signature did not verify"},
		{"wrong key", context.Background(), signed, txtMap{"sel._domainkey.example.com": {keyRecord(t, testRSAKey(t))}}.lookup, "permerror", "inappropriate key algorithm"},
		{"no key record", context.Background(), signed, txtMap{}.lookup, "permerror", "no key for signature"},
		{"no TXT data", context.Background(), signed, txtMap{"sel._domainkey.example.com": {}}.lookup, "permerror", "no valid key found"},
		{"revoked key", context.Background(), signed, txtMap{"sel._domainkey.example.com": {"v=DKIM1; k=ed25519; p="}}.lookup, "permerror", "key revoked"},
		{"bad key record", context.Background(), signed, txtMap{"sel._domainkey.example.com": {"v=DKIM1; k=ed25519; p=!!"}}.lookup, "permerror", "key syntax error"},
		{"temporary DNS error", context.Background(), signed, tempErr, "temperror", "SERVFAIL"},
		{"timeout", context.Background(), signed, func(context.Context, string) ([]string, error) {
			return nil, &net.DNSError{Err: "i/o timeout", IsTimeout: true}
		}, "temperror", "i/o timeout"},
		{"context canceled", canceled, signed, good.lookup, "temperror", "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Verify(tt.ctx, strings.NewReader(tt.msg), tt.lookup)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Result != tt.result || !strings.Contains(got[0].Reason, tt.reasonPart) {
				t.Fatalf("Verify = %+v, want result %q with reason containing %q", got, tt.result, tt.reasonPart)
			}
			if got[0].Domain != "example.com" || got[0].Selector != "sel" || got[0].Algorithm != "ed25519-sha256" {
				t.Errorf("signature identity = %+v", got[0])
			}
		})
	}
}

func TestVerifyMalformedSignatures(t *testing.T) {
	body := "From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n"
	tests := []struct {
		field  string
		want   DKIMResult
		reason string
	}{
		{
			"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s1\r\n",
			DKIMResult{Domain: "example.org", Selector: "s1", Identifier: "", Algorithm: "rsa-sha256", Result: "permerror"},
			"missing required tag",
		},
		{
			"DKIM-Signature: v=2; d=example.org\r\n",
			DKIMResult{Domain: "example.org", Result: "permerror"},
			"incompatible signature version",
		},
		{
			"DKIM-Signature: garbage\r\n",
			DKIMResult{Result: "permerror"},
			"malformed signature tags",
		},
		{
			"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s1; i=a@example.net; h=from; bh=; b=\r\n",
			DKIMResult{Domain: "example.org", Selector: "s1", Identifier: "a@example.net", Algorithm: "rsa-sha256", Result: "permerror"},
			"domain mismatch",
		},
	}
	for _, tt := range tests {
		got := verify(t, tt.field+body, txtMap{}.lookup)
		if len(got) != 1 {
			t.Fatalf("Verify(%q) = %+v, want one result", tt.field, got)
		}
		reason := got[0].Reason
		got[0].Reason = ""
		if got[0] != tt.want || !strings.Contains(reason, tt.reason) {
			t.Errorf("Verify(%q) = %+v (reason %q), want %+v with reason containing %q", tt.field, got[0], reason, tt.want, tt.reason)
		}
	}
}

func TestVerifyUnsigned(t *testing.T) {
	got := verify(t, readTestdata(t, "trivial.msg"), txtMap{}.lookup)
	if got == nil || len(got) != 0 {
		t.Errorf("Verify(unsigned) = %#v, want empty slice", got)
	}
}

func TestVerifySeveralSignatures(t *testing.T) {
	msg := readTestdata(t, "multipart.msg")
	rsaSig := mustSign(t, msg, SignOptions{Domain: "example.com", Selector: "r", Key: testRSAKey(t)})
	edSig := mustSign(t, msg, SignOptions{Domain: "example.org", Selector: "e", Key: testEd25519Key()})
	lostSig := mustSign(t, msg, SignOptions{Domain: "example.net", Selector: "lost", Key: testEd25519Key()})
	dns := txtMap{
		"r._domainkey.example.com": {keyRecord(t, testRSAKey(t))},
		"e._domainkey.example.org": {keyRecord(t, testEd25519Key())},
	}
	got := verify(t, rsaSig+lostSig+edSig+msg, dns.lookup)
	want := []string{"example.com pass", "example.net permerror", "example.org pass"}
	if len(got) != len(want) {
		t.Fatalf("Verify = %+v, want %d results", got, len(want))
	}
	for i, r := range got {
		if s := r.Domain + " " + r.Result; s != want[i] {
			t.Errorf("result %d = %+v, want %s", i, r, want[i])
		}
	}
}

func TestVerifyTooManySignatures(t *testing.T) {
	msg := readTestdata(t, "trivial.msg")
	key := testEd25519Key()
	sig := mustSign(t, msg, SignOptions{Domain: "example.com", Selector: "sel", Key: key})
	dns := txtMap{"sel._domainkey.example.com": {keyRecord(t, key)}}
	got := verify(t, strings.Repeat(sig, maxSignatures+2)+msg, dns.lookup)
	if len(got) != maxSignatures+2 {
		t.Fatalf("got %d results, want %d", len(got), maxSignatures+2)
	}
	for i, r := range got {
		want := "pass"
		if i >= maxSignatures {
			want = "neutral"
		}
		if r.Result != want || r.Domain != "example.com" {
			t.Errorf("result %d = %+v, want %s", i, r, want)
		}
	}
}

func TestSignHeaderKeys(t *testing.T) {
	key := testEd25519Key()
	tests := []struct {
		name string
		msg  string
		keys []string
		want string
	}{
		{"default, oversigned From", readTestdata(t, "trivial.msg"), nil, "From:From:Subject:Date:Message-ID"},
		{"default, repeated fields", "From: a@example.com\r\nTo: b@example.com\r\nTo: c@example.com\r\nX-Other: 1\r\nList-Id: <l.example.com>\r\n\r\nhi\r\n", nil, "From:From:To:To:List-Id"},
		{"explicit", readTestdata(t, "trivial.msg"), []string{"from", "subject"}, "from:subject"},
	}
	for _, tt := range tests {
		sig := mustSign(t, tt.msg, SignOptions{Domain: "example.com", Selector: "sel", Key: key, HeaderKeys: tt.keys})
		if got := tagValue(sig, "h"); got != tt.want {
			t.Errorf("%s: h=%s, want %s", tt.name, got, tt.want)
		}
		dns := txtMap{"sel._domainkey.example.com": {keyRecord(t, key)}}
		if got := verify(t, sig+tt.msg, dns.lookup); len(got) != 1 || got[0].Result != "pass" {
			t.Errorf("%s: Verify = %+v", tt.name, got)
		}
	}
}

func TestSignOptions(t *testing.T) {
	key := testEd25519Key()
	msg := readTestdata(t, "trivial.msg")

	sig := mustSign(t, msg, SignOptions{Domain: "bücher.example", Selector: "sel", Key: key})
	if d := tagValue(sig, "d"); d != "xn--bcher-kva.example" {
		t.Errorf("d=%s, want the A-label form", d)
	}
	if c := tagValue(sig, "c"); c != "relaxed/relaxed" {
		t.Errorf("c=%s, want relaxed/relaxed", c)
	}

	// Without Now, x= follows the real clock.
	before := time.Now()
	sig = mustSign(t, msg, SignOptions{Domain: "example.com", Selector: "sel", Key: key, Expiration: time.Hour})
	var x int64
	if _, err := fmt.Sscan(tagValue(sig, "x"), &x); err != nil {
		t.Fatalf("x=%q: %v", tagValue(sig, "x"), err)
	}
	if lo, hi := before.Add(time.Hour).Unix(), time.Now().Add(time.Hour).Unix(); x < lo || x > hi {
		t.Errorf("x=%d, want within [%d, %d]", x, lo, hi)
	}
	if strings.Contains(mustSign(t, msg, SignOptions{Domain: "example.com", Selector: "sel", Key: key}), "x=") {
		t.Error("x= present without Expiration")
	}

	// A message without a body (and without the empty line) still signs.
	headerOnly := "From: a@example.com\r\nSubject: no body"
	sig = mustSign(t, headerOnly, SignOptions{Domain: "example.com", Selector: "sel", Key: key})
	dns := txtMap{"sel._domainkey.example.com": {keyRecord(t, key)}}
	if got := verify(t, sig+headerOnly, dns.lookup); len(got) != 1 || got[0].Result != "pass" {
		t.Errorf("Verify(header only) = %+v", got)
	}

	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		o       SignOptions
		msg     string
		wantErr string
	}{
		{SignOptions{Selector: "sel", Key: key}, msg, "no domain"},
		{SignOptions{Domain: "example.com", Key: key}, msg, "no selector"},
		{SignOptions{Domain: "example.com", Selector: "sel"}, msg, "no key"},
		{SignOptions{Domain: "example..com", Selector: "sel", Key: key}, msg, "invalid signing domain"},
		{SignOptions{Domain: "[127.0.0.1]", Selector: "sel", Key: key}, msg, "invalid signing domain"},
		{SignOptions{Domain: "example.com", Selector: "sel", Key: ecKey}, msg, "unsupported key type *ecdsa.PrivateKey"},
		{SignOptions{Domain: "example.com", Selector: "sel", Key: key, HeaderKeys: []string{"Subject"}}, msg, "must include From"},
		{SignOptions{Domain: "example.com", Selector: "sel", Key: key, Expiration: -time.Second}, msg, "negative expiration"},
		{SignOptions{Domain: "example.com", Selector: "sel", Key: key}, "Subject: no from\r\n\r\nbody\r\n", "no From field"},
	}
	for _, tt := range bad {
		if _, err := Sign(strings.NewReader(tt.msg), tt.o); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Sign(%+v) error = %v, want it to contain %q", tt.o, err, tt.wantErr)
		}
	}
}

func TestReadErrors(t *testing.T) {
	key := testEd25519Key()
	msg := readTestdata(t, "trivial.msg")
	signed := mustSign(t, msg, SignOptions{Domain: "example.com", Selector: "sel", Key: key}) + msg
	dns := txtMap{"sel._domainkey.example.com": {keyRecord(t, key)}}
	boom := errors.New("boom")
	for _, n := range []int{10, len(signed) - 3} {
		r := &failingReader{data: signed[:n], err: boom}
		if _, err := Sign(r, SignOptions{Domain: "example.com", Selector: "sel", Key: key}); !errors.Is(err, boom) {
			t.Errorf("Sign with read error after %d bytes = %v, want %v", n, err, boom)
		}
		r = &failingReader{data: signed[:n], err: boom}
		if _, err := Verify(context.Background(), r, dns.lookup); !errors.Is(err, boom) {
			t.Errorf("Verify with read error after %d bytes = %v, want %v", n, err, boom)
		}
	}
}

// failingReader returns data, then err.
type failingReader struct {
	data string
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestSignGolden pins Sign's exact output. Ed25519 signatures are
// deterministic, and the synctest bubble fixes the clock go-msgauth reads
// for t= at 2000-01-01T00:00:00Z.
func TestSignGolden(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		if !time.Now().Equal(now) {
			t.Fatalf("synctest clock starts at %v, want %v", time.Now(), now)
		}
		msg := readTestdata(t, "trivial.msg")
		o := SignOptions{
			Domain:     "example.com",
			Selector:   "golden",
			Key:        testEd25519Key(),
			Expiration: 7 * 24 * time.Hour,
			Now:        func() time.Time { return now },
		}
		got := mustSign(t, msg, o)
		golden := filepath.Join("testdata", "trivial.ed25519.golden")
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if want := readTestdata(t, "trivial.ed25519.golden"); got != want {
			t.Errorf("Sign =\n%s\nwant\n%s", got, want)
		}
		dns := txtMap{"golden._domainkey.example.com": {keyRecord(t, o.Key)}}
		if res := verify(t, got+msg, dns.lookup); len(res) != 1 || res[0].Result != "pass" {
			t.Errorf("Verify(golden) = %+v", res)
		}
	})
}
