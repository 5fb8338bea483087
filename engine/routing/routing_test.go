package routing_test

import (
	"context"
	"errors"
	"testing"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/chain/chaintest"
	"github.com/koukan/koukan/engine/routing"
	"github.com/koukan/koukan/engine/tx"
)

// policyFunc is a policy written in Go, as a test writes one.
type policyFunc func(t *tx.Tx, i int) (routing.Decision, error)

func (f policyFunc) Route(_ context.Context, t *tx.Tx, i int) (routing.Decision, error) {
	return f(t, i)
}
func (f policyFunc) Policy(*config.Policy) (routing.Policy, error) { return f, nil }

const cfgYAML = `
rest_listener: {addr: [127.0.0.1, 8000], session_uri: "http://localhost:8000"}
storage: {url: "sqlite:///r.db"}
rest_endpoint:
  - {name: gw, endpoint: "http://gw:8001", sender: router, tag: out}
  - {name: nosender, endpoint: "http://x:1"}
sender: [{name: s, output_chain: c}]
endpoint:
  - name: c
    chain:
      - {filter: router, policy: {name: p}}
      - {filter: router}
      - {filter: rest_output}
`

func run(t *testing.T, p policyFunc, rcpts ...string) *tx.Tx {
	t.Helper()
	cfg, _, err := config.ParseRouter("r.yaml", []byte(cfgYAML))
	if err != nil {
		t.Fatal(err)
	}
	var steps []chain.Step
	for _, s := range cfg.Endpoints[0].Chain[:2] {
		step, err := routing.New(cfg, s.Router, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		steps = append(steps, step)
	}
	tr := &tx.Tx{MailFrom: &tx.Mailbox{Address: "a@x"}}
	for _, r := range rcpts {
		tr.RcptTo = append(tr.RcptTo, tx.Mailbox{Address: r})
	}
	if err := chain.New(append(steps, &chaintest.Upstream{})...).Update(context.Background(), tr, nil); err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestRouterStep(t *testing.T) {
	gw := &routing.Destination{Endpoint: "gw", Hosts: []tx.HostPort{{Host: "mx.example", Port: 25}}, Options: map[string]any{"k": 1}}
	tr := run(t, func(t *tx.Tx, i int) (routing.Decision, error) {
		switch t.RcptTo[i].Address {
		case "routed@x", "also@x":
			return routing.Decision{Destination: gw}, nil
		case "elsewhere@x":
			return routing.Decision{Destination: &routing.Destination{Endpoint: "gw"}}, nil
		case "nosender@x":
			return routing.Decision{Destination: &routing.Destination{Endpoint: "nosender"}}, nil
		case "broken@x":
			return routing.Decision{}, errors.New("script failed")
		case "refused@x":
			return routing.Decision{Response: &tx.Response{Code: 550, Message: "5.7.1 no"}}, nil
		}
		return routing.Decision{}, nil // not mine: the catch-all rejects it
	}, "routed@x", "also@x", "elsewhere@x", "nosender@x", "broken@x", "refused@x", "nobody@x")
	want := []string{"250 ok", "250 ok", "451 4.3.0 recipients of one transaction route to different destinations",
		"550 5.1.1 mailbox does not exist", "451 4.3.0 temporary failure in a routing policy", "550 5.7.1 no",
		"550 5.1.1 mailbox does not exist"}
	for i, w := range want {
		if got := tr.RcptResponse[i].String(); got != w {
			t.Errorf("rcpt %d %s: %s, want %s", i, tr.RcptTo[i].Address, got, w)
		}
	}
	if tr.RestEndpoint != "http://gw:8001" || tr.RestUpstreamSender.Name != "router" || tr.RestUpstreamSender.Tag != "out" ||
		len(tr.Resolution) != 1 || tr.Options["k"] != 1 {
		t.Errorf("routing: %q %v %v %v", tr.RestEndpoint, tr.RestUpstreamSender, tr.Resolution, tr.Options)
	}
}
