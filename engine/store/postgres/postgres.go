// Package postgres is the shared storage backend for router clusters (pgx). Several router
// replicas use one database; row locks with SKIP LOCKED keep them from dequeuing the same
// transaction, and an advisory lock serializes schema migrations when they start together.
package postgres

import (
	"context"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLockKey is an arbitrary constant naming koukan's advisory lock.
const migrationLockKey = 0x6b6f756b616e

// Open connects to the database at dsn (a postgres:// URL or key=value string).
func Open(ctx context.Context, dsn string, opts store.Options) (*sqlstore.Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: bad connection string: %w", err)
	}
	// Writers get connections of their own so that a burst of reads never delays a commit.
	n := committers
	wdb, rdb := stdlib.OpenDB(*cfg), stdlib.OpenDB(*cfg)
	// One connection per committer, and one more so that preparing a statement never waits
	// for the committers' open transactions.
	wdb.SetMaxOpenConns(n + 1)
	wdb.SetMaxIdleConns(n + 1)
	rdb.SetMaxOpenConns(16)
	rdb.SetMaxIdleConns(16)
	closeAll := func() { wdb.Close(); rdb.Close() }
	if err := wdb.PingContext(ctx); err != nil {
		closeAll()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	sub, _ := fs.Sub(migrations, "migrations")
	s, err := sqlstore.Open(ctx, sqlstore.Dialect{
		Name:          "postgres",
		Positional:    true,
		LockRows:      " FOR UPDATE SKIP LOCKED",
		ForUpdate:     " FOR UPDATE",
		Migrations:    sub,
		MigrationLock: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLockKey),
		IsUnique:      isUnique,
		Retryable:     isRetryable,
		Classify:      classify,
		Committers:    n,
	}, wdb, rdb, opts)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return s, nil
}

func isUnique(err error) bool { return pgCode(err) == "23505" }

// isRetryable: deadlock_detected and serialization_failure.
func isRetryable(err error) bool { c := pgCode(err); return c == "40P01" || c == "40001" }

// classify: the server out of disk space (disk_full) is store.ErrFull; a server that is
// away is store.ErrUnavailable: it cannot be connected to or refuses connections for now
// (class 08, too_many_connections, admin_shutdown, crash_shutdown, cannot_connect_now), or
// the connection broke (a network error, a connection pgx has closed). The caller's own
// context ending is neither.
func classify(err error) error {
	switch c := pgCode(err); {
	case c == "53100":
		return store.ErrFull
	case strings.HasPrefix(c, "08"), c == "53300", c == "57P01", c == "57P02", c == "57P03":
		return store.ErrUnavailable
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return store.ErrUnavailable
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, driver.ErrBadConn) {
		return store.ErrUnavailable
	}
	return nil
}

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// committers is how many write batches run at once. Loopback round trips, not syncs,
// dominate a PostgreSQL commit, so overlapping a few batches pays; more only adds lock waits.
const committers = 4
