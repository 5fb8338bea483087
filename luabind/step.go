package luabind

import (
	"context"
	"fmt"

	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/tx"
	lua "github.com/yuin/gopher-lua"
)

// filterStep is a chain step run by a filter script: its mail hook when the envelope sender
// is new, its rcpt hook for each new recipient, its data hook when the message is complete.
// A hook's return value — a response from koukan.reject or koukan.tempfail, or nil —
// answers what the hook was called for.
type filterStep struct {
	rt *Runtime
	v  *version
	in *instance
}

var _ chain.Step = (*filterStep)(nil)

// hooks are the names a filter script's table may have.
var hookNames = []string{"mail", "rcpt", "data"}

// Update runs the hooks for what is new. A failing script answers what the pass asked with
// TempFail: its transaction is retried rather than let through unchecked.
func (f *filterStep) Update(ctx context.Context, u *chain.Update) error {
	err := f.update(ctx, u)
	if IsScriptError(err) {
		failPass(u, TempFail)
		return nil
	}
	return err
}

func (f *filterStep) update(ctx context.Context, u *chain.Update) error {
	if u.Heartbeat || !u.Mail && len(u.Rcpts) == 0 && !u.Data {
		return nil
	}
	c := &call{script: f.in.script, step: f.in.name, txID: u.Tx.RestID}
	return f.rt.run(ctx, f.v, c, func(s *state) error {
		entry, err := s.entry(f.in)
		if err != nil {
			return err
		}
		hooks, ok := entry.(*lua.LTable)
		if !ok {
			return &ScriptError{Script: f.in.script.File, Message: fmt.Sprintf("%s: returned a %s, not a table of hooks", f.in.script.File, entry.Type())}
		}
		txv := s.newTx(u.Tx, u)
		if u.Mail && u.Tx.MailResponse == nil {
			r, err := f.hook(ctx, s, hooks, "mail", txv)
			if err != nil || r != nil && setMail(u, *r) {
				return err
			}
		}
		if hook := hooks.RawGetString("rcpt"); hook != lua.LNil {
			for _, i := range u.Rcpts {
				if u.RcptResponse(i) != nil {
					continue
				}
				r, err := f.hook(ctx, s, hooks, "rcpt", txv, s.newRcpt(txv.Value.(*txView), i))
				if err != nil {
					return err
				}
				if r != nil {
					u.SetRcptResponse(i, *r)
				}
			}
		}
		if u.Data && u.Message != nil && u.Tx.DataResponse == nil {
			msg, mv := s.newMsg(u.Message)
			defer mv.close()
			r, err := f.hook(ctx, s, hooks, "data", txv, msg)
			if err != nil {
				return err
			}
			if r != nil {
				u.SetDataResponse(*r)
			}
		}
		return nil
	})
}

// setMail answers MAIL and reports whether that ends the pass (a failure).
func setMail(u *chain.Update, r tx.Response) bool {
	u.SetMailResponse(r)
	return !r.Ok()
}

// hook calls the named hook if the script has it, and returns the response it gave.
func (f *filterStep) hook(ctx context.Context, s *state, hooks *lua.LTable, name string, args ...lua.LValue) (*tx.Response, error) {
	fn := hooks.RawGetString(name)
	if fn == lua.LNil {
		return nil, nil
	}
	ret, err := s.invoke(s.call.ctx, f.in.script.File, fn, args...)
	if err != nil {
		return nil, err
	}
	if ret == lua.LNil {
		return nil, nil
	}
	r, ok := toResponse(ret)
	if !ok {
		return nil, &ScriptError{Script: f.in.script.File, Message: fmt.Sprintf("%s: the %s hook returned a %s; return nil or a response from koukan.reject or koukan.tempfail", f.in.script.File, name, ret.Type())}
	}
	return &r, nil
}

// failPass answers what the pass asked that has no answer yet.
func failPass(u *chain.Update, r tx.Response) {
	if u.Mail {
		u.SetMailResponse(r)
	}
	for _, i := range u.Rcpts {
		u.SetRcptResponse(i, r)
	}
	if u.Data {
		u.SetDataResponse(r)
	}
}
