package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/koukan/koukan/engine/store"
)

// The webhook event queue (store.Webhooks). Events are inserted by the write that records the
// outcome they report (FinishAttempt, Create); everything else about them is here.

// insertWebhookEvents queues events inside the caller's write.
func (s *Store) insertWebhookEvents(ctx context.Context, tx *sql.Tx, events []store.NewWebhookEvent, now int64) error {
	for _, e := range events {
		due := max(now, e.NotBefore.UnixMilli())
		if _, err := s.exec(ctx, tx, `INSERT INTO webhook_events (event_id, rest_id, sender, tag, payload, creation, next_attempt)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, e.ID, e.RestID, e.Sender, e.Tag, string(e.Payload), now, due); err != nil {
			return err
		}
	}
	return nil
}

// supersedeHeldEvents drops restID's events that are still held back and were never
// claimed (store.Update.SupersedeHeld).
func (s *Store) supersedeHeldEvents(ctx context.Context, tx *sql.Tx, restID string, now int64) error {
	_, err := s.exec(ctx, tx, `UPDATE webhook_events SET finished = ?, dropped = 'superseded'
		WHERE rest_id = ? AND finished IS NULL AND attempts = 0 AND next_attempt > ?`, now, restID, now)
	return err
}

const webhookColumns = `id, event_id, rest_id, sender, tag, payload, creation, next_attempt, attempts, last_error, finished, dropped`

// claimWebhooks takes the leases. An event is claimable when it is due, no earlier event of
// its transaction is unfinished, and its lease (if any) expired or belongs to a session that
// is not live. The rows are locked while they are chosen (FOR UPDATE SKIP LOCKED on
// PostgreSQL, the one writer on SQLite), so concurrent claims take different events; and as
// an event held by another replica is unfinished, its successors wait for it.
const claimWebhooks = `UPDATE webhook_events SET lease_session = ?, lease_until = ?, attempts = attempts + 1
	WHERE id IN (SELECT e.id FROM webhook_events e
		WHERE e.finished IS NULL AND e.next_attempt <= ?
			AND (e.lease_session IS NULL OR e.lease_until <= ?
				OR NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = e.lease_session AND s.live))
			AND NOT EXISTS (SELECT 1 FROM webhook_events p WHERE p.rest_id = e.rest_id AND p.id < e.id AND p.finished IS NULL)
		ORDER BY e.next_attempt, e.id LIMIT ?%s)
	RETURNING ` + webhookColumns

func (s *Store) ClaimWebhookEvents(ctx context.Context, n int, lease time.Duration) ([]store.WebhookEvent, error) {
	var events []store.WebhookEvent
	err := s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		events = events[:0]
		now := s.now()
		st, err := s.prepared(ctx, s.wdb, fmt.Sprintf(claimWebhooks, s.d.LockRows))
		if err != nil {
			return err
		}
		rows, err := tx.StmtContext(ctx, st).QueryContext(ctx, s.session, now+lease.Milliseconds(), now, now, n)
		if err != nil {
			return err
		}
		events, err = scanWebhookEvents(rows, events)
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(events, func(a, b store.WebhookEvent) int { return cmp.Compare(a.Seq, b.Seq) })
	return events, nil
}

func (s *Store) WebhookEventDelivered(ctx context.Context, seq int64) error {
	return s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `UPDATE webhook_events SET finished = ?, lease_session = NULL, lease_until = NULL
			WHERE id = ? AND finished IS NULL`, s.now(), seq)
		return err
	})
}

func (s *Store) RetryWebhookEvent(ctx context.Context, seq int64, next time.Time, lastError string) error {
	return s.releaseWebhook(ctx, `next_attempt = ?, last_error = ?`, next.UnixMilli(), lastError, seq)
}

func (s *Store) DropWebhookEvent(ctx context.Context, seq int64, reason string) error {
	return s.releaseWebhook(ctx, `finished = ?, dropped = ?`, s.now(), reason, seq)
}

// releaseWebhook ends this session's lease on event seq, setting two more columns.
func (s *Store) releaseWebhook(ctx context.Context, set string, a, b any, seq int64) error {
	return s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE webhook_events SET `+set+`, lease_session = NULL, lease_until = NULL
			WHERE id = ? AND finished IS NULL AND lease_session = ?`, a, b, seq, s.session)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return cmp.Or(err, store.ErrNotLeased)
		}
		return nil
	})
}

func (s *Store) PurgeWebhookEvents(ctx context.Context, ttl time.Duration) (int, error) {
	total := 0
	for {
		var n int64
		err := s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
			res, err := s.exec(ctx, tx, `DELETE FROM webhook_events WHERE id IN (SELECT id FROM webhook_events
				WHERE finished IS NOT NULL AND finished < ? LIMIT ?)`, s.now()-ttl.Milliseconds(), gcBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		total += int(n)
		if err != nil || n < gcBatch {
			return total, err
		}
	}
}

func (s *Store) WebhookEvents(ctx context.Context, restID string) ([]store.WebhookEvent, error) {
	st, err := s.prepared(ctx, s.rdb, `SELECT `+webhookColumns+` FROM webhook_events WHERE rest_id = ? ORDER BY id`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, restID)
	if err != nil {
		return nil, err
	}
	return scanWebhookEvents(rows, nil)
}

// scanWebhookEvents reads rows of webhookColumns, appending to events, and closes rows.
func scanWebhookEvents(rows *sql.Rows, events []store.WebhookEvent) ([]store.WebhookEvent, error) {
	defer rows.Close()
	for rows.Next() {
		var e store.WebhookEvent
		var payload string
		var creation, next int64
		var lastError, dropped sql.NullString
		var finished sql.NullInt64
		if err := rows.Scan(&e.Seq, &e.ID, &e.RestID, &e.Sender, &e.Tag, &payload, &creation, &next, &e.Attempts,
			&lastError, &finished, &dropped); err != nil {
			return events, err
		}
		e.Payload, e.LastError, e.Dropped = []byte(payload), lastError.String, dropped.String
		e.Creation, e.NextAttempt = time.UnixMilli(creation), time.UnixMilli(next)
		if finished.Valid {
			e.Finished = time.UnixMilli(finished.Int64)
		}
		events = append(events, e)
	}
	return events, rows.Err()
}
