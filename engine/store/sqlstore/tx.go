package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/koukan/koukan/engine/store"
)

func (s *Store) Create(ctx context.Context, n store.NewTx) (*store.Tx, error) {
	if n.RestID == "" || n.JSON == nil {
		return nil, errors.New("store: Create needs a rest id and a document")
	}
	err := s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		now := s.now()
		var inflight any
		if n.Leased {
			inflight = s.session
		}
		// Inline and reused blobs are complete (a reuse of an incomplete one fails below), so
		// input_done is known before the blobs are written.
		done := len(n.Blobs) > 0
		for _, b := range n.Blobs {
			done = done && (b.Inline || b.ReuseTx != "")
		}
		var id int64
		domain := nullText([]byte(n.RcptDomain))
		err := s.queryRow(ctx, tx, `INSERT INTO transactions (rest_id, json, message_builder, retry, notification,
				input_done, creation_session_id, inflight_session_id, next_attempt_time, creation, last_update, version,
				idempotency_key, request_hash, sender_name, rcpt_domain)
			VALUES (?, ?, ?, ?, ?, ?, ?, `+leaseUnlessHeld+`, ?, ?, ?, 1, ?, ?, ?, ?) RETURNING id`,
			n.RestID, string(n.JSON), nullText(n.MessageBuilder), n.Retry, n.Notification, done,
			s.session, domain, inflight, now, now, now, nullText([]byte(n.IdempotencyKey)), nullText([]byte(n.RequestHash)),
			nullText([]byte(n.Sender)), domain).Scan(&id)
		if err != nil {
			return s.duplicate(err)
		}
		for _, b := range n.Blobs {
			if err := s.attachBlob(ctx, tx, id, b, now); err != nil {
				return err
			}
		}
		if n.Leased && n.StartAttempt {
			_, err := s.startAttempt(ctx, tx, "id = ? AND inflight_session_id = ?", []any{id, s.session}, false, n.Responses)
			if err != nil && !errors.Is(err, sql.ErrNoRows) { // no row: created held
				return err
			}
		}
		return s.insertWebhookEvents(ctx, tx, n.Events, now)
	})
	if errors.Is(err, store.ErrDuplicate) && n.IdempotencyKey != "" {
		if ierr := s.idempotent(ctx, n); ierr != nil {
			return nil, ierr
		}
	}
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, n.RestID)
}

// idempotent explains a create that collided on its idempotency key (rather than its rest
// id), or returns nil.
func (s *Store) idempotent(ctx context.Context, n store.NewTx) error {
	var restID string
	var hash sql.NullString
	err := s.readRow(ctx, `SELECT rest_id, request_hash FROM transactions WHERE idempotency_key = ?`,
		n.IdempotencyKey).Scan(&restID, &hash)
	if err != nil {
		return nil
	}
	return &store.IdempotencyError{RestID: restID, SameRequest: hash.String == n.RequestHash}
}

func (s *Store) Update(ctx context.Context, restID string, version int64, u store.Update) (int64, error) {
	var newVersion int64
	err := s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		now := s.now()
		set := []string{"version = version + 1", "last_update = ?"}
		args := []any{now}
		if u.JSON != nil {
			set = append(set, "json = ?")
			args = append(args, string(u.JSON))
		}
		if u.MessageBuilder != nil {
			set = append(set, "message_builder = ?")
			args = append(args, string(u.MessageBuilder))
		}
		if u.Retry {
			set = append(set, "retry = TRUE", "final_attempt_reason = CASE WHEN final_attempt_reason = 'oneshot' THEN NULL ELSE final_attempt_reason END")
		}
		if u.Notification {
			set = append(set, "notification = TRUE")
		}
		args = append(args, restID, version)
		var id int64
		var attempt int
		err := s.queryRow(ctx, tx, `UPDATE transactions SET `+strings.Join(set, ", ")+`
			WHERE rest_id = ? AND version = ? RETURNING id, version, attempt_count`, args...).Scan(&id, &newVersion, &attempt)
		if errors.Is(err, sql.ErrNoRows) {
			return s.whyNot(ctx, tx, restID)
		}
		if err != nil {
			return err
		}
		if u.Responses != nil {
			if attempt == 0 {
				return errors.New("store: responses written before the first attempt")
			}
			if _, err := s.exec(ctx, tx, `UPDATE attempts SET responses = ?, last_update = ?
				WHERE transaction_id = ? AND attempt_id = ?`, string(u.Responses), now, id, attempt); err != nil {
				return err
			}
		}
		if u.SupersedeHeld {
			if err := s.supersedeHeldEvents(ctx, tx, restID, now); err != nil {
				return err
			}
		}
		if err := s.insertWebhookEvents(ctx, tx, u.Events, now); err != nil {
			return err
		}
		return s.attachBlobs(ctx, tx, id, u.AddBlobs, now)
	})
	return newVersion, err
}

