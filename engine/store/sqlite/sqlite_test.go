package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/store/sqlite"
	"github.com/koukan/koukan/engine/store/storetest"
)

func open(ctx context.Context, path string, opts store.Options) (store.Store, error) {
	return sqlite.Open(ctx, path, opts)
}

func TestMain(m *testing.M) {
	storetest.MaybeCrashChild(open)
	os.Exit(m.Run())
}

func factory(t testing.TB) func(store.Options) (store.Store, error) {
	path := filepath.Join(t.TempDir(), "koukan.db")
	return func(opts store.Options) (store.Store, error) { return open(context.Background(), path, opts) }
}

func TestConformance(t *testing.T) { storetest.Run(t, factory) }

func TestCrash(t *testing.T) {
	storetest.RunCrash(t, filepath.Join(t.TempDir(), "crash.db"), open)
}

func BenchmarkCreateFinalize(b *testing.B) { storetest.Bench(b, factory) }

// A database file that cannot grow is store.ErrFull, from a real SQLITE_FULL: clients are
// told the storage is full rather than given an internal error.
func TestClassify(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "koukan.db")
	s, err := sqlite.Open(ctx, path, store.Options{SessionURI: "http://test"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The limit cannot go below the file's size: the file can no longer grow.
	if _, err := conn.ExecContext(ctx, "PRAGMA max_page_count = 1"); err != nil {
		t.Fatal(err)
	}
	_, full := conn.ExecContext(ctx, "CREATE TABLE filler (b BLOB)")
	if full == nil {
		t.Fatal("the database grew past max_page_count")
	}
	if err := s.Classify(full); !errors.Is(err, store.ErrFull) || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Classify(%v) = %v, want ErrFull", full, err)
	}
	for _, err := range []error{nil, store.ErrNotFound, sql.ErrNoRows} {
		if got := s.Classify(err); got != err {
			t.Errorf("Classify(%v) = %v, want it unchanged", err, got)
		}
	}
}
