// Package chain runs a configured list of steps over a transaction, phase by phase: the
// envelope sender (mail), each recipient (rcpt), the complete message (data).
//
// Every step sees one shared view of the transaction and the part of it that is new since the
// previous update. A step may add a signal (filter output), answer the whole transaction or one
// recipient, set the destination, edit the message's header, or do nothing. The last step
// (rest_output, exploder) must answer every request it is given. After each step the executor
// checks SMTP preconditions: once the transaction cannot progress (MAIL failed, every recipient
// failed with the body here, or the data answered) later steps are not called, so an early
// reject never opens an upstream connection.
//
// The package knows steps only through the Step interface: Go built-ins and Lua scripts are
// plugged in by a Factory.
package chain

import (
	"context"
	"errors"
	"fmt"

	"github.com/koukan/koukan/engine/tx"
)

// Step reacts to one update of the transaction.
type Step interface {
	Update(ctx context.Context, u *Update) error
}

// Closer is a Step that holds resources (an upstream connection) to release when the attempt
// ends.
type Closer interface {
	Close(ctx context.Context) error
}

// Handoff is a Step that passes the transaction on: rest_output to a next hop, whose
// transaction's URL Upstream returns, the exploder to recipients' transactions, whose ids it
// lists. "" until there is one. The attempt's log line shows it, so that it leads to the
// next hop's own log lines.
type Handoff interface {
	Upstream() string
}

// Chain is one attempt's instance of a configured chain: steps keep state across updates.
type Chain struct {
	steps []Step
	// rcpt holds each recipient's response once known, in rcpt_to order; answers may come
	// out of order and reach Tx.RcptResponse as a contiguous prefix.
	rcpt []*tx.Response
	// seen is what earlier updates carried: the number of recipients and whether the mail
	// and the complete body have been passed on.
	seenMail  bool
	seenRcpts int
	seenBody  bool
}

// New makes a chain instance from its steps, in order.
func New(steps ...Step) *Chain { return &Chain{steps: steps} }

// Update is what a step is called with.
type Update struct {
	// Tx is the shared view: envelope, body, routing fields, responses, filter output.
	Tx *tx.Tx
	// Mail is set when the envelope sender is new in this update.
	Mail bool
	// Rcpts are the indices of recipients new in this update.
	Rcpts []int
	// Data is set when the complete message is new in this update.
	Data bool
	// Message is the message as it goes upstream (the body with header edits).
	Message *Message
	// Heartbeat is set on an update with nothing new: steps may refresh upstream.
	Heartbeat bool

	chain *Chain
	// visible is how many recipients this pass shows: those of earlier passes and its own.
	visible int
}

// RcptResponse is recipient i's response so far, or nil.
func (u *Update) RcptResponse(i int) *tx.Response { return u.chain.rcpt[i] }

// SetRcptResponse answers recipient i. A recipient is answered once; later answers are
// ignored, so an earlier step's reject stands.
func (u *Update) SetRcptResponse(i int, r tx.Response) {
	if u.chain.rcpt[i] == nil {
		u.chain.rcpt[i] = &r
	}
}

// SetMailResponse answers the envelope sender, once.
func (u *Update) SetMailResponse(r tx.Response) {
	if u.Tx.MailResponse == nil {
		u.Tx.MailResponse = &r
	}
}

// SetDataResponse answers the message, once.
func (u *Update) SetDataResponse(r tx.Response) {
	if u.Tx.DataResponse == nil {
		u.Tx.DataResponse = &r
	}
}

// Pending lists the recipients shown so far that have no response yet: what an upstream
// must be asked.
func (u *Update) Pending() []int {
	var out []int
	for i, r := range u.chain.rcpt[:u.visible] {
		if r == nil {
			out = append(out, i)
		}
	}
	return out
}

// Recipients is how many of Tx.RcptTo this pass shows: the recipients of earlier passes and
// its own. Later ones have not reached the chain yet.
func (u *Update) Recipients() int { return u.visible }

// RcptOK reports whether any recipient was accepted.
func (u *Update) RcptOK() bool {
	for _, r := range u.chain.rcpt[:u.visible] {
		if r != nil && r.Ok() {
			return true
		}
	}
	return false
}

