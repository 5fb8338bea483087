// Package restoutput is the rest_output chain step: it hands a transaction to the next hop
// over the transaction REST API (an SMTP gateway, a REST receiver application, another
// router) and brings the hop's answers back into the chain.
//
// It tries the resolved destination hosts in order, moving on while the answer to MAIL is a
// temporary failure; waits for recipients' answers no longer than rcpt_timeout and for the
// data answer no longer than data_timeout (the reference used one deadline for both); sends
// heartbeats when the chain has nothing new; and cancels the upstream transaction if the
// attempt ends before the data is answered.
package restoutput

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/mime"
	"github.com/koukan/koukan/engine/rest"
	"github.com/koukan/koukan/engine/tx"
)

// Step is one attempt's rest_output.
type Step struct {
	clientFor func(endpoint string) *rest.Client
	opts      config.RestOutputStep

	up *rest.Tx
	// sent maps upstream recipient positions to the chain's recipient indices.
	sent     []int
	bodySent bool
	// sentOutput is the filter output the upstream has (send_filter_output).
	sentOutput map[string]json.RawMessage
	// upCancelled: the upstream was told; an attempt ends through both cancel and Close.
	upCancelled bool
}

var _ chain.Step = (*Step)(nil)
var _ chain.Closer = (*Step)(nil)
var _ chain.Handoff = (*Step)(nil)

// Upstream is the URL of the next hop's transaction, once created.
func (s *Step) Upstream() string {
	if s.up == nil {
		return ""
	}
	return s.up.Location()
}

// New makes the step for one attempt; client is shared by every attempt with the same TLS
// settings, so connections are pooled.
func New(client *rest.Client, opts config.RestOutputStep) *Step {
	return NewPerEndpoint(func(string) *rest.Client { return client }, opts)
}

// NewPerEndpoint is New with a client per endpoint URL, so that each next hop gets the
// credentials and TLS settings configured for it.
func NewPerEndpoint(clientFor func(endpoint string) *rest.Client, opts config.RestOutputStep) *Step {
	return &Step{clientFor: clientFor, opts: opts}
}

var (
	noEndpoint      = tx.Response{Code: 550, Message: "5.3.0 no destination for this transaction (rest_output)"}
	upstreamTimeout = tx.Response{Code: 450, Message: "4.4.7 upstream timeout (rest_output)"}
	cancelled       = tx.Response{Code: 550, Message: "5.0.0 cancelled"}
)

func (s *Step) Update(ctx context.Context, u *chain.Update) error {
	t := u.Tx
	if t.Cancelled {
		return s.cancel(ctx, u)
	}
	if s.up == nil {
		if t.MailFrom == nil || t.MailResponse != nil {
			return nil
		}
		if u.Recipients() == 0 && len(t.RcptTo) > 0 {
			// The upstream is created with its recipients (a one-recipient sender takes
			// nothing less), and routing, per recipient, comes with their pass.
			return nil
		}
		if !s.start(ctx, u) {
			return nil
		}
	}
	rctx, cancel := context.WithTimeout(ctx, s.opts.RcptTimeout)
	defer cancel()
	if err := s.sendRecipients(rctx, u); err != nil {
		s.failPending(u, responseFor(err))
		return nil
	}
	if u.Heartbeat {
		if err := s.update(rctx, nil); err != nil {
			return nil // the next real update will find out
		}
	}
	if _, err := s.up.Wait(rctx, func(st *tx.Tx) bool { return len(st.RcptResponse) >= len(s.sent) }); err != nil {
		s.failPending(u, responseFor(err))
		return nil
	}
	s.copyResponses(u)
	if u.Message == nil || s.bodySent || !u.RcptOK() {
		return nil
	}
	s.bodySent = true
	dctx, cancel := context.WithTimeout(ctx, s.opts.DataTimeout)
	defer cancel()
	if err := s.putBody(dctx, u); err != nil {
		u.SetDataResponse(responseFor(err))
		return nil
	}
	if _, err := s.up.Wait(dctx, func(st *tx.Tx) bool { return st.DataResponse != nil }); err != nil {
		u.SetDataResponse(responseFor(err))
		return nil
	}
	s.copyResponses(u)
	return nil
}

