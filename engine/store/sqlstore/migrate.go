package sqlstore

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// migrate applies, in one transaction, every migration newer than the schema's version. Files
// are named NNNN_what.sql; NNNN is the version they bring the schema to.
func (s *Store) migrate(ctx context.Context) error {
	files, err := fs.Glob(s.d.Migrations, "*.sql")
	if err != nil {
		return err
	}
	sort.Strings(files)
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if s.d.MigrationLock != "" {
		if _, err := tx.ExecContext(ctx, s.d.MigrationLock); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied BIGINT NOT NULL)`); err != nil {
		return err
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return err
	}
	latest := 0
	for _, name := range files {
		num, _, _ := strings.Cut(name, "_")
		version, err := strconv.Atoi(num)
		if err != nil {
			return fmt.Errorf("migration %s: name must start with a number", name)
		}
		latest = max(latest, version)
		if version <= current {
			continue
		}
		script, err := fs.ReadFile(s.d.Migrations, name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(script)); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`),
			version, name, s.now()); err != nil {
			return err
		}
	}
	if current > latest {
		return fmt.Errorf("database schema is at version %d, newer than this binary knows (%d); upgrade koukan", current, latest)
	}
	return tx.Commit()
}
