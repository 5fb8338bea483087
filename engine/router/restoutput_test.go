package router

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/builtin"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/chain/chaintest"
	"github.com/koukan/koukan/engine/rest/resttest"
	"github.com/koukan/koukan/engine/tx"
)

// The router delivers through rest_output to a REST receiver over real HTTP (reference
// §2.11), and the receiver's answers come back to the client.
func TestRestOutputToReceiver(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		var rcptCalls int
		recv := resttest.NewReceiver(resttest.Options{Respond: func(req resttest.Request) resttest.Reply {
			switch {
			case req.Phase == resttest.PhaseRcpt && req.Tx.RcptTo[req.Rcpt].Address == "later@example.com":
				rcptCalls++
				if rcptCalls == 1 {
					return resttest.Reply{Response: tx.Response{Code: 450, Message: "4.2.1 mailbox busy"}}
				}
			case req.Phase == resttest.PhaseData && req.Tx.RcptTo[0].Address == "slow@example.com":
				return resttest.Reply{Delay: 3 * time.Second}
			case req.Phase == resttest.PhaseRcpt && req.Tx.RcptTo[req.Rcpt].Address == "nobody@example.com":
				return resttest.Reply{Response: tx.Response{Code: 550, Message: "5.1.1 no such user"}}
			}
			return resttest.Reply{}
		}})
		defer recv.Close()
		r := startReplicaUpstream(t, b, builtin.New(builtin.Options{}), recv.URL())

		got := final(t, r.post("submission", inlineBody).header.Get("Location"))
		if codes(got) != "250/[250]/250" || got["final_attempt_reason"] != "upstream response success" {
			t.Errorf("delivery: %s %v", codes(got), got["final_attempt_reason"])
		}
		received, err := recv.WaitFor(t.Context(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if rx := received[0]; string(rx.Body) != message || rx.Tx.MailFrom.Address != "alice@example.com" ||
			rx.Tx.RcptTo[0].Address != "bob@example.com" || rx.Tx.Sender.Name != "submission" {
			t.Errorf("receiver got %+v %q", rx.Tx, rx.Body)
		}

		got = final(t, r.post("submission", `{"mail_from":{"m":"a@example.com"},"rcpt_to":[{"m":"later@example.com"}],"body":{"inline":"hi"}}`).header.Get("Location"))
		if codes(got) != "250/[250]/250" || got["attempt_count"] != 2.0 {
			t.Errorf("retry after a busy mailbox: %s attempt %v", codes(got), got["attempt_count"])
		}
		got = final(t, r.post("submission", `{"mail_from":{"m":"a@example.com"},"rcpt_to":[{"m":"nobody@example.com"}],"body":{"inline":"hi"}}`).header.Get("Location"))
		if codes(got) != "250/[550]/503" || got["final_attempt_reason"] != "upstream rcpt_response permfail" {
			t.Errorf("unknown recipient: %s %v", codes(got), got["final_attempt_reason"])
		}
		// The data answer does not come within data_timeout (1 s): a temporary failure.
		loc := r.post("submission", `{"mail_from":{"m":"a@example.com"},"rcpt_to":[{"m":"slow@example.com"}],"body":{"inline":"hi"}}`).header.Get("Location")
		eventually(t, "data timeout", func() bool {
			return strings.Contains(string(do(t, "GET", loc, nil).body), `"data_response":{"code":450,"message":"4.4.7 upstream timeout (rest_output)"}`)
		})
	})
}

// A cancelled transaction is cancelled upstream too.
func TestRestOutputCancel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		recv := resttest.NewReceiver(resttest.Options{})
		defer recv.Close()
		r := startReplicaUpstream(t, b, builtin.New(builtin.Options{}), recv.URL())
		loc := r.post("submission", `{`+envelope+`}`).header.Get("Location")
		eventually(t, "upstream created", func() bool { return len(recv.Transactions()) == 1 })
		eventually(t, "recipient answered", func() bool {
			return strings.Contains(string(do(t, "GET", loc, nil).body), `"rcpt_response"`)
		})
		do(t, "POST", loc+"/cancel", nil)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		for ctx.Err() == nil && !recv.Transactions()[0].Tx.Cancelled {
			time.Sleep(20 * time.Millisecond)
		}
		if !recv.Transactions()[0].Tx.Cancelled {
			t.Errorf("upstream transaction not cancelled")
		}
		// An attempt ends through more than one path (the cancel itself, the chain's
		// release, Close): the upstream hears it once.
		final(t, loc)
		time.Sleep(300 * time.Millisecond) // Close comes after the final write
		if n := recv.Transactions()[0].Cancels; n != 1 {
			t.Errorf("the upstream was sent %d cancels, want 1", n)
		}
	})
}

// With the destination option receive_parsing, the receiver gets the parsed message and its
// parts before the raw bytes (reference §11.2 scenario 12; with the 8-byte inline budget of
// §11.1 scenario 6, the html part is a blob too).
func TestRestOutputReceiveParsing(t *testing.T) {
	msg, err := os.ReadFile("../mime/testdata/multipart.msg")
	if err != nil {
		t.Fatal(err)
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		recv := resttest.NewReceiver(resttest.Options{Parsing: true})
		defer recv.Close()
		out := builtin.New(builtin.Options{})
		// A router step would set the option; here the chain sets it itself.
		f := chain.FactoryFunc(func(s *config.Step) (chain.Step, error) {
			step, err := out.NewStep(s)
			if err != nil {
				return nil, err
			}
			return chaintest.Func(func(ctx context.Context, u *chain.Update) error {
				u.Tx.Options = map[string]any{"receive_parsing": map[string]any{"max_inline": 8}}
				return step.Update(ctx, u)
			}), nil
		})
		r := startReplicaUpstream(t, b, f, recv.URL())
		body, _ := json.Marshal(string(msg))
		got := final(t, r.post("submission", `{`+envelope+`,"body":{"inline":`+string(body)+`}}`).header.Get("Location"))
		if codes(got) != "250/[250]/250" {
			t.Fatalf("delivery: %s %v", codes(got), got["final_attempt_reason"])
		}
		received, err := recv.WaitFor(t.Context(), 1)
		if err != nil {
			t.Fatal(err)
		}
		rx := received[0]
		if !strings.Contains(string(rx.Parsed), `["subject","hello"]`) || string(rx.Body) != string(msg) {
			t.Errorf("parsed %s\nraw %q", rx.Parsed, rx.Body)
		}
		if len(rx.Parts) != 3 || string(rx.Parts["0"]) != "<b>hello</b>" || string(rx.Parts["1"]) != "yolocat" || string(rx.Parts["2"]) != "yolocat2" {
			t.Errorf("parts %q", rx.Parts)
		}
	})
}
