package postgres_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/store/postgres"
	"github.com/koukan/koukan/engine/store/storetest"
)

func open(ctx context.Context, dsn string, opts store.Options) (store.Store, error) {
	return postgres.Open(ctx, dsn, opts)
}

func TestMain(m *testing.M) {
	storetest.MaybeCrashChild(open)
	os.Exit(m.Run())
}

func factory(t testing.TB) func(store.Options) (store.Store, error) {
	dsn := storetest.PostgresDSN(t)
	return func(opts store.Options) (store.Store, error) { return open(context.Background(), dsn, opts) }
}

func TestConformance(t *testing.T) { storetest.Run(t, factory) }

func TestCrash(t *testing.T) { storetest.RunCrash(t, storetest.PostgresDSN(t), open) }

func BenchmarkCreateFinalize(b *testing.B) { storetest.Bench(b, factory) }

// A server that cannot be reached or that ends the connection (as a restart or a shutdown
// does) is store.ErrUnavailable, from real errors: clients are told to come back later.
func TestClassify(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.PostgresDSN(t)
	s, err := postgres.Open(ctx, dsn, store.Options{SessionURI: "http://test"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, refused := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5")
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_, terminated := conn.Exec(ctx, "SELECT pg_terminate_backend(pg_backend_pid())")
	_, gone := conn.Exec(ctx, "SELECT 1")
	for _, err := range []error{refused, terminated, gone} {
		if err == nil {
			t.Fatal("the connection did not fail")
		}
		if got := s.Classify(err); !errors.Is(got, store.ErrUnavailable) {
			t.Errorf("Classify(%v) = %v, want ErrUnavailable", err, got)
		}
	}
	_, notFound := s.Get(ctx, "no-such-transaction")
	for _, err := range []error{nil, notFound, context.DeadlineExceeded} {
		if got := s.Classify(err); got != err {
			t.Errorf("Classify(%v) = %v, want it unchanged", err, got)
		}
	}
}
