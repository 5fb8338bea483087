package postgres_test

import (
	"context"
	"os"
	"testing"

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
