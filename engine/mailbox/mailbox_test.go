package mailbox

import (
	"encoding/json"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// An LMTP client delivers to two recipients: each gets its own durable copy with
// Delivered-To, listed and readable over HTTP.
func TestDeliverAndList(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mailbox")
	m, err := New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go m.ServeLMTP(ln)
	defer m.Close()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("alice@example.com", nil); err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{"bob@localhost", "carol@localhost"} {
		if err := c.Rcpt(rcpt, nil); err != nil {
			t.Fatal(err)
		}
	}
	wc, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(wc, "From: Alice <alice@example.com>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\nhello\r\n")
	if _, err := wc.CloseWithLMTPResponse(); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL + "/mailbox")
	if err != nil {
		t.Fatal(err)
	}
	var list []Message
	json.NewDecoder(res.Body).Decode(&list)
	res.Body.Close()
	if len(list) != 2 || list[0].Subject != "café" || list[0].From != "Alice <alice@example.com>" {
		t.Fatalf("list %+v", list)
	}
	tos := list[0].To + " " + list[1].To
	if !strings.Contains(tos, "bob@localhost") || !strings.Contains(tos, "carol@localhost") {
		t.Errorf("recipients %q", tos)
	}
	res, _ = srv.Client().Get(srv.URL + "/mailbox/" + list[0].ID)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.Header.Get("Content-Type") != "message/rfc822" || !strings.HasPrefix(string(body), "Delivered-To: ") || !strings.HasSuffix(string(body), "hello\r\n") {
		t.Errorf("message %q", body)
	}
	for _, bad := range []string{"../x", ".incoming-1", "nope"} {
		if res, _ := srv.Client().Get(srv.URL + "/mailbox/" + bad); res.StatusCode != 404 {
			t.Errorf("%s: %d", bad, res.StatusCode)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("a temporary file was left: %s", e.Name())
		}
	}
}
