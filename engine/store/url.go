package store

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// Backend names a storage implementation.
type Backend string

const (
	SQLite   Backend = "sqlite"
	Postgres Backend = "postgres"
)

// Location is a parsed storage URL: which backend, and what to hand its driver.
type Location struct {
	Backend Backend
	// Path is the SQLite database file (absolute, or relative to the working directory).
	Path string
	// DSN is the PostgreSQL connection string in the form pgx understands.
	DSN string
}

// ParseURL accepts our own storage URLs and the SQLAlchemy forms the reference's configs use:
//
//	sqlite:///relative/file.db      sqlite:////absolute/file.db     sqlite:/absolute/file.db
//	postgres://...  postgresql://...  postgresql+psycopg://...  postgresql+psycopg2://...
//
// The error text is meant for an operator reading a config error.
func ParseURL(raw string) (Location, error) {
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok || scheme == "" {
		return Location{}, fmt.Errorf("storage url %q has no scheme; use sqlite:///file.db or postgresql://host/db", raw)
	}
	base, driver, _ := strings.Cut(strings.ToLower(scheme), "+")
	switch base {
	case "sqlite", "sqlite3":
		return parseSQLite(raw, rest)
	case "postgres", "postgresql":
		switch driver {
		case "", "psycopg", "psycopg2", "asyncpg", "pg8000", "pgx":
		default:
			return Location{}, fmt.Errorf("storage url %q: unknown postgresql driver %q", raw, driver)
		}
		u, err := url.Parse("postgres:" + rest)
		if err != nil {
			return Location{}, fmt.Errorf("storage url %q: %v", raw, unwrapURLError(err))
		}
		return Location{Backend: Postgres, DSN: u.String()}, nil
	default:
		return Location{}, fmt.Errorf("storage url %q: unsupported database %q; use sqlite or postgresql", raw, scheme)
	}
}

// parseSQLite follows SQLAlchemy: after "sqlite://" comes an empty host, then "/" and the
// path, so three slashes mean a relative path and four an absolute one.
func parseSQLite(raw, rest string) (Location, error) {
	path := rest
	if host, p, ok := strings.Cut(strings.TrimPrefix(rest, "//"), "/"); strings.HasPrefix(rest, "//") {
		if host != "" {
			return Location{}, fmt.Errorf("storage url %q: sqlite urls take no host; use sqlite:///relative.db or sqlite:////absolute.db", raw)
		}
		path = ""
		if ok {
			path = p
		}
	}
	if q := strings.IndexByte(path, '?'); q >= 0 {
		path = path[:q]
	}
	if path == "" || path == ":memory:" {
		return Location{}, fmt.Errorf("storage url %q: sqlite needs a database file; an in-memory database would lose acknowledged mail", raw)
	}
	return Location{Backend: SQLite, Path: filepath.Clean(path)}, nil
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
