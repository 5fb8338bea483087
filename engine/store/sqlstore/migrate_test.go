package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/store/storetest"
)

// migrateBackend makes connections to one fresh database of a backend, with the dialect
// settings migrate depends on (placeholders, the migration lock).
type migrateBackend struct {
	name string
	// fresh returns a function that opens a new pool on one new, empty database.
	fresh func(t *testing.T) func() *sql.DB
}

var migrateBackends = []migrateBackend{
	{"sqlite", func(t *testing.T) func() *sql.DB {
		path := filepath.Join(t.TempDir(), "m.db")
		// As engine/store/sqlite does: WAL is set once, on a connection of its own (pools
		// switching the journal mode at once get SQLITE_BUSY without waiting), and the
		// writer begins IMMEDIATE, which serializes migrators.
		setup, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
		if err == nil {
			err = setup.Ping()
			setup.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		return func() *sql.DB {
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_txlock=immediate")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}
	}},
	{"postgres", func(t *testing.T) func() *sql.DB {
		cfg, err := pgx.ParseConfig(storetest.PostgresDSN(t))
		if err != nil {
			t.Fatal(err)
		}
		return func() *sql.DB {
			db := stdlib.OpenDB(*cfg)
			t.Cleanup(func() { db.Close() })
			return db
		}
	}},
}

func (b migrateBackend) dialect(files fstest.MapFS) Dialect {
	d := Dialect{Name: b.name, Migrations: files}
	if b.name == "postgres" {
		d.Positional = true
		d.MigrationLock = "SELECT pg_advisory_xact_lock(4242)"
	}
	return d
}

// migrateWith runs migrate as a binary with these migration files would when it opens db.
func migrateWith(b migrateBackend, db *sql.DB, files fstest.MapFS) error {
	s := &Store{d: b.dialect(files), wdb: db, rdb: db, opts: store.Options{}.WithDefaults(), queries: map[string]string{}}
	return s.migrate(context.Background())
}

// migrations are test migration files by version: 1 makes the table ran, and every one
// adds its version to it, so a migration applied twice shows (or fails, for 1).
func migrations(versions ...int) fstest.MapFS {
	files := fstest.MapFS{}
	for _, v := range versions {
		sql := fmt.Sprintf("INSERT INTO ran (version) VALUES (%d);\n", v)
		if v == 1 {
			sql = "CREATE TABLE ran (version INTEGER NOT NULL);\n" + sql
		}
		files[fmt.Sprintf("%04d_step%d.sql", v, v)] = &fstest.MapFile{Data: []byte(sql)}
	}
	return files
}

// migrateState is what a database says of its migrations: the versions of ran, sorted,
// and the rows of schema_migrations.
func migrateState(t *testing.T, db *sql.DB) (ran []int, recorded []string) {
	t.Helper()
	rows, err := db.Query(`SELECT version FROM ran ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		ran = append(ran, v)
	}
	rows.Close()
	rows, err = db.Query(`SELECT version, name, applied FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		var name string
		var applied int64
		if err := rows.Scan(&v, &name, &applied); err != nil {
			t.Fatal(err)
		}
		recorded = append(recorded, fmt.Sprintf("%d %s %d", v, name, applied))
	}
	return ran, recorded
}

func TestMigrate(t *testing.T) {
	for _, b := range migrateBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			db := b.fresh(t)()
			check := func(step string, wantRan ...int) []string {
				t.Helper()
				ran, recorded := migrateState(t, db)
				if !slices.Equal(ran, wantRan) || len(recorded) != len(wantRan) {
					t.Fatalf("%s: ran %v, recorded %q; want %v each once", step, ran, recorded, wantRan)
				}
				for i, r := range recorded {
					if !strings.HasPrefix(r, fmt.Sprintf("%d %04d_step%d.sql ", wantRan[i], wantRan[i], wantRan[i])) {
						t.Fatalf("%s: recorded %q", step, recorded)
					}
				}
				return recorded
			}

			// A binary with 1 and 3, then one where 2 fills the gap: 2 is applied, alone.
			if err := migrateWith(b, db, migrations(1, 3)); err != nil {
				t.Fatal(err)
			}
			check("1 and 3", 1, 3)
			if err := migrateWith(b, db, migrations(1, 2, 3)); err != nil {
				t.Fatal(err)
			}
			before := check("2 added", 1, 2, 3)

			// Opening again applies nothing, and records nothing anew.
			if err := migrateWith(b, db, migrations(1, 2, 3)); err != nil {
				t.Fatal(err)
			}
			if after := check("reopened", 1, 2, 3); !slices.Equal(after, before) {
				t.Errorf("reopening changed schema_migrations: %q, was %q", after, before)
			}

			// A binary that lacks 3 (older than the one that applied it) refuses, naming it.
			err := migrateWith(b, db, migrations(1, 2))
			if err == nil || !strings.Contains(err.Error(), "0003_step3.sql") || !strings.Contains(err.Error(), "newer koukan") {
				t.Errorf("a binary without migration 3: %v", err)
			}
			check("refused", 1, 2, 3)

			// Each migration commits on its own: 4 is kept when 5 fails, 5 leaves nothing
			// behind, and 6 waits for 5.
			files := migrations(1, 2, 3, 4, 5, 6)
			files["0005_step5.sql"] = &fstest.MapFile{Data: []byte("INSERT INTO ran (version) VALUES (5);\nINSERT INTO nowhere VALUES (1);\n")}
			err = migrateWith(b, db, files)
			if err == nil || !strings.HasPrefix(err.Error(), "migration 0005_step5.sql: ") {
				t.Errorf("a failing migration: %v", err)
			}
			check("5 failed", 1, 2, 3, 4)
			if err := migrateWith(b, db, migrations(1, 2, 3, 4, 5, 6)); err != nil {
				t.Fatal(err)
			}
			check("5 fixed", 1, 2, 3, 4, 5, 6)
		})
	}
}

// Replicas that start together on one new database apply every migration once.
func TestMigrateConcurrently(t *testing.T) {
	for _, b := range migrateBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			open := b.fresh(t)
			files := migrations(1, 2, 3, 4, 5)
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				db := open()
				wg.Go(func() { errs[i] = migrateWith(b, db, files) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("replica %d: %v", i, err)
				}
			}
			if ran, recorded := migrateState(t, open()); !slices.Equal(ran, []int{1, 2, 3, 4, 5}) || len(recorded) != 5 {
				t.Errorf("ran %v, recorded %q; want each of 1 to 5 once", ran, recorded)
			}
		})
	}
}

func TestMigrationFiles(t *testing.T) {
	for _, c := range []struct {
		files fstest.MapFS
		want  string
	}{
		{fstest.MapFS{"0001_a.sql": {}, "0001_b.sql": {}}, "migrations 0001_a.sql and 0001_b.sql have the same number"},
		{fstest.MapFS{"init.sql": {}}, "migration init.sql: the name must start with a positive number"},
		{fstest.MapFS{"0000_zero.sql": {}}, "migration 0000_zero.sql: the name must start with a positive number"},
	} {
		if _, err := migrationFiles(c.files); err == nil || err.Error() != c.want {
			t.Errorf("%v: %v, want %q", c.files, err, c.want)
		}
	}
	got, err := migrationFiles(fstest.MapFS{"10_ten.sql": {}, "0002_two.sql": {}, "README": {}})
	if err != nil || !slices.Equal(got, []migration{{2, "0002_two.sql"}, {10, "10_ten.sql"}}) {
		t.Errorf("files in version order: %v, %v", got, err)
	}
}
