package outbound

import (
	"encoding/json"
	"log/slog"
	"path"
	"reflect"
	"strings"
	"testing"

	smtp "github.com/emersion/go-smtp"

	"github.com/koukan/koukan/engine/rest"

	"github.com/koukan/koukan/internal/syncbuf"
)

// syncBuffer keeps what the gateway's goroutines log.
type syncBuffer struct{ syncbuf.Buffer }

// ended waits for the "transaction ended" line of up and returns it, raw and decoded.
func (b *syncBuffer) ended(t *testing.T, up *rest.Tx) (string, map[string]any) {
	t.Helper()
	id := path.Base(up.Location())
	var line string
	var rec map[string]any
	eventually(t, "the transaction ended line of "+id, func() bool {
		for _, l := range strings.Split(b.String(), "\n") {
			rec = nil
			if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == "transaction ended" && rec["tx"] == id {
				line = l
				return true
			}
		}
		return false
	})
	return line, rec
}

// The line a transaction ends with names the transaction, the peer it went to, its
// recipients' domains and the reply that decided it, but no address (not even one the peer
// repeats) and nothing of the message.
func TestTransactionEndedLog(t *testing.T) {
	peer := newGoPeer(t, peerOpts{})
	peer.rcpt = func(to string) error {
		if strings.HasPrefix(to, "gone@") {
			return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "<"+to+">: Recipient address rejected")
		}
		return nil
	}
	var logs syncBuffer
	g := newGateway(t, host(), func(o *Options) { o.Log = slog.New(slog.NewJSONHandler(&logs, nil)) })

	// Delivered to two of three recipients.
	up, _ := g.start(t, envelope(peer.port(), "alice@example.com"))
	addRcpts(t, up, 0, rcpts("bob@example.com", "gone@Other.Example", "carol@example.com"))
	st := putBody(t, up, strings.NewReader(message), int64(len(message)))
	if codes(st) != "250/[250 550 250]/250" {
		t.Fatalf("responses %s", codes(st))
	}
	delivered, _ := logs.ended(t, up)

	// Its one recipient refused: the router cancels, as rest_output does.
	up, _ = g.start(t, envelope(peer.port(), "alice@example.com"))
	addRcpts(t, up, 0, rcpts("gone@other.example"))
	if err := up.Cancel(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	refused, _ := logs.ended(t, up)

	for _, tc := range []struct {
		line string
		want map[string]any
	}{
		{delivered, map[string]any{"rcpt_domains": []any{"example.com", "other.example"},
			"reply": map[string]any{"code": 250.0, "enhanced": "2.0.0", "message": strings.TrimPrefix(st.DataResponse.Message, "2.0.0 ")}}},
		{refused, map[string]any{"rcpt_domains": []any{"other.example"},
			"reply": map[string]any{"code": 550.0, "enhanced": "5.1.1", "message": "<*@other.example>: Recipient address rejected"}}},
	} {
		var rec map[string]any
		if err := json.Unmarshal([]byte(tc.line), &rec); err != nil {
			t.Fatal(err)
		}
		tc.want["peer"], tc.want["tag"] = peer.addr, "outbound"
		for k, v := range tc.want {
			if !reflect.DeepEqual(rec[k], v) {
				t.Errorf("%s: %v, want %v in %s", k, rec[k], v, tc.line)
			}
		}
		for _, secret := range []string{"bob@", "gone@", "carol@", "alice@", "hello", "Subject"} {
			if strings.Contains(tc.line, secret) {
				t.Errorf("the line has %q: %s", secret, tc.line)
			}
		}
	}
}