// start creates the upstream transaction, trying each resolved host in turn while the
// answer to MAIL is a temporary failure. It reports whether one was created.
func (s *Step) start(ctx context.Context, u *chain.Update) bool {
	base := s.endpoint(u.Tx)
	if base == "" {
		u.SetMailResponse(noEndpoint)
		return false
	}
	hosts := u.Tx.Resolution
	if len(hosts) == 0 {
		hosts = []tx.HostPort{{}}
	}
	var last tx.Response
	rcpts := u.Pending()
	for _, h := range hosts {
		create := s.createTx(u.Tx, h, rcpts)
		cctx, cancel := context.WithTimeout(ctx, s.opts.RcptTimeout)
		up, err := s.clientFor(base).Create(cctx, postURL(base, create.Sender), create)
		if err == nil {
			_, err = up.Wait(cctx, func(st *tx.Tx) bool { return st.MailResponse != nil })
		}
		cancel()
		if err != nil {
			last = responseFor(err)
			continue
		}
		last = *up.State().MailResponse
		if last.Ok() || last.Perm() {
			s.up, s.sent = up, rcpts
			s.sentOutput = maps.Clone(create.FilterOutput)
			u.SetMailResponse(last)
			return last.Ok()
		}
		_ = up.Cancel(context.WithoutCancel(ctx))
	}
	u.SetMailResponse(last)
	return false
}

// endpoint is where the transaction goes: the static endpoint, or the routed one.
func (s *Step) endpoint(t *tx.Tx) string {
	if s.opts.StaticEndpoint != "" {
		return s.opts.StaticEndpoint
	}
	return t.RestEndpoint
}

// createTx is what the upstream is asked to create: the envelope with the recipients
// known so far (rcpts, indices into t.RcptTo) and where it came from; later recipients
// follow in updates.
func (s *Step) createTx(t *tx.Tx, host tx.HostPort, rcpts []int) *tx.Tx {
	c := &tx.Tx{MailFrom: t.MailFrom, RemoteHost: t.RemoteHost, LocalHost: t.LocalHost, SMTPMeta: t.SMTPMeta,
		Sender: t.RestUpstreamSender}
	for _, i := range rcpts {
		c.RcptTo = append(c.RcptTo, t.RcptTo[i])
	}
	if sendsFilterOutput(t) {
		c.FilterOutput = t.FilterOutput
	}
	if c.Sender == nil {
		c.Sender = t.Sender
	}
	if host.Host != "" {
		c.RemoteHost = &host
	}
	return c
}

// postURL is where transactions are created: base is a rest endpoint's URL (or a static
// endpoint); a URL that already names a transactions collection is used as it is.
func postURL(base string, sender *tx.Sender) string {
	if strings.HasSuffix(strings.TrimSuffix(base, "/"), "/transactions") {
		return base
	}
	name := ""
	if sender != nil {
		name = sender.Name
	}
	return strings.TrimSuffix(base, "/") + "/senders/" + url.PathEscape(name) + "/transactions"
}

// sendRecipients passes on the recipients no earlier step has answered, and with the
// destination option send_filter_output the filter output that changed since it was last
// sent.
func (s *Step) sendRecipients(ctx context.Context, u *chain.Update) error {
	var delta tx.Tx
	for _, i := range u.Pending() {
		if !contains(s.sent, i) {
			delta.RcptTo = append(delta.RcptTo, u.Tx.RcptTo[i])
			s.sent = append(s.sent, i)
		}
	}
	delta.RcptToOffset = len(s.sent) - len(delta.RcptTo)
	if sendsFilterOutput(u.Tx) {
		for k, v := range u.Tx.FilterOutput {
			if !bytes.Equal(s.sentOutput[k], v) {
				if delta.FilterOutput == nil {
					delta.FilterOutput = map[string]json.RawMessage{}
				}
				delta.FilterOutput[k] = v
			}
		}
	}
	if len(delta.RcptTo) == 0 && delta.FilterOutput == nil {
		return nil
	}
	if err := s.update(ctx, &delta); err != nil {
		return err
	}
	if s.sentOutput == nil {
		s.sentOutput = map[string]json.RawMessage{}
	}
	maps.Copy(s.sentOutput, delta.FilterOutput)
	return nil
}

func sendsFilterOutput(t *tx.Tx) bool {
	on, _ := t.Options["send_filter_output"].(bool)
	return on
}

// update sends a delta (nil: a heartbeat). A version conflict means the upstream moved on
// (it answered something) since we last read it; the client has re-read it, so the same
// delta is sent once more: list offsets keep it from applying twice.
func (s *Step) update(ctx context.Context, delta *tx.Tx) error {
	err := s.up.Update(ctx, delta)
	var re *rest.Error
	if errors.As(err, &re) && re.Kind == rest.KindConflict {
		err = s.up.Update(ctx, delta)
	}
	return err
}

