package config

import (
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Step is one entry of a chain: {filter: name, ...options}.
type Step struct {
	Filter string
	Pos    Position
	// Options are the options of a step without a Go schema (a Lua script), by key. They
	// are nil for the Go built-ins, whose options are in the typed fields below, one of
	// which is set for the built-in of that name.
	Options    map[string]Value
	Exploder   *ExploderStep
	RestOutput *RestOutputStep
	Router     *RouterStep
	AddRoute   *AddRouteStep
}

// Builtin reports whether the step is implemented in Go rather than by a Lua script.
func (s *Step) Builtin() bool {
	_, ok := builtinSteps[s.Filter]
	return ok
}

// ExploderStep ends a chain by creating one transaction per recipient (reference §4). Each
// runs the output_chain of the sender's upstream_sender and upstream_tag.
type ExploderStep struct {
	// MSA applies submission rules: temporary upstream failures become store-and-forward.
	MSA bool
	// RcptTimeout and DataTimeout bound the wait for upstream responses: 5 s and 30 s with
	// MSA, else 30 s and 300 s.
	RcptTimeout, DataTimeout time.Duration
}

// RestOutputStep ends a chain by sending the transaction to a REST endpoint (reference §6.12).
type RestOutputStep struct {
	// StaticEndpoint is a fixed URL; "" sends to the rest_endpoint chosen by routing.
	StaticEndpoint string
	// RcptTimeout is the deadline of each update (30 s).
	RcptTimeout time.Duration
	// DataTimeout is the timeout of each blob PUT (300 s).
	DataTimeout time.Duration
	// ChunkSize is the number of body bytes per PUT; 0 sends the body in one PUT.
	ChunkSize int
	Verify    TLSVerify
}

// TLSVerify is the verify option of a REST client: true (the default), false, or the path of
// a CA bundle.
type TLSVerify struct {
	// Off (verify: false) accepts any server certificate.
	Off bool
	// CAFile (verify: <path>) trusts this CA bundle instead of the system roots.
	CAFile string
}

// RouterStep routes each recipient that no earlier router step routed (reference §6.8).
type RouterStep struct {
	// Policy picks a destination per recipient; nil sends every recipient to Destination.
	Policy *Policy
	// DryRun only accepts or rejects; it routes nothing.
	DryRun bool
	// Destination is used when there is no policy; with neither, every recipient is
	// rejected (the catch-all at the end of a list of routers).
	Destination *Destination
}

// Policy is a routing policy: a Lua script named by Name, e.g. address_list or dest_domain.
type Policy struct {
	Name        string
	Pos         Position
	Destination *Destination
	// Options are the policy's other keys, which its script checks.
	Options map[string]Value
}

// AddRouteStep sends a copy of the transaction through the chain of another sender
// (reference §6.14), e.g. to a system of record.
type AddRouteStep struct {
	Sender, Tag string
	// StoreAndForward writes the copy as its own durable transaction instead of running
	// it inline, where its failure would fail the original.
	StoreAndForward bool
}

// builtinSteps decode the options of the steps implemented in Go.
var builtinSteps = map[string]func(d *decoder, p path, n *yaml.Node, s *Step){
	"exploder":        (*decoder).exploderStep,
	"rest_output":     (*decoder).restOutputStep,
	"router":          (*decoder).routerStep,
	"add_route":       (*decoder).addRouteStep,
	"message_builder": (*decoder).noOptions,
	"message_parser":  (*decoder).noOptions,
}

// ignoredScriptKeys are keys of Lua steps that the reference accepted and never read.
var ignoredScriptKeys = map[string][]field{
	"dns_resolution": {ignored("overwrite", "resolved addresses always replace the host name")},
}

// filterKey stands for the step's filter key among its options; step has read it already.
var filterKey = sub("filter", func(*decoder, path, *yaml.Node) {})

// isTerminal reports whether a step ends a chain: nothing after it would run.
func isTerminal(filter string) bool { return filter == "exploder" || filter == "rest_output" }

func (d *decoder) chain(p path, n *yaml.Node) []Step {
	var steps []Step
	d.list(p, n, func(i int, n *yaml.Node) { steps = append(steps, d.step(p.item(strconv.Itoa(i)), n)) })
	for i, s := range steps {
		if isTerminal(s.Filter) && i < len(steps)-1 {
			d.errorAt(s.Pos, p.item(strconv.Itoa(i)), "%s must be the last step of the chain, but %d more follow", s.Filter, len(steps)-1-i)
		}
	}
	switch last := len(steps) - 1; {
	case last < 0 && deref(n).Kind != yaml.SequenceNode && !isNull(deref(n)):
		// not a list: reported by list
	case last < 0:
		d.errorf(deref(n), p, "a chain needs at least one step, and must end with rest_output or exploder")
	case steps[last].Filter != "" && !isTerminal(steps[last].Filter):
		d.errorAt(steps[last].Pos, p.item(strconv.Itoa(last)), "a chain must end with rest_output or exploder, not %s", steps[last].Filter)
	}
	return steps
}

func (d *decoder) step(p path, n *yaml.Node) Step {
	s := Step{Pos: d.pos(n)}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, p, "expected a step {filter: name, ...options}, got %s", describe(n))
		return s
	}
	var filter *yaml.Node
	for _, e := range d.entries(p, n) {
		if e.k.Value == "filter" {
			filter = deref(e.v)
		}
	}
	if filter == nil {
		d.errorf(n, p, "missing required key %q", "filter")
		return s
	}
	var ok bool
	if s.Filter, ok = name(d, p.key("filter"), filter); !ok {
		return s
	}
	if decode, ok := builtinSteps[s.Filter]; ok {
		decode(d, p, n, &s)
		return s
	}
	s.Options = map[string]Value{}
	d.fieldsAndRest(p, n, func(k, v *yaml.Node) { s.Options[k.Value] = d.value(p.key(k.Value), k, v) },
		append([]field{filterKey}, ignoredScriptKeys[s.Filter]...)...)
	return s
}

