package inbound

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	"github.com/koukan/koukan/engine/rest/resttest"
)

// The users of writeSecrets and their secrets.
var testSecrets = map[string]string{
	"machine": "mQ3_hH8x2kR0pLzE5uVw7A", // SHA-256, the reference format
	"alice":   "alice's bcrypt secret",  // $2a$
	"bob":     "bob's $2y$ secret",
	"carol":   "carol's $2b$ secret",
}

func writeSecrets(t *testing.T) string {
	t.Helper()
	hashes := map[string]string{}
	sum := sha256.Sum256([]byte(testSecrets["machine"]))
	hashes["machine"] = strings.ToUpper(hex.EncodeToString(sum[:])) // either case
	for user, prefix := range map[string]string{"alice": "$2a$", "bob": "$2y$", "carol": "$2b$"} {
		h, err := bcrypt.GenerateFromPassword([]byte(testSecrets[user]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		hashes[user] = prefix + string(h[4:])
	}
	data, _ := json.Marshal(hashes)
	path := filepath.Join(t.TempDir(), "secrets.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSecretsUnits(t *testing.T) {
	t.Parallel()
	s, err := loadSecrets(writeSecrets(t))
	if err != nil {
		t.Fatal(err)
	}
	for user, secret := range testSecrets {
		if !s.check(user, secret) {
			t.Errorf("%s: the right secret fails", user)
		}
		if s.check(user, secret+"x") || s.check(user, "") {
			t.Errorf("%s: a wrong secret passes", user)
		}
	}
	if s.check("nobody", testSecrets["alice"]) || s.check("", "") {
		t.Error("an unknown user passes")
	}
	for name, content := range map[string]string{
		"not json":   "{",
		"not hex":    `{"u": "zz"}`,
		"short hex":  `{"u": "abcd"}`,
		"bad bcrypt": `{"u": "$2a$10$short"}`,
		"empty user": `{"": "` + strings.Repeat("a", 64) + `"}`,
		"not string": `{"u": 5}`,
	} {
		path := filepath.Join(t.TempDir(), "s.json")
		os.WriteFile(path, []byte(content), 0o600)
		if _, err := loadSecrets(path); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestSTARTTLSAndAuth(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := serverTLS(t)
	e := start(t, Options{TLS: srvTLS, AuthSecrets: writeSecrets(t)}, resttest.Options{})

	// Before TLS: STARTTLS offered; AUTH and REQUIRETLS are not, and AUTH
	// is refused.
	r := e.dialRaw()
	r.expect("220 ")
	caps := r.cmd("EHLO client.test", "250")
	if !strings.Contains(caps, "STARTTLS") || strings.Contains(caps, "AUTH") || strings.Contains(caps, "REQUIRETLS") {
		t.Errorf("EHLO before TLS: %q", caps)
	}
	ir := base64.StdEncoding.EncodeToString([]byte("\x00machine\x00" + testSecrets["machine"]))
	r.cmd("AUTH PLAIN "+ir, "523 5.7.10")
	r.cmd("MAIL FROM:<a@example.com> REQUIRETLS", "530 5.7.10")
	r.cmd("QUIT", "221")

	c := e.clientStartTLS(cliTLS)
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered on TLS")
	}
	if ok, mechs := c.Extension("AUTH"); !ok || mechs != "PLAIN LOGIN" {
		t.Errorf("AUTH %v %q", ok, mechs)
	}
	if ok, _ := c.Extension("REQUIRETLS"); !ok {
		t.Error("no REQUIRETLS on TLS")
	}
	wantCode(t, c.Auth(sasl.NewPlainClient("", "machine", "wrong")), 535, "5.7.8")
	wantCode(t, c.Auth(sasl.NewPlainClient("alice", "machine", testSecrets["machine"])), 535, "5.7.8") // acting as another
	if err := c.Auth(sasl.NewPlainClient("", "machine", testSecrets["machine"])); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@example.com", &smtp.MailOptions{RequireTLS: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.com", nil); err != nil {
		t.Fatal(err)
	}
	w, _ := c.Data()
	w.Write([]byte("secure\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rc := e.finished(1)[0]
	for k, want := range map[string]string{"tls": "true", "auth": "true", "esmtp": "true", "tls_version": `"TLS1.3"`} {
		if got := meta(t, rc, k); got != want {
			t.Errorf("smtp_meta.%s = %s, want %s", k, got, want)
		}
	}
	if cipher := meta(t, rc, "tls_cipher"); !strings.HasPrefix(cipher, `"TLS_`) {
		t.Errorf("tls_cipher %s", cipher)
	}
	if p := params(*rc.Tx.MailFrom); !strings.Contains(p, "REQUIRETLS") {
		t.Errorf("mail params %s", p)
	}

	// LOGIN, with the bcrypt users.
	for _, user := range []string{"alice", "bob", "carol"} {
		c := e.clientStartTLS(cliTLS)
		if err := c.Auth(sasl.NewLoginClient(user, testSecrets[user])); err != nil {
			t.Errorf("%s: %v", user, err)
		}
		c.Quit()
	}
	c = e.clientStartTLS(cliTLS)
	wantCode(t, c.Auth(sasl.NewLoginClient("bob", testSecrets["alice"])), 535, "5.7.8")
}

func TestImplicitTLS(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := serverTLS(t)
	e := start(t, Options{TLS: srvTLS, ImplicitTLS: true, AuthSecrets: writeSecrets(t), MaxConnsPerIP: 1}, resttest.Options{})
	conn, err := tls.Dial("tcp", e.addr, cliTLS)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClient(conn)
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered with implicit TLS")
	}
	if err := c.Auth(sasl.NewLoginClient("bob", testSecrets["bob"])); err != nil {
		t.Fatal(err)
	}
	if _, err := send(c, "a@example.com", []string{"b@example.com"}, "over TLS\r\n"); err != nil {
		t.Fatal(err)
	}
	rc := e.finished(1)[0]
	if meta(t, rc, "tls") != "true" || meta(t, rc, "auth") != "true" || meta(t, rc, "esmtp") != "true" {
		t.Errorf("smtp_meta %s", rc.Tx.SMTPMeta)
	}

	// A connection over the limit is told so in TLS.
	over, err := tls.Dial("tcp", e.addr, cliTLS)
	if err != nil {
		t.Fatal(err)
	}
	newRaw(t, over).expect("421 4.7.0")
}

func TestAllowInsecureAuth(t *testing.T) {
	t.Parallel()
	e := start(t, Options{AuthSecrets: writeSecrets(t), AllowInsecureAuth: true}, resttest.Options{})
	c := e.client()
	if ok, _ := c.Extension("AUTH"); !ok {
		t.Fatal("no AUTH")
	}
	if err := c.Auth(sasl.NewPlainClient("", "carol", testSecrets["carol"])); err != nil {
		t.Fatal(err)
	}
	// A garbled PLAIN response fails like a wrong secret, with no Go text.
	r := e.dialRaw()
	r.expect("220 ")
	r.cmd("EHLO client.test", "250")
	text := r.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("no nuls here")), "535 5.7.8")
	checkNoGoText(t, text)
	r.cmd("AUTH LOGIN", "334 "+base64.StdEncoding.EncodeToString([]byte("Username:")))
	r.cmd(base64.StdEncoding.EncodeToString([]byte("carol")), "334 "+base64.StdEncoding.EncodeToString([]byte("Password:")))
	r.cmd(base64.StdEncoding.EncodeToString([]byte(testSecrets["carol"])), "235")
	r.cmd("AUTH LOGIN", "503") // once per session
}
