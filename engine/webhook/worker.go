package webhook

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/metrics"
	"github.com/koukan/koukan/engine/store"
)

// Options configure a Worker; zero fields take the defaults noted.
type Options struct {
	// Store holds the events (required).
	Store store.Webhooks
	// Hook returns the webhook of a sender and tag, or nil if it has none (required). An
	// event whose sender has no webhook any more is dropped.
	Hook func(sender, tag string) *config.Webhook
	// Log gets failures and drops (slog.Default()).
	Log *slog.Logger
	// Parallel bounds the POSTs in flight (16).
	Parallel int
	// Poll is how long the worker waits before asking the store again when nothing was due
	// (1 s). It asks at once after each POST, which may have made the next event due.
	Poll time.Duration
	// Lease is how long a claimed event is held before another replica may send it; it must
	// outlast the longest webhook timeout (1 min).
	Lease time.Duration
	// RetryMin and RetryMax bound the delay after a failed POST: RetryMin, doubled at each
	// further attempt, at most RetryMax (1 s and 5 min), spread by ±20%.
	RetryMin, RetryMax time.Duration
	// PurgeEvery is how often events finished longer than Keep ago are deleted; zero never.
	PurgeEvery, Keep time.Duration
}

// Worker sends the events in the store to their webhooks; one per router replica.
type Worker struct {
	opts   Options
	log    *slog.Logger
	client *http.Client
}

// New makes a worker.
func New(opts Options) *Worker {
	opts.Log = cmp.Or(opts.Log, slog.Default())
	opts.Parallel = cmp.Or(opts.Parallel, 16)
	opts.Poll = cmp.Or(opts.Poll, time.Second)
	opts.Lease = cmp.Or(opts.Lease, time.Minute)
	opts.RetryMin = cmp.Or(opts.RetryMin, time.Second)
	opts.RetryMax = cmp.Or(opts.RetryMax, 5*time.Minute)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = opts.Parallel
	return &Worker{opts: opts, log: opts.Log, client: &http.Client{
		Transport: transport,
		// A webhook answers where it is: a redirect is not followed, it is a failure.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Run sends events until ctx ends. POSTs cut short by ctx leave their events leased; they
// are sent again once the lease expires or the session ends.
func (w *Worker) Run(ctx context.Context) {
	done := make(chan struct{}, w.opts.Parallel)
	running := 0
	defer func() {
		for ; running > 0; running-- {
			<-done
		}
	}()
	var purge <-chan time.Time
	if w.opts.PurgeEvery > 0 {
		t := time.NewTicker(w.opts.PurgeEvery)
		defer t.Stop()
		purge = t.C
	}
	poll := time.NewTimer(w.opts.Poll)
	defer poll.Stop()
	for {
		if free := w.opts.Parallel - running; free > 0 {
			events, err := w.opts.Store.ClaimWebhookEvents(ctx, free, w.opts.Lease)
			if err != nil && ctx.Err() == nil {
				w.log.Warn("claiming webhook events", "err", err)
			}
			for _, ev := range events {
				running++
				go func() {
					defer func() { done <- struct{}{} }()
					w.send(ctx, ev)
				}()
			}
		}
		poll.Reset(w.opts.Poll)
		select {
		case <-ctx.Done():
			return
		case <-done:
			running--
		case <-poll.C:
		case <-purge:
			if n, err := w.opts.Store.PurgeWebhookEvents(ctx, w.opts.Keep); err != nil && ctx.Err() == nil {
				w.log.Warn("purging webhook events", "err", err)
			} else if n > 0 {
				w.log.Info("purged finished webhook events", "events", n)
			}
		}
	}
}

// send makes one attempt at ev and records its result.
func (w *Worker) send(ctx context.Context, ev store.WebhookEvent) {
	log := w.log.With("event", ev.ID, "tx", ev.RestID, "sender", ev.Sender, "tag", ev.Tag, "attempt", ev.Attempts)
	defer func() {
		if p := recover(); p != nil {
			log.Error("panic sending a webhook event; it is sent again when its lease expires", "panic", p)
		}
	}()
	// The outcome is recorded even when ctx ends meanwhile: a POST that got its 2xx must not
	// be sent again for want of the write.
	record, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	hook := w.opts.Hook(ev.Sender, ev.Tag)
	if hook == nil {
		w.drop(record, log, ev, "the sender has no webhook in the config")
		return
	}
	if age := time.Since(ev.Creation); age > hook.MaxAge {
		why := fmt.Sprintf("older than max_age (%v) after %d attempts", hook.MaxAge, ev.Attempts-1)
		if ev.LastError != "" {
			why += "; last error: " + ev.LastError
		}
		w.drop(record, log, ev, why)
		return
	}
	err := w.post(ctx, hook, ev)
	if err == nil {
		metrics.WebhookEvents.WithLabelValues(ev.Sender, "delivered").Inc()
		if err := w.opts.Store.WebhookEventDelivered(record, ev.Seq); err != nil {
			log.Error("recording a delivered webhook event; it will be sent again", "err", err)
		}
		return
	}
	if ctx.Err() != nil {
		return // shutting down: not the webhook's failure
	}
	metrics.WebhookEvents.WithLabelValues(ev.Sender, "failed").Inc()
	next := time.Now().Add(w.backoff(ev.Attempts))
	if next.Sub(ev.Creation) > hook.MaxAge {
		w.drop(record, log, ev, fmt.Sprintf("no success in %d attempts within max_age (%v); last error: %v", ev.Attempts, hook.MaxAge, err))
		return
	}
	log.Warn("webhook event not delivered; trying again later", "err", err, "next_attempt", next)
	if err := w.opts.Store.RetryWebhookEvent(record, ev.Seq, next, err.Error()); err != nil {
		log.Error("rescheduling a webhook event", "err", err)
	}
}

func (w *Worker) drop(ctx context.Context, log *slog.Logger, ev store.WebhookEvent, why string) {
	metrics.WebhookEvents.WithLabelValues(ev.Sender, "dropped").Inc()
	log.Error("webhook event dropped", "reason", why)
	if err := w.opts.Store.DropWebhookEvent(ctx, ev.Seq, why); err != nil {
		log.Error("dropping a webhook event", "err", err)
	}
}

// backoff is the delay after the attempts-th failed POST of an event.
func (w *Worker) backoff(attempts int) time.Duration {
	d := w.opts.RetryMin
	for i := 1; i < attempts && d < w.opts.RetryMax; i++ {
		d *= 2
	}
	d = min(d, w.opts.RetryMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// post sends ev once; nil means the webhook answered 2xx. Errors do not name the URL,
// which may hold a token.
func (w *Worker) post(ctx context.Context, hook *config.Webhook, ev store.WebhookEvent) error {
	ctx, cancel := context.WithTimeout(ctx, hook.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(ev.Payload))
	if err != nil {
		return errors.New("the webhook URL is not valid")
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "koukan-webhook")
	req.Header.Set(HeaderID, ev.ID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(hook.Secret, ts, ev.Payload))
	res, err := w.client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("no answer within the timeout (%v)", hook.Timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	defer res.Body.Close()
	// Read (a bounded part of) the answer, so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %s", res.Status)
	}
	return nil
}
