package sqlstore

import (
	"context"
	"database/sql"
)

// Statements are prepared once per pool and query text, and rebound to each transaction's
// connection by database/sql, which prepares them there once. Parsing SQL on every call
// was over a quarter of the router's CPU time on SQLite.
//
// Preparing takes a connection of the pool. Inside a transaction that is safe only where a
// spare connection is guaranteed: the write pools have one more than the committers, and
// Get prepares before it begins its read transaction.

type stmtKey struct {
	db    *sql.DB
	query string
}

// prepared returns the statement for query on db, preparing it on first use.
func (s *Store) prepared(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	key := stmtKey{db, query}
	s.stmtMu.Lock()
	st := s.stmts[key]
	s.stmtMu.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := db.PrepareContext(ctx, s.q(query))
	if err != nil {
		return nil, err
	}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if prev := s.stmts[key]; prev != nil {
		st.Close()
		return prev, nil
	}
	s.stmts[key] = st
	return st, nil
}

// row is a *sql.Row that may carry a preparation error instead.
type row struct {
	r   *sql.Row
	err error
}

func (r row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.r.Scan(dest...)
}

func (s *Store) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	st, err := s.prepared(ctx, s.wdb, query)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
}

func (s *Store) queryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) row {
	st, err := s.prepared(ctx, s.wdb, query)
	if err != nil {
		return row{err: err}
	}
	return row{r: tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)}
}

// exec and queryRow run in the committer's transactions; readTxRow and query in read-only
// transactions of the read pool (Get).

func (s *Store) readTxRow(ctx context.Context, tx *sql.Tx, query string, args ...any) row {
	st, err := s.prepared(ctx, s.rdb, query)
	if err != nil {
		return row{err: err}
	}
	return row{r: tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)}
}

func (s *Store) query(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	st, err := s.prepared(ctx, s.rdb, query)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
}

// readRow is a point read outside any transaction.
func (s *Store) readRow(ctx context.Context, query string, args ...any) row {
	st, err := s.prepared(ctx, s.rdb, query)
	if err != nil {
		return row{err: err}
	}
	return row{r: st.QueryRowContext(ctx, args...)}
}

func (s *Store) closeStmts() {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	for k, st := range s.stmts {
		st.Close()
		delete(s.stmts, k)
	}
}