// ErrStepFailed wraps a step's error with the step's position for the log.
type StepError struct {
	Step int
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("chain step %d: %v", e.Step, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// Update runs the steps over what is new in t since the previous call, one SMTP phase at a
// time: the envelope sender, then the new recipients, then the complete message (msg, nil
// until the body is complete), each through every step before the next, as an SMTP client
// would send them. A step's error or panic stops the update and is returned; the caller
// turns it into a temporary failure.
func (c *Chain) Update(ctx context.Context, t *tx.Tx, msg *Message) (err error) {
	for len(c.rcpt) < len(t.RcptTo) {
		i := len(c.rcpt)
		c.rcpt = append(c.rcpt, nil)
		if i < len(t.RcptResponse) {
			r := t.RcptResponse[i]
			c.rcpt[i] = &r
		}
	}
	defer c.flush(t)
	if !t.Cancelled && !c.live(t) {
		return nil
	}
	var passes []*Update
	bodyBefore := c.seenBody
	if t.MailFrom != nil && !c.seenMail {
		passes = append(passes, &Update{Mail: true})
	}
	if c.seenRcpts < len(t.RcptTo) {
		u := &Update{}
		for i := c.seenRcpts; i < len(t.RcptTo); i++ {
			u.Rcpts = append(u.Rcpts, i)
		}
		passes = append(passes, u)
	}
	if msg != nil && !c.seenBody {
		passes = append(passes, &Update{Data: true})
	}
	if len(passes) == 0 {
		passes = append(passes, &Update{Heartbeat: !t.Cancelled})
	}
	for _, u := range passes {
		// What a pass shows is seen from then on; the preconditions consider only that.
		c.seenMail = c.seenMail || u.Mail
		c.seenRcpts += len(u.Rcpts)
		c.seenBody = c.seenBody || u.Data
		u.Tx, u.chain, u.visible = t, c, c.seenRcpts
		if u.Data || bodyBefore {
			u.Message = msg
		}
		if !t.Cancelled && !c.live(t) {
			return nil
		}
		for i, s := range c.steps {
			if err := runStep(ctx, i, s, u); err != nil {
				return err
			}
			if !t.Cancelled && !c.live(t) {
				return nil
			}
		}
	}
	return nil
}

func runStep(ctx context.Context, i int, s Step, u *Update) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &StepError{i, fmt.Errorf("panic: %v", p)}
		}
	}()
	if err := s.Update(ctx, u); err != nil {
		return &StepError{i, err}
	}
	return nil
}

// live applies the SMTP preconditions to the responses so far: after a failed MAIL the
// unanswered recipients fail too, and with the body here and every recipient failed the data
// fails. It reports whether the transaction can still progress.
func (c *Chain) live(t *tx.Tx) bool {
	mailFailed := t.MailResponse != nil && !t.MailResponse.Ok()
	if mailFailed {
		for i := range c.rcpt {
			if c.rcpt[i] == nil {
				r := tx.Response{Code: 503, Message: "5.5.1 failed precondition: MAIL"}
				c.rcpt[i] = &r
			}
		}
	}
	if c.seenBody && t.DataResponse == nil && len(c.rcpt) > 0 {
		allAnswered, anyOK := true, false
		for _, r := range c.rcpt {
			allAnswered = allAnswered && r != nil
			anyOK = anyOK || r != nil && r.Ok()
		}
		if allAnswered && !anyOK {
			t.DataResponse = &tx.Response{Code: 503, Message: "5.5.1 failed precondition: all rcpts failed"}
		}
	}
	return !mailFailed && t.DataResponse == nil
}

// flush moves the contiguous prefix of answered recipients into t.RcptResponse.
func (c *Chain) flush(t *tx.Tx) {
	for len(t.RcptResponse) < len(c.rcpt) && c.rcpt[len(t.RcptResponse)] != nil {
		t.RcptResponse = append(t.RcptResponse, *c.rcpt[len(t.RcptResponse)])
	}
}

// Upstream is where this attempt handed the transaction on (see Handoff), or "".
func (c *Chain) Upstream() string {
	for _, s := range c.steps {
		if h, ok := s.(Handoff); ok {
			if u := h.Upstream(); u != "" {
				return u
			}
		}
	}
	return ""
}

// Close releases every step's resources, for example when the attempt ends.
func (c *Chain) Close(ctx context.Context) error {
	var errs []error
	for _, s := range c.steps {
		if cl, ok := s.(Closer); ok {
			errs = append(errs, cl.Close(ctx))
		}
	}
	return errors.Join(errs...)
}
