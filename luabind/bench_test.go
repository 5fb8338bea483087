package luabind

import (
	"context"
	"fmt"
	"testing"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/tx"
)

// goHook is the Go twin of trivialHook: it reads the envelope and answers nothing.
type goHook struct{ seen int }

func (g *goHook) Update(_ context.Context, u *chain.Update) error {
	if u.Mail && u.Tx.MailFrom != nil && u.Tx.MailFrom.Address != "" {
		g.seen++
	}
	for _, i := range u.Rcpts {
		if u.Tx.RcptTo[i].Address != "" {
			g.seen++
		}
	}
	return nil
}

const trivialHook = `local M = {}
function M.mail(tx) if tx.mail_from == "" then return nil end end
function M.rcpt(tx, rcpt) if rcpt.address == "" then return nil end end
return M
`

// benchChain runs whole transactions (mail, one recipient, the message) through steps.
func benchChain(b *testing.B, steps func() []chain.Step) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		t := &tx.Tx{RestID: "b", MailFrom: &tx.Mailbox{Address: "a@example.com"}, RcptTo: []tx.Mailbox{{Address: "b@example.com"}}}
		if err := chain.New(append(steps(), accept{})...).Update(ctx, t, messageOf("Subject: x\r\n\r\nhi\r\n")); err != nil {
			b.Fatal(err)
		}
		if t.DataResponse == nil || t.DataResponse.Code != 250 {
			b.Fatalf("data %v", t.DataResponse)
		}
	}
}

// BenchmarkHook compares one trivial hook in Lua with the same in Go, per transaction
// (two hook calls: mail and rcpt), and chains of six.
func BenchmarkHook(b *testing.B) {
	files := map[string]string{}
	for i := range 6 {
		files[fmt.Sprintf("filters/t%d.lua", i)] = trivialHook
	}
	rt := newRuntime(b, scripts(b, files))
	for _, n := range []int{1, 6} {
		b.Run(fmt.Sprintf("go/%d", n), func(b *testing.B) {
			benchChain(b, func() []chain.Step {
				out := make([]chain.Step, n)
				for i := range out {
					out[i] = &goHook{}
				}
				return out
			})
		})
		b.Run(fmt.Sprintf("lua/%d", n), func(b *testing.B) {
			// Configured steps, as the router has them: made once, instanced per attempt.
			configured := make([]*config.Step, n)
			for i := range configured {
				configured[i] = &config.Step{Filter: fmt.Sprintf("t%d", i)}
			}
			benchChain(b, func() []chain.Step {
				out := make([]chain.Step, n)
				for i, cs := range configured {
					s, err := rt.NewStep(cs)
					if err != nil {
						b.Fatal(err)
					}
					out[i] = s
				}
				return out
			})
		})
	}
}
