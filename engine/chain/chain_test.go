package chain_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/chain/chaintest"
	"github.com/koukan/koukan/engine/tx"
)

func envelope(rcpts ...string) *tx.Tx {
	t := &tx.Tx{MailFrom: &tx.Mailbox{Address: "alice@example.com"}}
	for _, r := range rcpts {
		t.RcptTo = append(t.RcptTo, tx.Mailbox{Address: r})
	}
	return t
}

func message(body string) *chain.Message {
	return chain.NewMessage(int64(len(body)), func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(body)), nil
	})
}

func TestEarlyRejectStopsTheChain(t *testing.T) {
	up := &chaintest.Upstream{}
	reject := chaintest.Func(func(_ context.Context, u *chain.Update) error {
		if u.Mail {
			u.SetMailResponse(tx.Response{Code: 550, Message: "5.7.1 no"})
		}
		return nil
	})
	c := chain.New(reject, up)
	tr := envelope("bob@example.com")
	if err := c.Update(context.Background(), tr, message("x")); err != nil {
		t.Fatal(err)
	}
	if tr.MailResponse.Code != 550 || len(up.Rcpts) != 0 || len(up.Bodies) != 0 {
		t.Errorf("upstream was reached after a reject at MAIL: %+v %v", tr.MailResponse, up.Rcpts)
	}
	if len(tr.RcptResponse) != 1 || tr.RcptResponse[0].Code != 503 {
		t.Errorf("rcpt after failed MAIL: %+v", tr.RcptResponse)
	}
}

func TestPerRecipientAnswersComeInOrder(t *testing.T) {
	up := &chaintest.Upstream{}
	var asked [][]int
	policy := chaintest.Func(func(_ context.Context, u *chain.Update) error {
		asked = append(asked, u.Rcpts)
		for _, i := range u.Rcpts {
			if strings.HasPrefix(u.Tx.RcptTo[i].Address, "nobody") {
				u.SetRcptResponse(i, tx.Response{Code: 550, Message: "5.1.1 no such user"})
			}
		}
		return nil
	})
	c := chain.New(policy, up)
	tr := envelope("nobody@example.com", "bob@example.com")
	ctx := context.Background()
	if err := c.Update(ctx, tr, nil); err != nil {
		t.Fatal(err)
	}
	if len(tr.RcptResponse) != 2 || tr.RcptResponse[0].Code != 550 || tr.RcptResponse[1].Code != 250 {
		t.Errorf("responses %+v", tr.RcptResponse)
	}
	if len(up.Rcpts) != 1 || up.Rcpts[0] != 1 {
		t.Errorf("upstream asked for %v, want only the accepted recipient 1", up.Rcpts)
	}
	// A later recipient and then the body arrive in later updates.
	tr.RcptTo = append(tr.RcptTo, tx.Mailbox{Address: "carol@example.com"})
	if err := c.Update(ctx, tr, nil); err != nil {
		t.Fatal(err)
	}
	// Nothing new: a heartbeat.
	if err := c.Update(ctx, tr, nil); err != nil || up.Heartbeats != 1 {
		t.Errorf("heartbeat: %v, %d", err, up.Heartbeats)
	}
	if err := c.Update(ctx, tr, message("Subject: x\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	// Passes: mail, recipients 0 and 1, recipient 2, a heartbeat, the data.
	if len(asked) != 5 || len(asked[1]) != 2 || len(asked[2]) != 1 || asked[2][0] != 2 || len(asked[4]) != 0 {
		t.Errorf("policy saw recipients %v", asked)
	}
	if tr.DataResponse == nil || tr.DataResponse.Code != 250 || len(up.Bodies) != 1 {
		t.Errorf("data %+v bodies %d", tr.DataResponse, len(up.Bodies))
	}
	// Once answered, the transaction is not live: nothing runs.
	if err := c.Update(ctx, tr, message("")); err != nil || up.Heartbeats != 1 || len(asked) != 5 {
		t.Errorf("update after the data response ran steps: %v, %d, %d", err, up.Heartbeats, len(asked))
	}
}

// Mail, recipients and data arriving in one update still pass through the chain one phase at
// a time: a recipient refused by an early step does not keep MAIL from being answered
// upstream.
func TestPhasesRunInOrder(t *testing.T) {
	up := &chaintest.Upstream{}
	var phases []string
	policy := chaintest.Func(func(_ context.Context, u *chain.Update) error {
		switch {
		case u.Mail:
			phases = append(phases, "mail")
		case len(u.Rcpts) > 0:
			phases = append(phases, "rcpt")
			u.SetRcptResponse(0, tx.Response{Code: 550, Message: "5.1.1 no"})
		case u.Data:
			phases = append(phases, "data")
		}
		return nil
	})
	tr := envelope("nobody@example.com")
	if err := chain.New(policy, up).Update(context.Background(), tr, message("x")); err != nil {
		t.Fatal(err)
	}
	if strings.Join(phases, " ") != "mail rcpt" || tr.MailResponse == nil || tr.MailResponse.Code != 250 ||
		tr.RcptResponse[0].Code != 550 || tr.DataResponse.Code != 503 || len(up.Bodies) != 0 {
		t.Errorf("phases %v, mail %+v, rcpt %+v, data %+v", phases, tr.MailResponse, tr.RcptResponse, tr.DataResponse)
	}
}

func TestAllRecipientsFailedFailsTheData(t *testing.T) {
	up := &chaintest.Upstream{Rcpt: func(*tx.Tx, int) tx.Response { return tx.Response{Code: 450, Message: "4.2.1 later"} }}
	c := chain.New(up)
	tr := envelope("bob@example.com")
	if err := c.Update(context.Background(), tr, message("body")); err != nil {
		t.Fatal(err)
	}
	if tr.DataResponse == nil || tr.DataResponse.Code != 503 || len(up.Bodies) != 0 {
		t.Errorf("data %+v, bodies sent %d", tr.DataResponse, len(up.Bodies))
	}
}

func TestStepPanicIsAnError(t *testing.T) {
	boom := chaintest.Func(func(context.Context, *chain.Update) error { panic("boom") })
	err := chain.New(boom, &chaintest.Upstream{}).Update(context.Background(), envelope("b@x"), nil)
	var se *chain.StepError
	if !errors.As(err, &se) || se.Step != 0 || !strings.Contains(err.Error(), "boom") {
		t.Errorf("err = %v", err)
	}
}

func TestMessagePrependsStackOnTop(t *testing.T) {
	up := &chaintest.Upstream{}
	received := chaintest.Func(func(_ context.Context, u *chain.Update) error {
		if u.Data {
			u.Message.Prepend("Received: by here\r\n")
		}
		return nil
	})
	signer := chaintest.Func(func(_ context.Context, u *chain.Update) error {
		if u.Data {
			u.Message.Prepend("DKIM-Signature: v=1\r\n")
		}
		return nil
	})
	c := chain.New(received, signer, up)
	msg := message("Subject: x\r\n\r\nhi\r\n")
	if err := c.Update(context.Background(), envelope("b@x"), msg); err != nil {
		t.Fatal(err)
	}
	want := "DKIM-Signature: v=1\r\nReceived: by here\r\nSubject: x\r\n\r\nhi\r\n"
	if len(up.Bodies) != 1 || string(up.Bodies[0]) != want || msg.Size() != int64(len(want)) {
		t.Errorf("upstream got %q (size %d)", up.Bodies, msg.Size())
	}
}
