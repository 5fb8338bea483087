package outbound

import (
	"github.com/koukan/koukan/engine/httpapi"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/koukan/koukan/engine/tx"
)

// txn is one transaction in memory: what the router sent, what the peer answered, and the
// channels that connect its HTTP requests with its worker.
type txn struct {
	id      string
	tag     string
	host    Host
	bodyURI string

	mu sync.Mutex
	// state holds the requests and the responses. Its Body is nil until the first PUT of
	// the message, which is the signal that no more recipients will come.
	state   *tx.Tx
	version int64
	// changed is closed, and replaced, at every new version: hanging GETs and the worker
	// wait on it.
	changed chan struct{}
	// received counts the message bytes taken from PUTs (sent on, or dropped once the
	// worker could no longer send them); total is the length declared so far, or -1.
	received, total int64
	// ended: the worker is gone. endResp then answers every request still without a
	// response, now or later.
	ended   bool
	endResp tx.Response
	doneAt  time.Time
	// dropped: garbage-collected; requests get 404 from then on.
	dropped bool

	// touched is the time of the last request or progress (unix nanoseconds).
	touched atomic.Int64
	// pieces hands a PUT's request body to the worker. Unbuffered: a PUT waits until the
	// worker is ready for its bytes.
	pieces chan *piece
	// done is closed when the worker ends.
	done chan struct{}
	// upload admits one PUT at a time.
	upload chan struct{}
}

func newTxn(id, tag string, h Host, bodyURI string, st *tx.Tx) *txn {
	t := &txn{id: id, tag: tag, host: h, bodyURI: bodyURI, state: st, version: 1, total: -1,
		changed: make(chan struct{}), pieces: make(chan *piece), done: make(chan struct{}),
		upload: make(chan struct{}, 1)}
	t.touch()
	return t
}

func (t *txn) touch() { t.touched.Store(time.Now().UnixNano()) }

func (t *txn) idleSince() time.Time { return time.Unix(0, t.touched.Load()) }

// bumpLocked publishes a new version, under t.mu.
func (t *txn) bumpLocked() {
	t.version++
	close(t.changed)
	t.changed = make(chan struct{})
	t.touch()
}

// view is the ETag and read form, under t.mu.
func (t *txn) viewLocked() (string, []byte, error) {
	st := t.state.Copy()
	if st.Body == nil {
		st.Body = &tx.Blob{ID: tx.TxBodyBlobID, URI: t.bodyURI}
	}
	data, err := st.MarshalFor(tx.RestRead)
	return strconv.FormatInt(t.version, 10), data, err
}

// snapshot is a copy of the state and the channel that tells of the next change.
func (t *txn) snapshot() (*tx.Tx, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state.Copy(), t.changed
}

// watch reports whether the transaction is cancelled, and the channel that tells of the
// next change.
func (t *txn) watch() (bool, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state.Cancelled, t.changed
}

func (t *txn) setMail(r tx.Response) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state.MailResponse == nil {
		t.state.MailResponse = &r
		t.bumpLocked()
	}
}

// setRcpt answers recipient i; answers come in recipient order.
func (t *txn) setRcpt(i int, r tx.Response) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i == len(t.state.RcptResponse) && i < len(t.state.RcptTo) {
		t.state.RcptResponse = append(t.state.RcptResponse, r)
		t.bumpLocked()
	}
}

func (t *txn) setData(r tx.Response) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state.DataResponse == nil {
		t.state.DataResponse = &r
		t.bumpLocked()
	}
}

// finish records that the worker ended with end as the answer to whatever is still open,
// and releases everyone waiting on it.
func (t *txn) finish(end tx.Response) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ended, t.endResp, t.doneAt = true, end, time.Now()
	t.fillLocked()
	t.bumpLocked()
	close(t.done)
}

// fillLocked answers, once the worker is gone, every request that has no response: with
// endResp, or with the 503 that SMTP sequencing implies (tx.FillInflightResponses).
func (t *txn) fillLocked() {
	if t.ended {
		t.state.FillInflightResponses(t.endResp)
	}
}

// contentRangeLocked says what the body holds (httpapi.ContentRange).
func (t *txn) contentRangeLocked() string { return httpapi.ContentRange(t.received, t.total) }

func (t *txn) finalizedLocked() bool {
	b, ok := t.state.Body.(*tx.Blob)
	return ok && b.Finalized
}