// whyNot explains a versioned write that matched no row.
func (s *Store) whyNot(ctx context.Context, tx *sql.Tx, restID string) error {
	var v int64
	err := s.queryRow(ctx, tx, `SELECT version FROM transactions WHERE rest_id = ?`, restID).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	return store.ErrConflict
}

func (s *Store) Touch(ctx context.Context, restID string) (int64, error) {
	var v int64
	err := s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		err := s.queryRow(ctx, tx, `UPDATE transactions SET version = version + 1, last_update = ?
			WHERE rest_id = ? RETURNING version`, s.now(), restID).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	})
	return v, err
}

func (s *Store) Cancel(ctx context.Context, restID string) (int64, error) {
	var v int64
	err := s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		err := s.queryRow(ctx, tx, `UPDATE transactions SET cancelled = TRUE, final_attempt_reason = ?,
				version = version + 1, last_update = ?
			WHERE rest_id = ? AND (final_attempt_reason IS NULL OR final_attempt_reason = ?) RETURNING version`,
			store.FinalCancelled, s.now(), restID, store.FinalOneshot).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			// Already final: cancelling is a no-op.
			err = s.queryRow(ctx, tx, `SELECT version FROM transactions WHERE rest_id = ?`, restID).Scan(&v)
			if errors.Is(err, sql.ErrNoRows) {
				return store.ErrNotFound
			}
		}
		return err
	})
	return v, err
}

func (s *Store) StartAttempt(ctx context.Context, restID string) (store.Attempt, error) {
	var a store.Attempt
	err := s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		a, err = s.startAttempt(ctx, tx, "rest_id = ? AND inflight_session_id = ?", []any{restID, s.session}, false, nil)
		if errors.Is(err, sql.ErrNoRows) {
			if err := s.whyNot(ctx, tx, restID); err != store.ErrConflict {
				return err
			}
			return store.ErrNotLeased
		}
		return err
	})
	return a, err
}

// startAttempt takes the lease of the row that where (with its args) selects and opens the
// next attempt; a notification-only pseudo-attempt opens none. The lease condition is part
// of where, so that a writer committing in between (an attempt ending) is seen: a check in a
// separate statement would not be, under READ COMMITTED. A transaction without retry is
// marked oneshot so that it is never loaded again. No row gives sql.ErrNoRows.
// startAttempt leases and starts the next attempt of the transaction where says, with its
// responses so far (nil: none).
func (s *Store) startAttempt(ctx context.Context, tx *sql.Tx, where string, args []any, notificationOnly bool, responses []byte) (store.Attempt, error) {
	now := s.now()
	step := 1
	if notificationOnly {
		step = 0
	}
	var a store.Attempt
	var id int64
	err := s.queryRow(ctx, tx, `UPDATE transactions SET inflight_session_id = ?, attempt_count = attempt_count + ?,
			final_attempt_reason = CASE WHEN retry OR final_attempt_reason IS NOT NULL THEN final_attempt_reason ELSE ? END,
			version = version + 1, last_update = ?
		WHERE `+where+` RETURNING id, attempt_count, version`,
		append([]any{s.session, step, store.FinalOneshot, now}, args...)...).Scan(&id, &a.ID, &a.Version)
	if err != nil || notificationOnly {
		return a, err
	}
	_, err = s.exec(ctx, tx, `INSERT INTO attempts (transaction_id, attempt_id, responses, creation, last_update) VALUES (?, ?, ?, ?, ?)`,
		id, a.ID, nullText(responses), now, now)
	return a, err
}

