package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

func testDB(t *testing.T) *sql.DB {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "b.db")+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE t (x INTEGER UNIQUE)`); err != nil {
		t.Fatal(err)
	}
	return db
}

func insert(x int) op {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO t (x) VALUES (?)`, x)
		return err
	}
}

func rows(t *testing.T, db *sql.DB) (xs []int) {
	r, err := db.Query(`SELECT x FROM t ORDER BY x`)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
		var x int
		r.Scan(&x)
		xs = append(xs, x)
	}
	return xs
}

func requests(ops ...op) []request {
	var rs []request
	for _, fn := range ops {
		rs = append(rs, request{fn: fn, done: make(chan error, 1)})
	}
	return rs
}

func TestBatchIsolatesFailingOps(t *testing.T) {
	db := testDB(t)
	c := &committer{db: db, maxBatch: 8}
	// The third op fails half-way (its first insert is a duplicate of the first op's); only
	// its own effects are rolled back.
	partial := func(ctx context.Context, tx *sql.Tx) error {
		if err := insert(3)(ctx, tx); err != nil {
			return err
		}
		return insert(1)(ctx, tx)
	}
	batch := requests(insert(1), insert(2), partial, insert(4))
	if retry := c.run(batch); len(retry) != 0 {
		t.Fatalf("retried %d ops", len(retry))
	}
	for i, want := range []bool{true, true, false, true} {
		if err := <-batch[i].done; (err == nil) != want {
			t.Errorf("op %d: err %v", i, err)
		}
	}
	if got := rows(t, db); len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 4 {
		t.Errorf("committed %v, want [1 2 4]", got)
	}
}

func TestBatchRetriesRetryableErrors(t *testing.T) {
	db := testDB(t)
	errDeadlock := errors.New("deadlock")
	c := &committer{db: db, maxBatch: 8, retryable: func(err error) bool { return errors.Is(err, errDeadlock) }}
	failures := 2
	flaky := func(ctx context.Context, tx *sql.Tx) error {
		if failures > 0 {
			failures--
			return errDeadlock
		}
		return insert(7)(ctx, tx)
	}
	always := func(context.Context, *sql.Tx) error { return errDeadlock }
	batch := requests(flaky, always, insert(1))
	for len(batch) > 0 {
		batch = c.run(batch)
	}
	if got := rows(t, db); len(got) != 2 || got[0] != 1 || got[1] != 7 {
		t.Errorf("committed %v, want [1 7]", got)
	}
}

func TestBatchSurvivesPanic(t *testing.T) {
	db := testDB(t)
	c := &committer{db: db, maxBatch: 8}
	batch := requests(insert(1), func(context.Context, *sql.Tx) error { panic("boom") })
	c.run(batch)
	for i := range batch {
		if err := <-batch[i].done; err == nil {
			t.Errorf("op %d of a batch that panicked reported success", i)
		}
	}
	if got := rows(t, db); len(got) != 0 {
		t.Errorf("a batch that panicked committed %v", got)
	}
	// The committer keeps working afterwards.
	ok := requests(insert(2))
	c.run(ok)
	if err := <-ok[0].done; err != nil {
		t.Fatal(err)
	}
}

func TestCommitterGroupsConcurrentWriters(t *testing.T) {
	db := testDB(t)
	c := newCommitter(db, 1, 64, nil)
	defer c.close()
	errs := make(chan error, 100)
	for i := range 100 {
		go func() { errs <- c.do(context.Background(), insert(i)) }()
	}
	for range 100 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := rows(t, db); len(got) != 100 {
		t.Errorf("committed %d rows, want 100", len(got))
	}
}

// Writes racing Close each get an answer: none waits forever for a committer that stopped.
func TestCommitterAnswersWritesRacingClose(t *testing.T) {
	for range 50 {
		c := newCommitter(testDB(t), 1, 8, nil)
		answered := make(chan error, 20)
		for i := range 20 {
			go func() { answered <- c.do(context.Background(), insert(i)) }()
		}
		c.close()
		for range 20 {
			select {
			case err := <-answered:
				if err != nil && !errors.Is(err, errClosed) {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a write racing close was never answered")
			}
		}
	}
}
