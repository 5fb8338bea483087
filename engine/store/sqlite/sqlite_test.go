package sqlite_test

import (
	"context"
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