func (s *Store) Dequeue(ctx context.Context) (*store.Tx, error) {
	var restID string
	var notificationOnly bool
	err := s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		restID, notificationOnly = "", false
		var id int64
		err := s.queryRow(ctx, tx, `SELECT id, rest_id FROM transactions
			WHERE inflight_session_id IS NULL AND no_final_notification AND notification
			ORDER BY id LIMIT 1`+s.d.LockRows).Scan(&id, &restID)
		if err == nil {
			notificationOnly = true
		} else if errors.Is(err, sql.ErrNoRows) {
			err = s.queryRow(ctx, tx, `SELECT id, rest_id FROM transactions
				WHERE inflight_session_id IS NULL AND final_attempt_reason IS NULL AND next_attempt_time <= ?
					AND (input_done OR creation_session_id = ?)`+notHeld+`
				ORDER BY next_attempt_time LIMIT 1`+s.d.LockRows, s.now(), s.session).Scan(&id, &restID)
		}
		if errors.Is(err, sql.ErrNoRows) {
			restID = ""
			return nil
		}
		if err != nil {
			return err
		}
		// The row is locked (FOR UPDATE on PostgreSQL, the one writer on SQLite); the condition
		// restates that it is free.
		_, err = s.startAttempt(ctx, tx, "id = ? AND inflight_session_id IS NULL", []any{id}, notificationOnly, nil)
		return err
	})
	if err != nil || restID == "" {
		return nil, err
	}
	t, err := s.Get(ctx, restID)
	if t != nil {
		t.NotificationOnly = notificationOnly
	}
	return t, err
}

func (s *Store) FinishAttempt(ctx context.Context, restID string, f store.Finish) (int64, error) {
	var v int64
	err := s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		now := s.now()
		next := now
		if !f.NextAttempt.IsZero() {
			next = f.NextAttempt.UnixMilli()
		}
		var id int64
		var attempt int
		// A reason already final (a cancel that raced the attempt) is kept. A transaction
		// that ends without notification remembers that it owes one, in case notification is
		// turned on later (exploder store-and-forward).
		err := s.queryRow(ctx, tx, `UPDATE transactions SET inflight_session_id = NULL, next_attempt_time = ?,
				final_attempt_reason = CASE WHEN final_attempt_reason IS NULL OR final_attempt_reason = ?
					THEN COALESCE(?, final_attempt_reason) ELSE final_attempt_reason END,
				no_final_notification = CASE WHEN ? THEN FALSE WHEN ? AND NOT notification THEN TRUE
					ELSE no_final_notification END,
				version = version + 1, last_update = ?
			WHERE rest_id = ? AND inflight_session_id = ? RETURNING id, attempt_count, version`,
			next, store.FinalOneshot, nullText([]byte(f.FinalReason)), f.NotificationSent, f.FinalReason != "",
			now, restID, s.session).Scan(&id, &attempt, &v)
		if errors.Is(err, sql.ErrNoRows) {
			if err := s.whyNot(ctx, tx, restID); err != store.ErrConflict {
				return err
			}
			return store.ErrNotLeased
		}
		if err == nil {
			err = s.insertWebhookEvents(ctx, tx, f.Events, now)
		}
		if err != nil || f.Responses == nil {
			return err
		}
		_, err = s.exec(ctx, tx, `UPDATE attempts SET responses = ?, last_update = ? WHERE transaction_id = ? AND attempt_id = ?`,
			string(f.Responses), now, id, attempt)
		return err
	})
	return v, err
}

const selectTx = `SELECT t.id, t.rest_id, t.version, t.json, t.message_builder, t.input_done, t.cancelled,
	t.final_attempt_reason, t.retry, t.notification, t.no_final_notification, t.next_attempt_time, t.creation,
	t.last_update, t.attempt_count, a.responses, t.inflight_session_id, s.uri, s.live
FROM transactions t
LEFT JOIN attempts a ON a.transaction_id = t.id AND a.attempt_id = t.attempt_count
LEFT JOIN sessions s ON s.id = t.inflight_session_id
WHERE t.rest_id = ?`

const selectBlobs = `SELECT r.blob_rest_id, b.length, b.total FROM blob_refs r
		JOIN blobs b ON b.id = r.blob_id WHERE r.transaction_id = ? ORDER BY r.blob_rest_id`

