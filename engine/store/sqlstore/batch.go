package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// An op is one logical write. It runs inside a shared database transaction, fenced by a
// savepoint: an op that fails is rolled back alone and the rest of the batch still commits.
// An op must keep its effects inside tx until the batch reports success.
type op func(ctx context.Context, tx *sql.Tx) error

type request struct {
	fn    op
	done  chan error
	tries int
}

// committer gives group commit: writers hand it ops, and it runs whatever has queued up while
// the previous commit was syncing as one transaction. Durability then costs one sync per batch
// rather than one per message, and there is no artificial delay: a lone writer commits at once.
type committer struct {
	db       *sql.DB
	maxBatch int
	// retryable tells errors worth running the op again for in a later batch: a deadlock
	// between two batches, or a serialization failure.
	retryable func(error) bool
	queue     chan request
	wg        sync.WaitGroup
	stop      chan struct{}
	// drained closes once close has failed what was queued: a request queued after that
	// would wait for a verdict forever.
	drained chan struct{}
}

// maxTries bounds how often an op is run when it keeps failing with a retryable error.
const maxTries = 4

func newCommitter(db *sql.DB, workers, maxBatch int, retryable func(error) bool) *committer {
	c := &committer{db: db, maxBatch: maxBatch, retryable: retryable, queue: make(chan request, maxBatch), stop: make(chan struct{}),
		drained: make(chan struct{})}
	for range workers {
		c.wg.Add(1)
		go c.loop()
	}
	return c
}

// do runs fn in the next batch and returns once that batch has committed (or failed).
func (c *committer) do(ctx context.Context, fn op) error {
	r := request{fn: fn, done: make(chan error, 1)}
	select {
	case c.queue <- r:
	case <-c.stop:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued the op may commit whatever the caller's context does, so wait for the
	// verdict: reporting failure for a committed write would make a client retry needlessly.
	select {
	case err := <-r.done:
		return err
	case <-c.drained:
		// Queued as the store closed, after the last committer stopped: it never ran,
		// unless close failed it.
		select {
		case err := <-r.done:
			return err
		default:
			return errClosed
		}
	}
}

var errClosed = errors.New("store closed")

func (c *committer) close() {
	close(c.stop)
	c.wg.Wait()
	// Fail whatever is still queued.
	defer close(c.drained)
	for {
		select {
		case r := <-c.queue:
			r.done <- errClosed
		default:
			return
		}
	}
}

func (c *committer) loop() {
	defer c.wg.Done()
	batch := make([]request, 0, c.maxBatch)
	var carry []request
	for {
		batch = append(batch[:0], carry...)
		if len(batch) == 0 {
			select {
			case <-c.stop:
				return
			case r := <-c.queue:
				batch = append(batch, r)
			}
		}
	fill:
		for len(batch) < c.maxBatch {
			select {
			case r := <-c.queue:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		carry = c.run(batch)
	}
}

// run commits one batch and answers its requests, except those that failed with a retryable
// error, which it returns to be run in the next batch. A lone op needs no savepoint.
func (c *committer) run(batch []request) (retry []request) {
	ctx := context.Background()
	errs := make([]error, len(batch))
	var tx *sql.Tx
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic in store write: %v", p)
			}
			if err != nil && tx != nil {
				_ = tx.Rollback()
			}
		}()
		if tx, err = c.db.BeginTx(ctx, nil); err != nil {
			return err
		}
		if len(batch) == 1 {
			if errs[0] = batch[0].fn(ctx, tx); errs[0] != nil {
				return tx.Rollback()
			}
		} else {
			for i, r := range batch {
				errs[i] = c.runFenced(ctx, tx, r.fn)
			}
		}
		return tx.Commit()
	}()
	for i, r := range batch {
		rerr := errs[i]
		if err != nil {
			rerr = err
		}
		r.tries++
		if rerr != nil && r.tries < maxTries && c.retryable != nil && c.retryable(rerr) {
			retry = append(retry, r)
			continue
		}
		r.done <- rerr
	}
	return retry
}

func (c *committer) runFenced(ctx context.Context, tx *sql.Tx, fn op) error {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT op"); err != nil {
		return err
	}
	if err := fn(ctx, tx); err != nil {
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT op"); rerr != nil {
			return errors.Join(err, rerr)
		}
		_, _ = tx.ExecContext(ctx, "RELEASE SAVEPOINT op")
		return err
	}
	_, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT op")
	return err
}
