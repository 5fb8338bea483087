package scripts_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/builtin"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/chain/chaintest"
	"github.com/koukan/koukan/engine/tx"
	"github.com/koukan/koukan/luabind"
)

// routerConfig has a chain of routers as an MSA would: own domains by list, a catch-all
// for the rest by destination domain, and a final reject.
const routerConfig = `
rest_listener: {addr: [127.0.0.1, 8000], session_uri: "http://localhost:8000"}
storage: {url: "sqlite:///r.db"}
rest_endpoint:
  - name: mailbox
    endpoint: http://mailbox.internal:8080
    sender: inbound
    options: {receive_parsing: {max_inline: 100}}
  - name: gateway
    endpoint: http://gateway.internal:8001
    sender: router
    tag: outbound
sender:
  - {name: submission, output_chain: submission}
endpoint:
  - name: submission
    chain:
      - filter: router
        dry_run: %[1]t
        policy:
          name: address_list
          domains: [Example.COM]
          prefixes: [bob, Alice]
          delimiter: "+"
          destination: {endpoint: mailbox}
      - filter: router
        policy:
          name: address_list
          domains: [example.com]
      - filter: router
        policy:
          name: dest_domain
          dest_port: 2525
          destination: {endpoint: gateway}
      - filter: rest_output
`

// runRouters builds the configured chain (without its rest_output) and runs one
// transaction to rcpt through it.
func runRouters(t *testing.T, dryRun bool, rcpt string) *tx.Tx {
	t.Helper()
	cfg, _, err := config.ParseRouter("router.yaml", fmt.Appendf(nil, routerConfig, dryRun))
	if err != nil {
		t.Fatal(err)
	}
	rt := libraryRuntime(t, cfg)
	f := chain.Either(builtin.New(builtin.Options{Config: cfg, Policies: rt}), rt)
	steps := cfg.Endpoints[0].Chain
	var made []chain.Step
	for i := range steps[:len(steps)-1] {
		s, err := f.NewStep(&steps[i])
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, s)
	}
	tr := &tx.Tx{RestID: "t", MailFrom: &tx.Mailbox{Address: "me@example.org"}, RcptTo: []tx.Mailbox{{Address: rcpt}}}
	if err := chain.New(append(made, &chaintest.Upstream{})...).Update(context.Background(), tr, nil); err != nil {
		t.Fatal(err)
	}
	return tr
}

// libraryRuntime loads the shipped scripts, checked against cfg as the router does.
func libraryRuntime(t testing.TB, cfg *config.Router) *luabind.Runtime {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	o := luabind.Options{Sources: []luabind.Source{{Name: dir, FS: os.DirFS(dir)}}}
	if cfg != nil {
		o.Modules = cfg.Modules
		o.Check = func(lib *luabind.Library) luabind.Findings { return luabind.CheckConfig(cfg, lib) }
	}
	rt, err := luabind.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return rt
}

func TestRouting(t *testing.T) {
	for _, c := range []struct {
		rcpt, endpoint, hosts, options, response string
	}{
		{"bob@example.com", "http://mailbox.internal:8080", "[]", "map[receive_parsing:map[max_inline:100]]", "250 ok"},
		{"BOB+tag@Example.com", "http://mailbox.internal:8080", "[]", "map[receive_parsing:map[max_inline:100]]", "250 ok"},
		{"alice@example.com", "http://mailbox.internal:8080", "[]", "map[receive_parsing:map[max_inline:100]]", "250 ok"},
		// On the second list, which has no destination: unknown here.
		{"carol@example.com", "", "[]", "map[]", "550 5.1.1 mailbox does not exist"},
		{"dave@elsewhere.example", "http://gateway.internal:8001", "[{elsewhere.example 2525}]", "map[]", "250 ok"},
		{"dave@bücher.example", "http://gateway.internal:8001", "[{xn--bcher-kva.example 2525}]", "map[]", "250 ok"},
		// Nobody's: no router claims it, and the chain has no catch-all.
		{"not an address", "", "[]", "map[]", "250 ok"},
	} {
		tr := runRouters(t, false, c.rcpt)
		if tr.Options == nil {
			tr.Options = map[string]any{}
		}
		got := fmt.Sprintf("%s %v %v %s", tr.RestEndpoint, tr.Resolution, tr.Options, tr.RcptResponse[0])
		want := fmt.Sprintf("%s %s %s %s", c.endpoint, c.hosts, c.options, c.response)
		if got != want {
			t.Errorf("%s:\n got %s\nwant %s", c.rcpt, got, want)
		}
	}
	// A dry run accepts what its list has but routes nothing, and the routers after it
	// leave that recipient alone.
	tr := runRouters(t, true, "bob@example.com")
	if tr.RestEndpoint != "" || !tr.Routed[0] || tr.RcptResponse[0].Code != 250 {
		t.Errorf("dry run: %q %v %v", tr.RestEndpoint, tr.Routed, tr.RcptResponse)
	}
}
