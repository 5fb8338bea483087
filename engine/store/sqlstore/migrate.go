package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

// migration is one NNNN_what.sql file of Dialect.Migrations.
type migration struct {
	version int
	name    string
}

// migrate applies every migration the database has no record of, in version order, each in
// a transaction of its own together with its row in schema_migrations. Going by the record
// rather than by the highest version applied means that a file numbered below one already
// applied (one added later, from another branch) still runs. A recorded version with no file
// is a schema a newer binary made: it is refused, since this binary's queries may not fit it.
func (s *Store) migrate(ctx context.Context) error {
	files, err := migrationFiles(s.d.Migrations)
	if err != nil {
		return err
	}
	for {
		done, err := s.migrateNext(ctx, files)
		if err != nil || done {
			return err
		}
	}
}

// migrationFiles lists the migrations in version order.
func migrationFiles(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	files := make([]migration, 0, len(names))
	for _, name := range names {
		num, _, _ := strings.Cut(name, "_")
		version, err := strconv.Atoi(num)
		if err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %s: the name must start with a positive number", name)
		}
		files = append(files, migration{version, name})
	}
	slices.SortFunc(files, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(files); i++ {
		if files[i].version == files[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s have the same number", files[i-1].name, files[i].name)
		}
	}
	return files, nil
}

// migrateNext applies, in one transaction, the first migration of files that the database
// has no record of; done means there was none. Every call reads the record afresh under
// the dialect's migration lock, so replicas starting together apply each migration once.
func (s *Store) migrateNext(ctx context.Context, files []migration) (done bool, err error) {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if s.d.MigrationLock != "" {
		if _, err := tx.ExecContext(ctx, s.d.MigrationLock); err != nil {
			return false, err
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied BIGINT NOT NULL)`); err != nil {
		return false, err
	}
	applied, err := appliedMigrations(ctx, tx)
	if err != nil {
		return false, err
	}
	known := map[int]bool{}
	for _, f := range files {
		known[f.version] = true
	}
	recorded := map[int]bool{}
	for _, m := range applied {
		if !known[m.version] {
			return false, fmt.Errorf("the database has migration %s, which this koukan does not have: "+
				"a newer koukan has upgraded the database; run that version or a newer one", m.name)
		}
		recorded[m.version] = true
	}
	for _, f := range files {
		if recorded[f.version] {
			continue
		}
		script, err := fs.ReadFile(s.d.Migrations, f.name)
		if err != nil {
			return false, err
		}
		if _, err := tx.ExecContext(ctx, string(script)); err != nil {
			return false, fmt.Errorf("migration %s: %w", f.name, err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`),
			f.version, f.name, s.now()); err != nil {
			return false, err
		}
		return false, tx.Commit()
	}
	return true, tx.Commit()
}

// appliedMigrations is what schema_migrations records, in version order.
func appliedMigrations(ctx context.Context, tx *sql.Tx) ([]migration, error) {
	rows, err := tx.QueryContext(ctx, `SELECT version, name FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var applied []migration
	for rows.Next() {
		var m migration
		if err := rows.Scan(&m.version, &m.name); err != nil {
			return nil, err
		}
		applied = append(applied, m)
	}
	return applied, rows.Err()
}
