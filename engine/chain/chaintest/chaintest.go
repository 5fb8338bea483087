// Package chaintest has steps for tests of chains and of what runs them.
package chaintest

import (
	"context"
	"io"
	"sync"

	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/tx"
)

// Upstream is a terminal step that answers like an SMTP server whose replies a test scripts:
// mail, each pending recipient, and the message once it is complete. A nil function answers
// 250. It records what it was asked.
type Upstream struct {
	Mail func(t *tx.Tx) tx.Response
	Rcpt func(t *tx.Tx, i int) tx.Response
	Data func(t *tx.Tx, body []byte) tx.Response

	mu         sync.Mutex
	Rcpts      []int
	Bodies     [][]byte
	Heartbeats int
}

var ok = tx.Response{Code: 250, Message: "ok"}

func (s *Upstream) Update(ctx context.Context, u *chain.Update) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.Heartbeat {
		s.Heartbeats++
	}
	if u.Mail {
		u.SetMailResponse(answer(s.Mail, u.Tx))
	}
	for _, i := range u.Pending() {
		if i < len(u.Tx.RcptTo) && !contains(s.Rcpts, i) {
			s.Rcpts = append(s.Rcpts, i)
			r := ok
			if s.Rcpt != nil {
				r = s.Rcpt(u.Tx, i)
			}
			u.SetRcptResponse(i, r)
		}
	}
	if u.Data && u.RcptOK() {
		rc, err := u.Message.Open(ctx)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		s.Bodies = append(s.Bodies, body)
		r := ok
		if s.Data != nil {
			r = s.Data(u.Tx, body)
		}
		u.SetDataResponse(r)
	}
	return nil
}

func answer(f func(*tx.Tx) tx.Response, t *tx.Tx) tx.Response {
	if f == nil {
		return ok
	}
	return f(t)
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// Func is a step made of a function, for policies in tests.
type Func func(ctx context.Context, u *chain.Update) error

func (f Func) Update(ctx context.Context, u *chain.Update) error { return f(ctx, u) }
