package router

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/builtin"
	"github.com/koukan/koukan/engine/rest/resttest"
	"github.com/koukan/koukan/engine/store"
)

// BenchmarkCreateAndWait measures what an application sees: POST a transaction with an
// inline 2 KB body, then hanging GETs until it is final. Until the output side exists, a
// driver finishes each attempt through the store, as the output handler will. The baseline,
// measured in the same run, is the storage-only create of the same transaction at the same
// concurrency.
func BenchmarkCreateAndWait(b *testing.B) {
	const clients = 64
	body := `{` + envelope + `,"body":{"inline":"` + strings.Repeat("x", 2048) + `"}}`
	for _, be := range []string{"sqlite", "postgres"} {
		b.Run(be+"/store-create", func(b *testing.B) {
			st := benchBackend(b, be).open(b, "http://bench")
			defer st.Close()
			doc := []byte(`{"sender":{"name":"submission"},` + envelope + `,"retry":{}}`)
			content := []byte(strings.Repeat("x", 2048))
			var n atomic.Int64
			run(b, clients, func() error {
				_, err := st.Create(b.Context(), store.NewTx{RestID: fmt.Sprintf("b%d", n.Add(1)), JSON: doc, Leased: true, Retry: true,
					Blobs: []store.NewBlob{{ID: "__internal_tx_body", Content: content, Inline: true}}})
				return err
			})
		})
		b.Run(be+"/rest-create-wait", func(b *testing.B) {
			r := startReplica(b, benchBackend(b, be))
			finish := make(chan string, clients)
			defer close(finish)
			for range 8 {
				go func() {
					for id := range finish {
						r.svc.store.StartAttempt(b.Context(), id)
						r.svc.store.FinishAttempt(b.Context(), id, store.Finish{FinalReason: "upstream response success",
							Responses: []byte(`{"mail_response":{"code":250},"rcpt_response":[{"code":250}],"data_response":{"code":250}}`)})
					}
				}()
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
			run(b, clients, func() error {
				loc, etag, err := benchPost(client, r.url, body)
				if err != nil {
					return err
				}
				finish <- strings.TrimPrefix(loc, r.url+"/transactions/")
				return benchWaitFinal(client, loc, etag)
			})
		})
	}
}

// BenchmarkDeliver measures transactions delivered end to end: POST with an inline 2 KB
// body, the output handler's rest_output to a REST receiver over loopback HTTP answering 250,
// and hanging GETs until final, at 64 concurrent clients. The baseline, measured in the same
// run, is the POST alone.
func BenchmarkDeliver(b *testing.B) {
	const clients = 64
	body := `{` + envelope + `,"body":{"inline":"` + strings.Repeat("x", 2048) + `"}}`
	for _, be := range []string{"sqlite", "postgres"} {
		for _, wait := range []bool{false, true} {
			name := be + "/post-only"
			if wait {
				name = be + "/post-deliver-wait"
			}
			b.Run(name, func(b *testing.B) {
				recv := resttest.NewReceiver(resttest.Options{})
				defer recv.Close()
				r := startReplicaUpstream(b, benchBackend(b, be), builtin.New(builtin.Options{}), recv.URL())
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
				run(b, clients, func() error {
					loc, etag, err := benchPost(client, r.url, body)
					if err != nil || !wait {
						return err
					}
					return benchWaitFinal(client, loc, etag)
				})
			})
		}
	}
}

func benchPost(client *http.Client, base, body string) (string, string, error) {
	req, _ := http.NewRequest("POST", base+"/senders/submission/transactions", strings.NewReader(body))
	req.Header.Set("Content-Type", jsonType)
	res, err := client.Do(req)
	if err != nil {
		return "", "", err
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		return "", "", fmt.Errorf("create: %d", res.StatusCode)
	}
	return res.Header.Get("Location"), res.Header.Get("ETag"), nil
}

// benchWaitFinal does hanging GETs until the transaction has a final reason.
func benchWaitFinal(client *http.Client, loc, etag string) error {
	for {
		req, _ := http.NewRequest("GET", loc, nil)
		req.Header.Set("If-None-Match", etag)
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		var t struct {
			Final string `json:"final_attempt_reason"`
		}
		if res.StatusCode == 200 {
			err = json.NewDecoder(res.Body).Decode(&t)
		}
		res.Body.Close()
		if err != nil {
			return err
		}
		if t.Final != "" {
			if t.Final != "upstream response success" {
				return fmt.Errorf("%s: %s", loc, t.Final)
			}
			return nil
		}
		etag = res.Header.Get("ETag")
	}
}

// run does b.N operations on n goroutines and reports operations per second.
func run(b *testing.B, n int, op func() error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tx/s")
}

func benchBackend(b *testing.B, name string) backend {
	for _, be := range backends(b) {
		if be.name == name {
			return be
		}
	}
	b.Fatalf("no backend %s", name)
	return backend{}
}
