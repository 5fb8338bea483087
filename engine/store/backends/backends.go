// Package backends opens a store.Store for a storage location, choosing the backend.
package backends

import (
	"context"

	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/store/postgres"
	"github.com/koukan/koukan/engine/store/sqlite"
)

// Open opens the backend loc names (see store.ParseURL for the URLs that make one).
func Open(ctx context.Context, loc store.Location, opts store.Options) (store.Store, error) {
	if loc.Backend == store.Postgres {
		return postgres.Open(ctx, loc.DSN, opts)
	}
	return sqlite.Open(ctx, loc.Path, opts)
}
