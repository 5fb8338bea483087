package storetest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/store"
)

// Bench measures create+finalize throughput (a transaction with a 2 KiB body uploaded and
// finalized, two commits each) at several writer counts. "sync-per-commit/writers=1" is the
// baseline: one writer, so every commit pays its own sync. The others show what group commit
// buys; "nobatch" runs many writers with batching turned off.
func Bench(b *testing.B, f Factory) {
	cases := []struct {
		name     string
		writers  int
		maxBatch int
	}{
		{"sync-per-commit/writers=1", 1, 1},
		{"group/writers=16", 16, 0},
		{"group/writers=64", 64, 0},
		{"nobatch/writers=64", 64, 1},
	}
	body := patterned(2048)
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s, err := f(b)(store.Options{SessionURI: "http://bench", MaxBatch: c.maxBatch})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range c.writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						id := fmt.Sprintf("b%d", i)
						if _, err := s.Create(ctx, store.NewTx{RestID: id, JSON: []byte(`{"mail_from":{"m":"a@example.com"}}`),
							Leased: true, Blobs: []store.NewBlob{{ID: store.TxBodyBlob}}}); err != nil {
							b.Error(err)
							return
						}
						if _, err := s.AppendBlob(ctx, id, store.TxBodyBlob, store.Append{Total: -1, FinalizeAtEOF: true},
							bytes.NewReader(body)); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tx/s")
		})
	}
}
