package metrics

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/store/sqlite"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// scrape serves c alone in the text format, as /metrics would.
func scrape(t *testing.T, c prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, body)
	}
	return string(body)
}

// The queue gauges from a real store: the top domains by name, the rest (a domain named
// "other" included) under domain="other", and totals that agree.
func TestQueueCollector(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "router.db"), store.Options{SessionURI: "http://r1"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := 0
	create := func(domain string, count int) {
		for range count {
			n++
			if _, err := st.Create(ctx, store.NewTx{RestID: fmt.Sprintf("tx%d", n), JSON: []byte(`{}`), RcptDomain: domain}); err != nil {
				t.Fatal(err)
			}
		}
	}
	create("a.example", 3)
	create("b.example", 2)
	create("c.example", 1)
	create("other", 1)
	create("", 1) // an exploder parent: no one recipient domain
	in := func(body string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(body, w+"\n") {
				t.Errorf("scrape lacks %s:\n%s", w, body)
			}
		}
	}

	body := scrape(t, queueCollector{st.QueueDomains, 2})
	in(body,
		`koukan_queue_domain_transactions{domain="a.example",state="due"} 3`,
		`koukan_queue_domain_transactions{domain="a.example",state="in_flight"} 0`,
		`koukan_queue_domain_transactions{domain="b.example",state="due"} 2`,
		`koukan_queue_domain_transactions{domain="other",state="due"} 3`,
		`koukan_queue_domain_transactions{domain="other",state="held"} 0`,
		`koukan_queue_transactions{state="due"} 8`,
		`koukan_queue_transactions{state="held"} 0`,
	)
	if strings.Contains(body, "c.example") {
		t.Errorf("a domain past the top has a series of its own:\n%s", body)
	}

	body = scrape(t, queueCollector{st.QueueDomains, 100})
	in(body,
		`koukan_queue_domain_transactions{domain="c.example",state="due"} 1`,
		`koukan_queue_domain_transactions{domain="other",state="due"} 2`,
		`koukan_queue_transactions{state="due"} 8`,
	)
}
