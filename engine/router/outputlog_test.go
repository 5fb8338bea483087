package router

import (
	"encoding/json"
	"log/slog"
	"path"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/tx"

	"github.com/koukan/koukan/internal/syncbuf"
)

// logBuffer keeps what the service's goroutines log.
type logBuffer struct{ syncbuf.Buffer }

// attemptLines are the "attempt finished" records logged for transaction id, raw and
// decoded.
func (l *logBuffer) attemptLines(t *testing.T, id string) (raw []string, recs []map[string]any) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON log line: %v: %s", err, line)
		}
		if rec["msg"] == "attempt finished" && rec["tx"] == id {
			raw, recs = append(raw, line), append(recs, rec)
		}
	}
	return raw, recs
}

// Each attempt's line says which transaction, from which sender, to which domains, what the
// next hop answered (code, enhanced code, text cut short) and how the attempt ended; never
// the recipient's address or the message.
func TestAttemptLog(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		up := newScript()
		long := strings.Repeat("é", 150) // 300 bytes, past the 200 the log keeps: cut between characters
		up.rejectRcpt = map[string]tx.Response{"nobody@Perm.Example": {Code: 550, Message: "5.1.1 no such user " + long}}
		up.rcpt = func(attempt int) tx.Response {
			if attempt == 1 {
				return tx.Response{Code: 451, Message: "4.2.2 mailbox full"}
			}
			return tx.Response{Code: 250, Message: "2.1.5 ok"}
		}
		up.data = func(int) tx.Response { return tx.Response{Code: 250, Message: "2.0.0 queued as 12345"} }
		var logs logBuffer
		r := startReplicaLogging(t, b, up.factory(), "http://127.0.0.1:9", slog.New(slog.NewJSONHandler(&logs, nil)))

		perm := r.post("submission", `{"mail_from":{"m":"alice@example.com"},"rcpt_to":[{"m":"nobody@Perm.Example"}],"body":{"inline":"Subject: secret\r\n\r\nthe body\r\n"}}`).header.Get("Location")
		later := r.post("submission", `{"mail_from":{"m":"alice@example.com"},"rcpt_to":[{"m":"later@retry.example"}],"body":{"inline":"Subject: secret\r\n\r\nthe body\r\n"}}`).header.Get("Location")
		final(t, perm)
		final(t, later)

		type want struct {
			outcome, final string
			reply          map[string]any
		}
		for loc, wants := range map[string][]want{
			perm: {{"failed", "upstream rcpt_response permfail",
				map[string]any{"code": 550.0, "enhanced": "5.1.1", "message": "no such user " + strings.Repeat("é", 93) + "..."}}},
			later: {
				{"retry", "", map[string]any{"code": 451.0, "enhanced": "4.2.2", "message": "mailbox full"}},
				{"delivered", "upstream response success", map[string]any{"code": 250.0, "enhanced": "2.0.0", "message": "queued as 12345"}},
			},
		} {
			id := path.Base(loc)
			// The line follows the final write that final() saw: wait for it.
			var raw []string
			var recs []map[string]any
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if raw, recs = logs.attemptLines(t, id); len(recs) >= len(wants) || time.Now().After(deadline) {
					break
				}
			}
			if len(recs) != len(wants) {
				t.Fatalf("%s: %d attempt lines, want %d:\n%s", id, len(recs), len(wants), strings.Join(raw, "\n"))
			}
			domain := map[string]string{perm: "perm.example", later: "retry.example"}[loc]
			for i, w := range wants {
				rec := recs[i]
				if rec["sender"] != "submission" || rec["attempt"] != float64(i+1) || rec["outcome"] != w.outcome || rec["final"] != w.final ||
					!reflect.DeepEqual(rec["rcpt_domains"], []any{domain}) || !reflect.DeepEqual(rec["reply"], w.reply) {
					t.Errorf("attempt %d of %s:\n got %s\nwant sender submission, rcpt_domains [%s], outcome %s, final %q, reply %v",
						i+1, id, raw[i], domain, w.outcome, w.final, w.reply)
				}
				if _, ok := rec["sender_tag"]; !ok {
					t.Errorf("no sender_tag: %s", raw[i])
				}
				if _, ok := rec["next_attempt"]; ok != (w.outcome == "retry") {
					t.Errorf("next_attempt shown %v for outcome %s: %s", ok, w.outcome, raw[i])
				}
				for _, secret := range []string{"nobody@", "later@", "alice@", "the body", "secret"} {
					if strings.Contains(raw[i], secret) {
						t.Errorf("the line has %q: %s", secret, raw[i])
					}
				}
			}
		}
	})
}

// An exploded transaction's line names its recipients' transactions, whose own lines then
// tell what became of each.
func TestAttemptLogNamesRecipientTransactions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		var logs logBuffer
		r := startReplicaLogging(t, b, newScript().factory(), "http://127.0.0.1:9", slog.New(slog.NewJSONHandler(&logs, nil)))
		loc := r.post("ingress", `{"mail_from":{"m":"alice@example.com"}}`).header.Get("Location")
		smtpInto(t, loc, []string{"bob1@example.com", "bob2@example.com"}, message)
		var recs []map[string]any
		eventually(t, "the exploded transaction's line", func() bool {
			_, recs = logs.attemptLines(t, path.Base(loc))
			return len(recs) == 1
		})
		up, _ := recs[0]["upstream"].(string)
		children := strings.Split(up, ",")
		if len(children) != 2 {
			t.Fatalf("upstream %q: want the two recipients' transaction ids", up)
		}
		for _, id := range children {
			eventually(t, "recipient "+id+"'s line", func() bool {
				_, recs := logs.attemptLines(t, id)
				return len(recs) == 1 && recs[0]["outcome"] == "delivered"
			})
		}
	})
}