func (d *decoder) noOptions(p path, n *yaml.Node, s *Step) {
	d.fieldsAndRest(p, n, func(k, _ *yaml.Node) { d.errorf(k, p, "unknown key %q: %s takes no options", k.Value, s.Filter) }, filterKey)
}

func (d *decoder) exploderStep(p path, n *yaml.Node, s *Step) {
	x := &ExploderStep{}
	rcpt, data := time.Duration(-1), time.Duration(-1)
	d.fields(p, n, filterKey,
		scalar("msa", &x.MSA, boolean),
		scalar("rcpt_timeout", &rcpt, positiveSeconds),
		scalar("data_timeout", &data, positiveSeconds),
		ignored("output_chain", "recipients run the output_chain of the sender's upstream_sender and upstream_tag"),
	)
	x.RcptTimeout, x.DataTimeout = 30*time.Second, 300*time.Second
	if x.MSA {
		x.RcptTimeout, x.DataTimeout = 5*time.Second, 30*time.Second
	}
	if rcpt >= 0 {
		x.RcptTimeout = rcpt
	}
	if data >= 0 {
		x.DataTimeout = data
	}
	s.Exploder = x
}

func (d *decoder) restOutputStep(p path, n *yaml.Node, s *Step) {
	r := &RestOutputStep{RcptTimeout: 30 * time.Second, DataTimeout: 300 * time.Second}
	d.fields(p, n, filterKey,
		scalar("static_endpoint", &r.StaticEndpoint, httpURL),
		scalar("rcpt_timeout", &r.RcptTimeout, positiveSeconds),
		scalar("data_timeout", &r.DataTimeout, positiveSeconds),
		scalar("chunk_size", &r.ChunkSize, integer(0, maxInt)),
		scalar("verify", &r.Verify, tlsVerify),
		ignored("static_remote_host", "the remote host comes from the routing resolution"),
	)
	s.RestOutput = r
}

func tlsVerify(d *decoder, p path, n *yaml.Node) (TLSVerify, bool) {
	switch {
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool":
		b, ok := boolean(d, p, n)
		return TLSVerify{Off: !b}, ok
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && n.Value != "":
		return TLSVerify{CAFile: n.Value}, true
	}
	d.errorf(n, p, "expected true, false or the path of a CA bundle, got %s", describe(n))
	return TLSVerify{}, false
}

func (d *decoder) routerStep(p path, n *yaml.Node, s *Step) {
	r := &RouterStep{}
	var dest *yaml.Node
	d.fields(p, n, filterKey,
		sub("policy", func(d *decoder, p path, n *yaml.Node) { r.Policy = d.policy(p, n) }),
		scalar("dry_run", &r.DryRun, boolean),
		sub("destination", func(d *decoder, p path, n *yaml.Node) { r.Destination, dest = d.destination(p, n), n }),
	)
	if r.Policy != nil && r.Destination != nil {
		d.warnf(deref(dest), p.key("destination"), "ignored because the step has a policy; give the policy a destination instead")
	}
	s.Router = r
}

// policy decodes a routing policy; null, like absent, means none.
func (d *decoder) policy(p path, n *yaml.Node) *Policy {
	if n = deref(n); isNull(n) {
		return nil
	}
	pol := &Policy{Pos: d.pos(n), Options: map[string]Value{}}
	d.fieldsAndRest(p, n, func(k, v *yaml.Node) { pol.Options[k.Value] = d.value(p.key(k.Value), k, v) },
		scalar("name", &pol.Name, name).must(),
		sub("destination", func(d *decoder, p path, n *yaml.Node) { pol.Destination = d.destination(p, n) }),
	)
	d.prefixBases(p.key("prefixes"), pol.Options["prefixes"])
	return pol
}

// prefixBases rewrites the reference's never-implemented prefixes: [{base: x}] form to the
// plain prefix x, with a warning, so that such configs route as their authors meant.
func (d *decoder) prefixBases(p path, prefixes Value) {
	items, _ := prefixes.Data.([]Value)
	for i, item := range items {
		m, _ := item.Data.(map[string]Value)
		if base, ok := m["base"].Data.(string); ok && len(m) == 1 {
			d.warnAt(item.Pos, p.item(strconv.Itoa(i)), "the {base: %q} form was ignored by the reference; it is read as the prefix %q (write it as a plain string)", base, base)
			items[i] = Value{Pos: m["base"].Pos, Data: base}
		}
	}
}

func (d *decoder) addRouteStep(p path, n *yaml.Node, s *Step) {
	a := &AddRouteStep{}
	d.fields(p, n, filterKey,
		refTo(senderRef, "sender", &a.Sender, nil).must(),
		refTo(tagRef, "tag", &a.Tag, &a.Sender),
		scalar("store_and_forward", &a.StoreAndForward, boolean),
	)
	s.AddRoute = a
}