// putBody sends the message: with the destination option receive_parsing and a receiver
// that offers it, first the parsed message and its parts (reference §2.11 step 5), then
// the raw bytes.
func (s *Step) putBody(ctx context.Context, u *chain.Update) error {
	var raw string
	switch b := s.up.State().Body.(type) {
	case *tx.Blob:
		raw = b.URI
	case *tx.MessageBuilder:
		if b.Raw != nil {
			raw = b.Raw.URI
		}
		if maxInline, ok := receiveParsing(u.Tx.Options); ok && b.URI != "" {
			if err := s.putParsed(ctx, u.Message, b.URI, maxInline); err != nil {
				return err
			}
		}
	}
	if raw == "" {
		return fmt.Errorf("upstream gave no body URI")
	}
	r, err := u.Message.Open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	return s.up.PutBlob(ctx, raw, r, u.Message.Size())
}

// receiveParsing reads the receive_parsing destination option: whether it is on, and the
// inline text budget (64 KiB unless set).
func receiveParsing(options map[string]any) (maxInline int, on bool) {
	v, on := options["receive_parsing"]
	if !on || v == nil || v == false {
		return 0, false
	}
	maxInline = 64 << 10
	if m, ok := v.(map[string]any); ok {
		switch n := m["max_inline"].(type) {
		case int:
			maxInline = n
		case float64:
			maxInline = int(n)
		}
	}
	return maxInline, true
}

// putParsed parses the message, posts the parsed JSON and uploads the parts the receiver
// asks for. Parts wait in scratch files meanwhile: the receiver names their URIs only once
// it has the JSON, and a part is never held in memory whole.
func (s *Step) putParsed(ctx context.Context, msg *chain.Message, uri string, maxInline int) error {
	scratch, err := os.MkdirTemp("", "koukan-parts-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	r, err := msg.Open(ctx)
	if err != nil {
		return err
	}
	parsed, err := mime.Parse(r, maxInline, func(id, _ string, part io.Reader) error {
		f, err := os.Create(filepath.Join(scratch, filepath.Base(id)))
		if err != nil {
			return err
		}
		_, err = io.Copy(f, part)
		return errors.Join(err, f.Close())
	})
	r.Close()
	if err != nil {
		return err
	}
	blobs, err := s.up.PostMessageBuilder(ctx, uri, parsed)
	if err != nil {
		return err
	}
	for _, b := range blobs {
		if err := s.putScratch(ctx, filepath.Join(scratch, filepath.Base(b.ID)), b.URI); err != nil {
			return err
		}
	}
	return nil
}

func (s *Step) putScratch(ctx context.Context, path, uri string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return s.up.PutBlob(ctx, uri, f, fi.Size())
}

// copyResponses brings the upstream's answers back to the chain's recipients.
func (s *Step) copyResponses(u *chain.Update) {
	st := s.up.State()
	for j, i := range s.sent {
		if j < len(st.RcptResponse) {
			u.SetRcptResponse(i, st.RcptResponse[j])
		}
	}
	if st.DataResponse != nil {
		u.SetDataResponse(*st.DataResponse)
	}
}

func (s *Step) failPending(u *chain.Update, r tx.Response) {
	s.copyResponses(u)
	for _, i := range s.sent {
		u.SetRcptResponse(i, r)
	}
}

// cancel tells the upstream the transaction is over unless it already answered the data.
func (s *Step) cancel(ctx context.Context, u *chain.Update) error {
	if u.Tx.DataResponse == nil {
		_ = s.cancelUpstream(context.WithoutCancel(ctx))
	}
	if u.Tx.MailFrom != nil {
		u.SetMailResponse(cancelled)
	}
	for _, i := range u.Pending() {
		u.SetRcptResponse(i, cancelled)
	}
	return nil
}

// Close cancels an upstream transaction the attempt left unfinished.
func (s *Step) Close(ctx context.Context) error { return s.cancelUpstream(ctx) }

// cancelUpstream cancels the upstream transaction, once, unless it answered the data.
func (s *Step) cancelUpstream(ctx context.Context) error {
	if s.up == nil || s.upCancelled || s.up.State().DataResponse != nil {
		return nil
	}
	s.upCancelled = true
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return s.up.Cancel(cctx)
}

// responseFor turns a failure to reach the upstream into a temporary failure, worded for an
// SMTP client: the cause goes to the log, not to the client.
func responseFor(err error) tx.Response {
	var re *rest.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &re) && re.Kind == rest.KindTimeout:
		return upstreamTimeout
	case errors.As(err, &re):
		return tx.Response{Code: 450, Message: "4.4.0 upstream unavailable: " + re.Safe()}
	}
	return tx.Response{Code: 450, Message: "4.4.0 upstream unavailable"}
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
