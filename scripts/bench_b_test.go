package scripts_test

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koukan/koukan/engine/auth"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/tx"
)

// authBenchMessage is a message of about size bytes: a usual header and a text body.
func authBenchMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString(authPlainMessage[:strings.Index(authPlainMessage, "\r\n\r\n")+4])
	line := "The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return b.Bytes()
}

// authAccept ends the benchmark's chain: it answers everything and, unlike a real
// upstream, does not read the message, so that only signing is measured.
type authAccept struct{}

func (authAccept) Update(_ context.Context, u *chain.Update) error {
	ok := tx.Response{Code: 250, Message: "ok"}
	if u.Mail {
		u.SetMailResponse(ok)
	}
	for _, i := range u.Pending() {
		u.SetRcptResponse(i, ok)
	}
	if u.Data {
		u.SetDataResponse(ok)
	}
	return nil
}

// BenchmarkDkimSign compares the dkim_sign step (a whole transaction through a chain of
// the Lua step, the key file checked for changes per message) with
// engine/auth.Sign called directly with a parsed key, for RSA-2048 and Ed25519 keys and
// a 10 KB and a 1 MB message.
//
//	go test ./scripts/ -run '^$' -bench DkimSign
func BenchmarkDkimSign(b *testing.B) {
	dir := b.TempDir()
	keys := []struct {
		name string
		key  crypto.Signer
	}{{"rsa2048", authRSAKey(b, 0)}, {"ed25519", authEd25519Key("bench")}}
	env := newAuthEnv(b, nil)
	for _, k := range keys {
		path := authKeyFile(b, filepath.Join(dir, k.name+".pem"), k.key)
		step := env.step(b, "dkim_sign", map[string]any{"key": path, "domain": "example.com", "selector": "sel"})
		for _, size := range []int{10 << 10, 1 << 20} {
			msg := authBenchMessage(size)
			name := fmt.Sprintf("%s/%dKB", k.name, size>>10)
			b.Run(name+"/lua", func(b *testing.B) {
				b.SetBytes(int64(len(msg)))
				for b.Loop() {
					tr := &tx.Tx{RestID: "b", MailFrom: &tx.Mailbox{Address: "alice@example.com"}, RcptTo: []tx.Mailbox{{Address: "bob@example.net"}}}
					m := chain.NewMessage(int64(len(msg)), func(context.Context) (io.ReadCloser, error) {
						return io.NopCloser(bytes.NewReader(msg)), nil
					})
					if err := chain.New(step, authAccept{}).Update(context.Background(), tr, m); err != nil {
						b.Fatal(err)
					}
					if tr.DataResponse == nil || tr.DataResponse.Code != 250 {
						b.Fatalf("data response %v", tr.DataResponse)
					}
				}
			})
			b.Run(name+"/go", func(b *testing.B) {
				b.SetBytes(int64(len(msg)))
				for b.Loop() {
					if _, err := auth.Sign(bytes.NewReader(msg), auth.SignOptions{Domain: "example.com", Selector: "sel", Key: k.key}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
