package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Load is the shape of a run, whatever it sends to.
type Load struct {
	Messages    int           // how many messages to send in all
	Concurrency int           // how many workers send them, each one message at a time
	Size        int           // each message's size in bytes (see ParseSize)
	From, To    string        // envelope and header sender and recipient
	Timeout     time.Duration // the most one message may take; 0: one minute
}

func (l *Load) check() error {
	switch {
	case l.Messages < 1:
		return fmt.Errorf("messages must be at least 1, not %d", l.Messages)
	case l.Concurrency < 1:
		return fmt.Errorf("concurrency must be at least 1, not %d", l.Concurrency)
	case l.Size < 1:
		return fmt.Errorf("size must be at least 1 byte, not %d", l.Size)
	case l.From == "" || l.To == "":
		return errors.New("a sender and a recipient address are needed")
	case l.Timeout < 0:
		return fmt.Errorf("negative timeout %s", l.Timeout)
	}
	if l.Timeout == 0 {
		l.Timeout = time.Minute
	}
	return nil
}

// sender sends messages one at a time for one worker, holding what it reuses between
// them (an SMTP connection).
type sender interface {
	send(ctx context.Context, m Message) outcome
	close()
}

// Run is a run in progress.
type Run struct {
	load   Load
	res    Result
	col    *collector
	next   atomic.Int64
	wg     sync.WaitGroup
	result *Result
}

// start starts load.Concurrency workers, each with a sender from newSender, sending
// messages made from one template until load.Messages are sent or ctx ends.
func start(ctx context.Context, load Load, mode, target string, newSender func() sender) *Run {
	tmpl := NewTemplate(load.Size, load.From, load.To, time.Now())
	r := &Run{load: load, col: newCollector(time.Now(), load.Messages),
		res: Result{Mode: mode, Target: target, Size: tmpl.Size(), Concurrency: load.Concurrency}}
	for range min(load.Concurrency, load.Messages) {
		r.wg.Go(func() {
			s := newSender()
			defer s.close()
			for r.next.Add(1) <= int64(load.Messages) && ctx.Err() == nil {
				o := s.send(ctx, tmpl.Next())
				if !o.ok && ctx.Err() != nil {
					return // abandoned, not failed
				}
				r.col.record(o)
			}
		})
	}
	return r
}

// Progress is a snapshot of the run so far.
func (r *Run) Progress() Progress { return r.col.progress(r.load.Messages) }

// Wait waits for the run to end (every message sent, or its context ended and the
// messages in flight abandoned) and returns its summary.
func (r *Run) Wait() *Result {
	r.wg.Wait()
	if r.result == nil {
		res := r.col.result()
		res.Mode, res.Target, res.Size, res.Concurrency = r.res.Mode, r.res.Target, r.res.Size, r.res.Concurrency
		res.Incomplete = res.Sent < r.load.Messages
		r.result = res
	}
	return r.result
}

// enhancedRE matches the enhanced status code (RFC 3463) at the start of a reply text.
var enhancedRE = regexp.MustCompile(`^([245]\.\d{1,3}\.\d{1,3})(?:\s|$)`)

// replyCode is the group of a failure reply: its code and, when the text starts with
// one, its enhanced status code ("451 4.3.0").
func replyCode(code int, text string) string {
	if m := enhancedRE.FindStringSubmatch(text); m != nil {
		return fmt.Sprintf("%d %s", code, m[1])
	}
	return fmt.Sprint(code)
}

// failureCode is the group of a failure that is not a reply, prefixed with the step it
// happened in ("mail: connection closed"). Addresses and ports stay out of it, so that
// the same failure on different connections falls into one group.
func failureCode(step string, err error) string {
	var ne net.Error
	var errno syscall.Errno
	var op *net.OpError
	detail := ""
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		detail = "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		detail = "connection closed"
	case errors.As(err, &errno):
		detail = errno.Error()
	case errors.As(err, &op) && op.Err != nil:
		detail = op.Err.Error()
	default:
		detail = err.Error()
	}
	if len(detail) > 100 {
		detail = detail[:100] + "…"
	}
	return step + ": " + detail
}
