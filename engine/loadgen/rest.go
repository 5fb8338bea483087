package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/koukan/koukan/engine/rest"
	"github.com/koukan/koukan/engine/tx"
)

// RESTOptions says where to post transactions and how far to follow them.
type RESTOptions struct {
	// Router is the base URL (transactions are posted to
	// Router/senders/{Sender}/transactions), or a URL that already ends in
	// /transactions, used as it is.
	Router string
	Sender string
	// Tag is the sender's tag that picks its output chain; "" leaves it to the sender.
	Tag string
	// WaitFinal follows each transaction with hanging GETs to its final answer, the
	// data_response; without it a message is done when the upstream holds all of it
	// (its 201, or the answer to the body's PUT).
	WaitFinal bool
	// InlineMax is the largest message sent inline in the POST; larger ones are PUT to
	// the body's URI. 0 is 64 KiB.
	InlineMax int
	Insecure  bool // accept any TLS certificate
	// APIKeyFile holds the key sent as "Authorization: Bearer <key>" (rest.Options); ""
	// sends none.
	APIKeyFile string
}

// StartREST starts a REST run: load.Concurrency workers posting one-recipient
// transactions through one shared client (one HTTP connection pool).
func StartREST(ctx context.Context, load Load, o RESTOptions) (*Run, error) {
	if err := load.check(); err != nil {
		return nil, err
	}
	u, err := url.Parse(o.Router)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("router %q: want an http or https URL", o.Router)
	}
	post := strings.TrimSuffix(o.Router, "/")
	if !strings.HasSuffix(post, "/transactions") {
		if o.Sender == "" {
			return nil, errors.New("a sender is needed")
		}
		post += "/senders/" + url.PathEscape(o.Sender) + "/transactions"
	}
	if o.InlineMax <= 0 {
		o.InlineMax = 64 << 10
	}
	client, err := rest.NewClient(rest.Options{InsecureSkipVerify: o.Insecure, APIKeyFile: o.APIKeyFile})
	if err != nil {
		return nil, err
	}
	return start(ctx, load, "rest", post, func() sender {
		return &restSender{o: o, load: load, client: client, post: post}
	}), nil
}

type restSender struct {
	o      RESTOptions
	load   Load
	client *rest.Client
	post   string
}

func (s *restSender) close() {}

func (s *restSender) send(ctx context.Context, m Message) outcome {
	ctx, cancel := context.WithTimeout(ctx, s.load.Timeout)
	defer cancel()
	start := time.Now()
	create := &tx.Tx{MailFrom: &tx.Mailbox{Address: s.load.From}, RcptTo: []tx.Mailbox{{Address: s.load.To}}}
	if s.o.Tag != "" {
		create.Sender = &tx.Sender{Tag: s.o.Tag}
	}
	inline := m.Len() <= s.o.InlineMax
	if inline {
		create.Body = &tx.InlineBody{Text: m.String()}
	}
	up, err := s.client.Create(ctx, s.post, create)
	if err != nil {
		return restFailure(err)
	}
	if !inline {
		uri := bodyURI(up.State())
		if uri == "" {
			return outcome{code: "put: no body uri in the read form"}
		}
		if err := up.PutBlob(ctx, uri, m.Reader(), int64(m.Len())); err != nil {
			return restFailure(err)
		}
	}
	if !s.o.WaitFinal {
		return outcome{ok: true, latency: time.Since(start)}
	}
	st, err := up.Wait(ctx, finished)
	if err != nil {
		return restFailure(err)
	}
	latency := time.Since(start)
	if r := deciding(st); r != nil {
		if r.Ok() {
			return outcome{ok: true, latency: latency}
		}
		return outcome{code: replyCode(r.Code, r.Message)}
	}
	if st.Cancelled {
		return outcome{code: "cancelled"}
	}
	return outcome{code: st.FinalAttemptReason}
}

// bodyURI is where the raw message goes, from the read form after create.
func bodyURI(st *tx.Tx) string {
	switch b := st.Body.(type) {
	case *tx.Blob:
		return b.URI
	case *tx.MessageBuilder:
		if b.Raw != nil {
			return b.Raw.URI
		}
	}
	return ""
}

// deciding is the response that decides a transaction's fate so far: a failed MAIL,
// the last RCPT once every one has failed, or DATA's. It is nil while there is none.
func deciding(st *tx.Tx) *tx.Response {
	if r := st.MailResponse; r != nil && r.Err() {
		return r
	}
	if n := len(st.RcptResponse); n > 0 && n >= len(st.RcptTo) {
		failed := 0
		for _, r := range st.RcptResponse {
			if r.Err() {
				failed++
			}
		}
		if failed == n {
			return &st.RcptResponse[n-1]
		}
	}
	return st.DataResponse
}

// finished says whether a transaction has its final answer: Koukan is done with it
// (final_attempt_reason, cancelled), or the deciding response is a success, a permanent
// failure, or a temporary one that will not be retried (the read form has no retry).
func finished(st *tx.Tx) bool {
	if st.FinalAttemptReason != "" || st.Cancelled {
		return true
	}
	r := deciding(st)
	return r != nil && (r.Ok() || r.Perm() || st.Retry == nil)
}

// restFailure groups a client error by its safe text ("create: http status 503
// (internal_error)"), which names no address; an expired message is a timeout.
func restFailure(err error) outcome {
	var re *rest.Error
	if errors.As(err, &re) {
		if re.Kind == rest.KindTimeout {
			return outcome{code: re.Op + ": timeout"}
		}
		return outcome{code: re.Safe()}
	}
	return outcome{code: failureCode("rest", err)}
}
