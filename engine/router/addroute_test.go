package router

import (
	"sync"
	"testing"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/chain/chaintest"
	"github.com/koukan/koukan/engine/tx"
)

// bySender answers like the upstream of the sender a chain runs for: the main delivery
// answers 201/203/205, the system of record (sender sor) as the test says.
type bySender struct {
	mu                        sync.Mutex
	sorMail, sorRcpt, sorData tx.Response
	sorBodies                 []string
}

func (f *bySender) factory() chain.Factory {
	return chain.FactoryFunc(func(cs *config.Step) (chain.Step, error) {
		if cs.AddRoute != nil || cs.Exploder != nil {
			return nil, chain.ErrUnknownStep
		}
		code := func(c int) tx.Response { return tx.Response{Code: c, Message: "main"} }
		return &chaintest.Upstream{
			Mail: func(t *tx.Tx) tx.Response {
				if t.Sender.Name == "sor" {
					return f.sorMail
				}
				return code(201)
			},
			Rcpt: func(t *tx.Tx, _ int) tx.Response {
				if t.Sender.Name == "sor" {
					return f.sorRcpt
				}
				return code(203)
			},
			Data: func(t *tx.Tx, body []byte) tx.Response {
				if t.Sender.Name == "sor" {
					f.mu.Lock()
					f.sorBodies = append(f.sorBodies, string(body))
					f.mu.Unlock()
					return f.sorData
				}
				return code(205)
			},
		}, nil
	})
}

// §11.2 14-17: add_route runs a copy through sender sor's chain.
func TestAddRoute(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range []struct {
			name, tag                 string
			sorMail, sorRcpt, sorData int
			want                      string
		}{
			{"sync success", "sync-sor", 202, 204, 206, "201/[203]/205"},
			{"sync rcpt refused", "sync-sor", 202, 404, 206, "201/[404]/503"},
			{"sync data refused", "sync-sor", 202, 204, 406, "201/[203]/406"},
			{"store and forward", "sf-sor", 202, 204, 206, "201/[203]/205"},
			{"store and forward ignores the copy's failure", "sf-sor", 502, 504, 506, "201/[203]/205"},
		} {
			f := &bySender{sorMail: tx.Response{Code: tc.sorMail, Message: "sor"}, sorRcpt: tx.Response{Code: tc.sorRcpt, Message: "sor"},
				sorData: tx.Response{Code: tc.sorData, Message: "sor"}}
			r := startReplicaWith(t, b, f.factory())
			loc := r.post("submission", `{`+envelope+`,"sender":{"tag":"`+tc.tag+`"},"body":{"inline":"hi"}}`).header.Get("Location")
			var got map[string]any
			eventually(t, tc.name+" answered", func() bool {
				got = do(t, "GET", loc, nil).json(t)
				return got["data_response"] != nil
			})
			if codes(got) != tc.want {
				t.Errorf("%s: %s, want %s", tc.name, codes(got), tc.want)
			}
			if tc.tag == "sf-sor" && tc.sorMail < 300 {
				eventually(t, "copy delivered", func() bool {
					f.mu.Lock()
					defer f.mu.Unlock()
					return len(f.sorBodies) == 1 && f.sorBodies[0] == "hi"
				})
			}
			r.stop()
		}
	})
}
