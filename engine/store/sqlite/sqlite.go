// Package sqlite is the embedded storage backend: one database file, no server, no cgo
// (modernc.org/sqlite). Durability settings: WAL journal, synchronous=FULL (each commit is
// fsynced before it is acknowledged), foreign keys on every connection.
//
// Writes share one connection through the group committer; reads use a separate pool, which
// WAL lets run alongside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Open opens (creating if needed) the database file at path.
func Open(ctx context.Context, path string, opts store.Options) (*sqlstore.Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
	}
	dsn := func(pragmas ...string) string {
		q := url.Values{}
		for _, p := range pragmas {
			q.Add("_pragma", p)
		}
		return "file:" + path + "?" + q.Encode()
	}
	// Settings kept in the database file are made once, on a connection of their own:
	// changing them takes the write lock, which a pool connection opening later must not
	// wait for. auto_vacuum only takes effect before the first table exists.
	setup, err := sql.Open("sqlite", dsn("busy_timeout(10000)", "auto_vacuum(incremental)", "journal_mode(WAL)"))
	if err != nil {
		return nil, err
	}
	err = setup.PingContext(ctx)
	setup.Close()
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	perConn := []string{"busy_timeout(10000)", "foreign_keys(1)", "synchronous(FULL)"}
	wdb, err := sql.Open("sqlite", dsn(perConn...)+"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	// One connection writes (SQLite has one writer); the second only prepares statements,
	// which must not wait for the writer's open transaction.
	wdb.SetMaxOpenConns(2)
	rdb, err := sql.Open("sqlite", dsn(append(perConn, "query_only(1)")...))
	if err != nil {
		wdb.Close()
		return nil, err
	}
	rdb.SetMaxOpenConns(8)
	// As many idle as open: a closed connection takes its prepared statements with it.
	rdb.SetMaxIdleConns(8)
	sub, _ := fs.Sub(migrations, "migrations")
	s, err := sqlstore.Open(ctx, sqlstore.Dialect{
		Name:       "sqlite",
		Migrations: sub,
		AfterGC:    "PRAGMA incremental_vacuum",
		IsUnique:   isUnique,
		Classify:   classify,
	}, wdb, rdb, opts)
	if err != nil {
		wdb.Close()
		rdb.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	return s, nil
}

func isUnique(err error) bool {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// classify: SQLITE_FULL (the disk, or the file system holding the database, is full) is
// store.ErrFull; SQLITE_BUSY and SQLITE_LOCKED (another process held the database longer
// than busy_timeout) and SQLITE_CANTOPEN are store.ErrUnavailable.
func classify(err error) error {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return nil
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_FULL:
		return store.ErrFull
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN:
		return store.ErrUnavailable
	}
	return nil
}
