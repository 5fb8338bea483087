package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/koukan/koukan/engine/store"
)

// The queue admin API: listing by state, retry now, and domain suspension. A suspended
// domain holds its transactions in two places of tx.go: Create makes them unleased (the
// creator does not hand them off) and Dequeue skips them.

// suspended is true of a transaction row t whose recipient domain is suspended.
const suspended = `EXISTS (SELECT 1 FROM suspended_domains d WHERE d.domain = t.rcpt_domain)`

// notHeld is Dequeue's condition (its table is not aliased) that the row is not held.
const notHeld = ` AND NOT EXISTS (SELECT 1 FROM suspended_domains d WHERE d.domain = transactions.rcpt_domain)`

// leaseUnlessHeld is Create's inflight_session_id: the session given as the second
// argument, or none when the domain given as the first is suspended.
const leaseUnlessHeld = `CASE WHEN EXISTS (SELECT 1 FROM suspended_domains WHERE domain = ?) THEN NULL ELSE CAST(? AS BIGINT) END`

// statePredicates are the conditions on a transaction row t for each state; they are
// mutually exclusive and cover every row (see store.State). Due and deferred take the time
// now as their one argument. The reasons are constants, safe to inline.
var statePredicates = []struct {
	state store.State
	cond  string
}{
	{store.StateDelivered, `t.final_attempt_reason = '` + store.FinalSuccess + `'`},
	{store.StateCancelled, `t.final_attempt_reason = '` + store.FinalCancelled + `'`},
	{store.StateFailed, `(t.final_attempt_reason NOT IN ('` + store.FinalSuccess + `', '` + store.FinalCancelled + `', '` + store.FinalOneshot + `')
		OR (t.final_attempt_reason = '` + store.FinalOneshot + `' AND t.inflight_session_id IS NULL))`},
	{store.StateInFlight, `(t.inflight_session_id IS NOT NULL AND (t.final_attempt_reason IS NULL OR t.final_attempt_reason = '` + store.FinalOneshot + `'))`},
	{store.StateHeld, `(t.inflight_session_id IS NULL AND t.final_attempt_reason IS NULL AND ` + suspended + `)`},
	{store.StateDue, `(t.inflight_session_id IS NULL AND t.final_attempt_reason IS NULL AND NOT ` + suspended + ` AND t.next_attempt_time <= ?)`},
	{store.StateDeferred, `(t.inflight_session_id IS NULL AND t.final_attempt_reason IS NULL AND NOT ` + suspended + ` AND t.next_attempt_time > ?)`},
}

// stateCase is the state of a transaction row t as an SQL expression; it takes the time now
// as its one argument (the last predicate is its ELSE).
var stateCase = func() string {
	var b strings.Builder
	b.WriteString("CASE")
	last := len(statePredicates) - 1
	for _, p := range statePredicates[:last] {
		b.WriteString(" WHEN " + p.cond + " THEN '" + string(p.state) + "'")
	}
	b.WriteString(" ELSE '" + string(statePredicates[last].state) + "' END")
	return b.String()
}()

// stateCond is the condition for one state and whether it takes the time as an argument.
func stateCond(st store.State) (string, bool) {
	for _, p := range statePredicates {
		if p.state == st {
			return p.cond, strings.Contains(p.cond, "?")
		}
	}
	return "", false
}

