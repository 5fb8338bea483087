package config

import "testing"

// The sample configs in examples/ load without errors or warnings: they use only keys
// Koukan reads. (cmd/koukan's tests check them with the scripts they name.)
func TestExamples(t *testing.T) {
	for _, c := range []struct {
		file string
		load func(string) (Warnings, error)
	}{
		{"router.yaml", func(p string) (Warnings, error) { _, w, err := LoadRouter(p); return w, err }},
		{"gateway.yaml", func(p string) (Warnings, error) { _, w, err := LoadGateway(p); return w, err }},
		{"serve.yaml", func(p string) (Warnings, error) { _, w, err := LoadServe(p); return w, err }},
	} {
		warns, err := c.load("examples/" + c.file)
		if err != nil {
			t.Errorf("%s: %v", c.file, err)
		}
		if len(warns) > 0 {
			t.Errorf("%s warnings:\n%s", c.file, warns)
		}
	}
}

// The examples cover the flows they describe: the senders, tags and chains the gateway
// and the router refer to each other by.
func TestExamplesTopology(t *testing.T) {
	r, _, err := LoadRouter("examples/router.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g, _, err := LoadGateway("examples/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range g.SMTPServices {
		sender := r.Sender(s.Sender)
		if sender == nil {
			t.Errorf("gateway service %v: no sender %q in router.yaml", s.Addr, s.Sender)
			continue
		}
		st, ok := sender.ForTag(s.Tag)
		if !ok || !r.Endpoint(st.OutputChain).EndsInExploder() {
			t.Errorf("gateway service %v: sender %q tag %q does not end in an exploder in router.yaml", s.Addr, s.Sender, s.Tag)
		}
	}
	for _, e := range r.RestEndpoints {
		if e.Tag != "" && e.Sender == "router" {
			if _, ok := g.SMTPHosts[e.Tag]; !ok {
				t.Errorf("rest_endpoint %q: the gateway has no smtp_output.hosts.%s", e.Name, e.Tag)
			}
		}
	}
	steps := map[string]bool{}
	for _, e := range r.Endpoints {
		for _, s := range e.Chain {
			steps[s.Filter] = true
		}
	}
	for _, f := range []string{"exploder", "router", "dkim_sign", "dns_resolution", "received_header", "message_validation",
		"spf_check", "dkim_check", "dmarc_check", "auth_results", "policy_action", "remote_host", "rest_output"} {
		if !steps[f] {
			t.Errorf("router.yaml has no %s step", f)
		}
	}
	if r.Endpoint("submission").OutputHandler.Notification == nil {
		t.Errorf("submission sends no DSNs")
	}
}
