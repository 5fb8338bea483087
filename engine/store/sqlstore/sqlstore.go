// Package sqlstore implements engine/store over database/sql once, for every SQL backend. The
// backends (engine/store/sqlite, engine/store/postgres) contribute a driver, a Dialect and
// their schema migrations.
//
// All writes go through a committer that batches concurrent writers into one database
// transaction (group commit); reads go straight to the read pool.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/koukan/koukan/engine/store"
)

// Dialect is what differs between SQL backends.
type Dialect struct {
	Name string
	// Positional makes queries use $1, $2 ... instead of ?.
	Positional bool
	// LockRows is appended to dequeue selects so replicas skip rows another one is taking;
	// ForUpdate to selects that must lock the row they read.
	LockRows  string
	ForUpdate string
	// Migrations holds NNNN_name.sql files, applied in order.
	Migrations fs.FS
	// MigrationLock is run first in the migration transaction so that replicas starting
	// together apply migrations once.
	MigrationLock string
	// AfterGC is run after a GC pass that deleted something (space reclamation).
	AfterGC string
	// IsUnique tells a unique-constraint violation.
	IsUnique func(error) bool
	// Retryable tells errors after which a write is simply run again (deadlocks and
	// serialization failures between concurrent batches).
	Retryable func(error) bool
	// Committers is how many batches may commit at once (default 1). SQLite has one writer;
	// a server overlaps the round trips of several batches and groups their WAL flushes.
	Committers int
	// Classify tells the driver's errors that mean store.ErrUnavailable or store.ErrFull
	// (which it returns), from all others (nil).
	Classify func(error) error
}

// Store is the SQL implementation of store.Store.
type Store struct {
	d       Dialect
	wdb     *sql.DB
	rdb     *sql.DB
	c       *committer
	opts    store.Options
	session int64

	qmu     sync.Mutex
	queries map[string]string

	stmtMu sync.Mutex
	stmts  map[stmtKey]*sql.Stmt
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.Classifier = (*Store)(nil)
)

// Open migrates the schema, registers a live session and starts the committer. wdb takes the
// writes; rdb the reads (it may be the same pool).
func Open(ctx context.Context, d Dialect, wdb, rdb *sql.DB, opts store.Options) (*Store, error) {
	s := &Store{d: d, wdb: wdb, rdb: rdb, opts: opts.WithDefaults(), queries: map[string]string{}, stmts: map[stmtKey]*sql.Stmt{}}
	if err := s.migrate(ctx); err != nil {
		return nil, fmt.Errorf("%s schema migration: %w", d.Name, err)
	}
	s.c = newCommitter(wdb, max(d.Committers, 1), s.opts.MaxBatch, d.Retryable)
	now := s.now()
	err := s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := s.queryRow(ctx, tx, `INSERT INTO sessions (uri, live, creation, last_update)
			VALUES (?, TRUE, ?, ?) RETURNING id`, s.opts.SessionURI, now, now).Scan(&s.session); err != nil {
			return err
		}
		// A live session with our URI is an earlier run of this replica that died without
		// closing (kill -9, a crash): its work is ours to take over now, not after the
		// session TTL. Replicas must have distinct session URIs for this to hold.
		res, err := s.exec(ctx, tx, `UPDATE sessions SET live = FALSE WHERE uri = ? AND id <> ? AND live`, s.opts.SessionURI, s.session)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			_, err = s.exec(ctx, tx, `UPDATE transactions SET inflight_session_id = NULL, version = version + 1, last_update = ?
				WHERE inflight_session_id IN (SELECT id FROM sessions WHERE NOT live)`, now)
		}
		return err
	})
	if err != nil {
		s.c.close()
		return nil, fmt.Errorf("%s: registering session: %w", d.Name, err)
	}
	return s, nil
}

// Classify implements store.Classifier with the dialect's Classify; a closed store is
// unavailable too.
func (s *Store) Classify(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrFull) {
		return err
	}
	var kind error
	if errors.Is(err, errClosed) {
		kind = store.ErrUnavailable
	} else if s.d.Classify != nil {
		kind = s.d.Classify(err)
	}
	if kind == nil {
		return err
	}
	return fmt.Errorf("%w: %w", kind, err)
}

func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.rdb.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
}

func (s *Store) Queue(ctx context.Context) (store.QueueStats, error) {
	var q store.QueueStats
	now := s.now()
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT
			COUNT(CASE WHEN t.inflight_session_id IS NOT NULL THEN 1 END),
			COUNT(CASE WHEN t.inflight_session_id IS NULL AND NOT `+suspended+` AND t.next_attempt_time <= ? THEN 1 END),
			COUNT(CASE WHEN t.inflight_session_id IS NULL AND NOT `+suspended+` AND t.next_attempt_time > ? THEN 1 END),
			COUNT(CASE WHEN t.inflight_session_id IS NULL AND `+suspended+` THEN 1 END)
		FROM transactions t WHERE t.final_attempt_reason IS NULL`), now, now).Scan(&q.InFlight, &q.Due, &q.Deferred, &q.Held)
	return q, err
}

func (s *Store) SessionID() int64   { return s.session }
func (s *Store) SessionURI() string { return s.opts.SessionURI }

func (s *Store) now() int64 { return s.opts.Now().UnixMilli() }

// q adapts a query written with ? placeholders to the dialect, once per query text.
func (s *Store) q(query string) string {
	if !s.d.Positional {
		return query
	}
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if out, ok := s.queries[query]; ok {
		return out
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	s.queries[query] = b.String()
	return b.String()
}

func (s *Store) Refresh(ctx context.Context) error {
	return s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE sessions SET last_update = ? WHERE id = ? AND live`, s.now(), s.session)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrSessionLost
		}
		return nil
	})
}

func (s *Store) ReapSessions(ctx context.Context, ttl time.Duration) (int, error) {
	var n int64
	err := s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		now := s.now()
		if _, err := s.exec(ctx, tx, `UPDATE sessions SET live = FALSE WHERE live AND last_update < ? AND id <> ?`,
			now-ttl.Milliseconds(), s.session); err != nil {
			return err
		}
		// Release the leases of dead sessions with a version bump, so that pollers notice.
		if _, err := s.exec(ctx, tx, `UPDATE transactions SET inflight_session_id = NULL, version = version + 1, last_update = ?
			WHERE inflight_session_id IN (SELECT id FROM sessions WHERE NOT live)`, now); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE NOT live`)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// Close ends the session, releasing its leases, then stops the committer.
func (s *Store) Close() error {
	err := s.c.do(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `UPDATE transactions SET inflight_session_id = NULL, version = version + 1, last_update = ?
			WHERE inflight_session_id = ?`, s.now(), s.session); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `DELETE FROM sessions WHERE id = ?`, s.session)
		return err
	})
	s.c.close()
	return errors.Join(err, s.closeDBs())
}

// Abandon stops the store without ending its session, as a crash would; tests use it to
// leave leases for another replica to reap.
func (s *Store) Abandon() error {
	s.c.close()
	return s.closeDBs()
}

func (s *Store) closeDBs() error {
	s.closeStmts()
	err := s.wdb.Close()
	if s.rdb != s.wdb {
		err = errors.Join(err, s.rdb.Close())
	}
	return err
}
