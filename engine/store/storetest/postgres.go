package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/koukan/koukan/engine/store"
)

// PostgresEnv names the variable that points tests at a PostgreSQL database they may
// create schemas in; without it, PostgreSQL tests are skipped.
const PostgresEnv = "KOUKAN_TEST_POSTGRES_URL"

// PostgresDSN gives the test a schema of its own in the database PostgresEnv names, so
// tests run in parallel, and drops it when the test ends. It skips the test when the
// variable is not set; CI always sets it.
func PostgresDSN(t testing.TB) string {
	raw := os.Getenv(PostgresEnv)
	if raw == "" {
		t.Skip(PostgresEnv + " is not set; PostgreSQL storage tests skipped")
	}
	loc, err := store.ParseURL(raw)
	if err != nil || loc.Backend != store.Postgres {
		t.Fatalf("%s=%q is not a postgresql url: %v", PostgresEnv, raw, err)
	}
	ctx := context.Background()
	exec := func(sql string) error {
		conn, err := pgx.Connect(ctx, loc.DSN)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "koukan_test_" + hex.EncodeToString(b)
	if err := exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("creating schema in %s: %v", raw, err)
	}
	t.Cleanup(func() {
		if err := exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("dropping %s: %v", schema, err)
		}
	})
	u, err := url.Parse(loc.DSN)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