func (s *Store) Get(ctx context.Context, restID string) (*store.Tx, error) {
	// Prepare before taking a connection for the transaction: preparing needs one too.
	for _, q := range []string{selectTx, selectBlobs} {
		if _, err := s.prepared(ctx, s.rdb, q); err != nil {
			return nil, err
		}
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var t store.Tx
	var mb, reason, uri sql.NullString
	var inflight sql.NullInt64
	var live sql.NullBool
	var next, creation, last int64
	err = s.readTxRow(ctx, tx, selectTx, restID).Scan(&t.ID, &t.RestID, &t.Version, &t.JSON, &mb, &t.InputDone,
		&t.Cancelled, &reason, &t.Retry, &t.Notification, &t.NoFinalNotification, &next, &creation, &last,
		&t.AttemptCount, &t.Responses, &inflight, &uri, &live)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if mb.Valid {
		t.MessageBuilder = []byte(mb.String)
	}
	t.FinalAttemptReason = reason.String
	t.NextAttempt, t.Creation, t.LastUpdate = time.UnixMilli(next), time.UnixMilli(creation), time.UnixMilli(last)
	t.Lease = s.lease(inflight, uri, live)
	rows, err := s.query(ctx, tx, selectBlobs, t.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var b store.Blob
		var total sql.NullInt64
		if err := rows.Scan(&b.ID, &b.Length, &total); err != nil {
			return nil, err
		}
		b.Total = totalOf(total)
		t.Blobs = append(t.Blobs, b)
	}
	return &t, rows.Err()
}

func (s *Store) Head(ctx context.Context, restID string) (store.Head, error) {
	var h store.Head
	var reason, uri sql.NullString
	var inflight sql.NullInt64
	var live sql.NullBool
	err := s.readRow(ctx, `SELECT t.version, t.final_attempt_reason, t.inflight_session_id, s.uri, s.live
		FROM transactions t LEFT JOIN sessions s ON s.id = t.inflight_session_id WHERE t.rest_id = ?`, restID).
		Scan(&h.Version, &reason, &inflight, &uri, &live)
	if errors.Is(err, sql.ErrNoRows) {
		return h, store.ErrNotFound
	}
	h.Lease = s.lease(inflight, uri, live)
	// A oneshot transaction is done once its one attempt has let go of the lease.
	h.Final = reason.Valid && (reason.String != store.FinalOneshot || !inflight.Valid)
	return h, err
}

// lease interprets a lease column: ours, another live replica's, or nobody's. A session with
// our own URI (an earlier run of this replica not reaped yet) is not worth a redirect.
func (s *Store) lease(inflight sql.NullInt64, uri sql.NullString, live sql.NullBool) store.Lease {
	switch {
	case !inflight.Valid:
		return store.Lease{}
	case inflight.Int64 == s.session:
		return store.Lease{Here: true}
	case live.Bool && uri.String != s.opts.SessionURI:
		return store.Lease{OwnerURI: uri.String}
	}
	return store.Lease{}
}

func (s *Store) GC(ctx context.Context, ttl time.Duration) (store.GCStats, error) {
	var st store.GCStats
	for {
		var txs, blobs int64
		err := s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
			res, err := s.exec(ctx, tx, `DELETE FROM transactions WHERE id IN (SELECT id FROM transactions
				WHERE inflight_session_id IS NULL AND (NOT input_done OR final_attempt_reason IS NOT NULL)
					AND NOT (no_final_notification AND notification) AND last_update < ? LIMIT ?)`, s.now()-ttl.Milliseconds(), gcBatch)
			if err != nil {
				return err
			}
			if txs, err = res.RowsAffected(); err != nil {
				return err
			}
			res, err = s.exec(ctx, tx, `DELETE FROM blobs WHERE id IN (SELECT id FROM blobs b
				WHERE NOT EXISTS (SELECT 1 FROM blob_refs r WHERE r.blob_id = b.id) LIMIT ?)`, gcBatch)
			if err != nil {
				return err
			}
			blobs, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return st, err
		}
		st.Transactions += int(txs)
		st.Blobs += int(blobs)
		if txs < gcBatch && blobs < gcBatch {
			break
		}
	}
	if s.d.AfterGC != "" && st != (store.GCStats{}) {
		if err := s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, s.d.AfterGC)
			return err
		}); err != nil {
			return st, fmt.Errorf("after gc: %w", err)
		}
	}
	return st, nil
}

// gcBatch bounds one GC write so that it does not hold the write lock for long.
const gcBatch = 1000

func (s *Store) duplicate(err error) error {
	if err != nil && s.d.IsUnique(err) {
		return store.ErrDuplicate
	}
	return err
}

func nullText(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

func totalOf(n sql.NullInt64) int64 {
	if !n.Valid {
		return -1
	}
	return n.Int64
}