func (s *Store) List(ctx context.Context, q store.ListQuery) ([]store.Summary, error) {
	now := s.now()
	var where []string
	args := []any{now}
	if q.RestID != "" {
		where, args = append(where, "t.rest_id = ?"), append(args, q.RestID)
	}
	if q.State != "" {
		cond, timed := stateCond(q.State)
		if cond == "" {
			return nil, errors.New("store: unknown state " + string(q.State))
		}
		where = append(where, cond)
		if timed {
			args = append(args, now)
		}
	}
	if q.Sender != "" {
		where, args = append(where, "t.sender_name = ?"), append(args, q.Sender)
	}
	if q.RcptDomain != "" {
		where, args = append(where, "t.rcpt_domain = ?"), append(args, q.RcptDomain)
	}
	if !q.Since.IsZero() {
		where, args = append(where, "t.last_update >= ?"), append(args, q.Since.UnixMilli())
	}
	if q.Before > 0 {
		where, args = append(where, "t.id < ?"), append(args, q.Before)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	query := `SELECT t.id, t.rest_id, t.json, t.sender_name, t.rcpt_domain, ` + stateCase + `, t.final_attempt_reason,
			t.attempt_count, a.responses, t.next_attempt_time, t.creation, t.last_update
		FROM transactions t
		LEFT JOIN attempts a ON a.transaction_id = t.id AND a.attempt_id = t.attempt_count`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY t.id DESC LIMIT ?"
	rows, err := s.rdb.QueryContext(ctx, s.q(query), append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Summary
	for rows.Next() {
		var t store.Summary
		var sender, domain, reason sql.NullString
		var next, creation, last int64
		if err := rows.Scan(&t.ID, &t.RestID, &t.JSON, &sender, &domain, &t.State, &reason, &t.AttemptCount,
			&t.Responses, &next, &creation, &last); err != nil {
			return nil, err
		}
		t.Sender, t.RcptDomain, t.FinalAttemptReason = sender.String, domain.String, reason.String
		t.NextAttempt, t.Creation, t.LastUpdate = time.UnixMilli(next), time.UnixMilli(creation), time.UnixMilli(last)
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s *Store) Attempts(ctx context.Context, restID string) ([]store.AttemptRecord, error) {
	var id int64
	err := s.readRow(ctx, `SELECT id FROM transactions WHERE rest_id = ?`, restID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT attempt_id, responses, creation, last_update FROM attempts
		WHERE transaction_id = ? ORDER BY attempt_id`), id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.AttemptRecord
	for rows.Next() {
		var a store.AttemptRecord
		var creation, last int64
		if err := rows.Scan(&a.ID, &a.Responses, &creation, &last); err != nil {
			return nil, err
		}
		a.Creation, a.LastUpdate = time.UnixMilli(creation), time.UnixMilli(last)
		out = append(out, a)
	}
	return out, rows.Err()
}

func (s *Store) RetryNow(ctx context.Context, restID string) (int64, error) {
	var v int64
	err := s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		now := s.now()
		// An overdue transaction keeps its place in the due order.
		err := s.queryRow(ctx, tx, `UPDATE transactions SET next_attempt_time = CASE WHEN next_attempt_time > ? THEN ? ELSE next_attempt_time END,
				version = version + 1, last_update = ?
			WHERE rest_id = ? AND final_attempt_reason IS NULL AND inflight_session_id IS NULL RETURNING version`,
			now, now, now, restID).Scan(&v)
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var reason sql.NullString
		var inflight sql.NullInt64
		err = s.queryRow(ctx, tx, `SELECT final_attempt_reason, inflight_session_id FROM transactions WHERE rest_id = ?`,
			restID).Scan(&reason, &inflight)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return store.ErrNotFound
		case err != nil:
			return err
		case inflight.Valid && (!reason.Valid || reason.String == store.FinalOneshot):
			return store.ErrInFlight
		}
		return store.ErrFinal
	})
	return v, err
}

func (s *Store) SuspendDomain(ctx context.Context, domain string) (bool, error) {
	if domain == "" {
		return false, errors.New("store: SuspendDomain needs a domain")
	}
	var n int64
	err := s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `INSERT INTO suspended_domains (domain, creation) VALUES (?, ?)
			ON CONFLICT (domain) DO NOTHING`, domain, s.now())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n > 0, err
}

func (s *Store) ResumeDomain(ctx context.Context, domain string) (bool, error) {
	var n int64
	err := s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `DELETE FROM suspended_domains WHERE domain = ?`, domain)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n > 0, err
}

func (s *Store) SuspendedDomains(ctx context.Context) ([]store.SuspendedDomain, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT d.domain, d.creation, COUNT(t.id) FROM suspended_domains d
		LEFT JOIN transactions t ON t.rcpt_domain = d.domain AND t.final_attempt_reason IS NULL AND t.inflight_session_id IS NULL
		GROUP BY d.domain, d.creation ORDER BY d.domain`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.SuspendedDomain
	for rows.Next() {
		var d store.SuspendedDomain
		var since int64
		if err := rows.Scan(&d.Domain, &since, &d.Held); err != nil {
			return nil, err
		}
		d.Since = time.UnixMilli(since)
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *Store) DomainStats(ctx context.Context, since time.Time) ([]store.DomainStats, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT t.rcpt_domain, `+stateCase+`, COUNT(*) FROM transactions t
		WHERE t.rcpt_domain IS NOT NULL AND t.last_update >= ? GROUP BY 1, 2 ORDER BY 1`), s.now(), since.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.DomainStats
	for rows.Next() {
		var domain string
		var st store.State
		var n int
		if err := rows.Scan(&domain, &st, &n); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Domain != domain {
			out = append(out, store.DomainStats{Domain: domain, Counts: map[store.State]int{}})
		}
		out[len(out)-1].Counts[st] = n
	}
	return out, rows.Err()
}
