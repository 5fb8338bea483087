package router

import (
	"context"
	"fmt"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/tx"
)

// addRoute is the add_route step (reference §6.14): it forks a copy of a single-recipient
// transaction to another sender's chain, for example a system of record. Run inline, the
// copy's failures are the original's (it can reject the message); with store_and_forward the
// copy is a durable transaction of its own that the original does not wait for.
type addRoute struct {
	s    *Service
	opts config.AddRouteStep

	// Inline: the copy's chain and its view.
	sub  *chain.Chain
	view *tx.Tx
	msg  *chain.Message
	// Store-and-forward: the copy's transaction.
	id string
}

func (s *Service) newAddRoute(opts config.AddRouteStep) (*addRoute, error) {
	a := &addRoute{s: s, opts: opts}
	if opts.StoreAndForward {
		return a, nil
	}
	sender := s.cfg.Sender(opts.Sender)
	if sender == nil {
		return nil, fmt.Errorf("add_route sender %q is not in the config", opts.Sender)
	}
	settings, ok := sender.ForTag(opts.Tag)
	if !ok {
		return nil, fmt.Errorf("add_route sender %q has no tag %q", opts.Sender, opts.Tag)
	}
	sub, err := chain.Build(s.stepsFor(settings), s.cfg.Endpoint(settings.OutputChain).Chain)
	if err != nil {
		return nil, err
	}
	a.sub, a.view = sub, &tx.Tx{Sender: &tx.Sender{Name: opts.Sender, Tag: opts.Tag}}
	return a, nil
}

func (a *addRoute) Update(ctx context.Context, u *chain.Update) error {
	if a.opts.StoreAndForward {
		return a.forward(ctx, u)
	}
	t, v := u.Tx, a.view
	if v.MailFrom == nil && t.MailFrom != nil {
		v.MailFrom, v.RemoteHost, v.LocalHost, v.SMTPMeta, v.RestID = t.MailFrom, t.RemoteHost, t.LocalHost, t.SMTPMeta, t.RestID
	}
	v.RcptTo = append(v.RcptTo, t.RcptTo[len(v.RcptTo):u.Recipients()]...)
	v.Cancelled = t.Cancelled
	if u.Message != nil && a.msg == nil {
		a.msg = u.Message.Fork()
	}
	if err := a.sub.Update(ctx, v, a.msg); err != nil {
		return err
	}
	if r := v.MailResponse; r != nil && !r.Ok() {
		u.SetMailResponse(upstream(*r))
	}
	for i, r := range v.RcptResponse {
		if !r.Ok() {
			u.SetRcptResponse(i, upstream(r))
		}
	}
	if r := v.DataResponse; r != nil && !r.Ok() {
		u.SetDataResponse(upstream(*r))
	}
	return nil
}

// forward writes the copy as a transaction of its own once the envelope is complete, and
// gives it the body, shared by reference, once the body is.
func (a *addRoute) forward(ctx context.Context, u *chain.Update) error {
	t := u.Tx
	if a.id == "" && t.MailFrom != nil && len(t.RcptTo) > 0 && !t.Cancelled {
		c := &tx.Tx{Sender: &tx.Sender{Name: a.opts.Sender, Tag: a.opts.Tag}, MailFrom: t.MailFrom,
			RemoteHost: t.RemoteHost, LocalHost: t.LocalHost, SMTPMeta: t.SMTPMeta, RcptTo: t.RcptTo}
		id, err := explodeInto{a.s}.Create(ctx, c)
		if err != nil {
			return err
		}
		a.id = id
	}
	if a.id != "" && u.Data {
		return explodeInto{a.s}.AddBody(ctx, a.id, t.RestID)
	}
	return nil
}

func (a *addRoute) Close(ctx context.Context) error {
	if a.sub != nil {
		return a.sub.Close(ctx)
	}
	return nil
}

func upstream(r tx.Response) tx.Response {
	return tx.Response{Code: r.Code, Message: r.Message + " (add_route upstream)"}
}
