package config

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file checks what needs the whole file: names that refer to other sections,
// duplicate names, and settings that only make sense together.

type refKind int

const (
	endpointRef refKind = iota
	senderRef
	tagRef
	restEndpointRef
	restOutputRef
)

var refKindNames = map[refKind]string{
	endpointRef:     "an endpoint name",
	senderRef:       "a sender name",
	restEndpointRef: "a rest_endpoint name",
	restOutputRef:   "a rest_output name",
}

// ref is a name written in one place that must be defined in another.
type ref struct {
	kind   refKind
	name   string
	sender *string // for a tagRef: the sender the tag must belong to
	at     site
}

// refTo decodes key as the name of something defined elsewhere, checked once the file is
// read. For a tagRef, sender points at the sender the tag must belong to.
func refTo(kind refKind, key string, dst *string, sender *string) field {
	return scalar(key, dst, func(d *decoder, p path, n *yaml.Node) (string, bool) {
		s, ok := name(d, p, n)
		if ok {
			d.refs = append(d.refs, ref{kind, s, sender, site{d.pos(n), p}})
		}
		return s, ok
	})
}

// names are the names defined in a file, by kind; tags by sender.
type names struct {
	of   map[refKind][]string
	tags map[string][]string
}

// check reports r if it names nothing; a tag of an unknown sender is left to the error
// about the sender.
func (d *decoder) check(r ref, ns names) bool {
	known, what := ns.of[r.kind], refKindNames[r.kind]
	if r.kind == tagRef {
		if !slices.Contains(ns.of[senderRef], *r.sender) {
			return false
		}
		known, what = ns.tags[*r.sender], fmt.Sprintf("a tag of sender %q", *r.sender)
	}
	if slices.Contains(known, r.name) {
		return true
	}
	d.errorAt(r.at.pos, r.at.path, "%q is not %s (%s)", r.name, what, knownList(known))
	return false
}

func knownList(known []string) string {
	if len(known) == 0 {
		return "none are defined"
	}
	return "known: " + strings.Join(slices.Sorted(slices.Values(known)), ", ")
}

// namesOf returns the names of items, reporting each name that an earlier item already has.
func namesOf[T any](d *decoder, what string, p path, items []T, id func(T) (string, Position)) []string {
	var names []string
	first := map[string]Position{}
	for _, item := range items {
		name, pos := id(item)
		if at, dup := first[name]; dup {
			d.errorAt(pos, p.item(name), "duplicate %s name %q (first at line %d)", what, name, at.Line)
		} else if name != "" {
			first[name] = pos
		}
		names = append(names, name)
	}
	return names
}

func (d *decoder) validateRouter(p path, r *Router) {
	ns := names{of: map[refKind][]string{}, tags: map[string][]string{}}
	ns.of[senderRef] = namesOf(d, "sender", p.key("sender"), r.Senders, func(s Sender) (string, Position) { return s.Name, s.Pos })
	ns.of[endpointRef] = namesOf(d, "endpoint", p.key("endpoint"), r.Endpoints, func(e Endpoint) (string, Position) { return e.Name, e.Pos })
	ns.of[restEndpointRef] = namesOf(d, "rest_endpoint", p.key("rest_endpoint"), r.RestEndpoints,
		func(e RestEndpoint) (string, Position) { return e.Name, e.Pos })
	for _, s := range r.Senders {
		tags := namesOf(d, "tag", p.key("sender").item(s.Name).key("tag"), s.Tags, func(t Tag) (string, Position) { return t.Name, t.Pos })
		if _, dup := ns.tags[s.Name]; !dup {
			ns.tags[s.Name] = tags
		}
	}

	for _, rf := range d.refs {
		d.check(rf, ns)
	}
	for _, pd := range d.dests {
		d.resolveDestination(r, pd)
	}
	for _, at := range d.notifications {
		if r.Global.MailerDaemonMailbox == "" {
			d.errorAt(at.pos, at.path, "DSNs need global.mailer_daemon_mailbox, which is not set")
		}
	}
	for i, s := range r.Senders {
		at, sp := d.senders[i], p.key("sender").item(s.Name)
		d.checkSettings(r, ns, &s.SenderSettings, at.own, nil, site{s.Pos, sp})
		for j, t := range s.Tags {
			d.checkSettings(r, ns, &t.SenderSettings, at.tags[j], at.own, site{t.Pos, sp.key("tag").item(t.Name)})
		}
	}
}

// resolveDestination checks that a destination's rest_endpoint can be sent to, and merges
// the destination's options over the rest_endpoint's.
func (d *decoder) resolveDestination(r *Router, pd pendingDestination) {
	base := EndpointOptions{}
	if name := pd.dest.Endpoint; name != "" {
		ep := r.RestEndpoint(name)
		if ep == nil {
			return // reported by the ref check
		}
		if ep.Sender == "" {
			d.errorAt(pd.at.pos, pd.at.path, "rest_endpoint %q has no sender, so it cannot be a destination", name)
		}
		base = ep.Options
	}
	pd.dest.Options = pd.over.over(base)
}

// checkSettings checks the settings of a sender (parent nil) or of one of its tags, here;
// at and parent say where their keys were written. A problem that comes only from keys a
// tag inherits is reported once, on the sender.
func (d *decoder) checkSettings(r *Router, ns names, st *SenderSettings, at, parent sites, here site) {
	chain := r.Endpoint(st.OutputChain)
	if st.OutputChain != "" {
		d.check(ref{endpointRef, st.OutputChain, nil, at["output_chain"]}, ns)
	}
	if chain == nil {
		return
	}
	oh := chain.OutputHandler
	if s, ok := at.own(parent, "retry", "output_chain"); ok && st.Retry && oh.RetryParams == nil {
		d.errorAt(s.pos, s.path, "retry: output_chain needs output_handler.retry_params, which endpoint %q does not have (add them, or set retry: null)", chain.Name)
	}
	if s, ok := at.own(parent, "notification", "output_chain"); ok && st.Notification && oh.Notification == nil {
		d.errorAt(s.pos, s.path, "notification: output_chain needs output_handler.notification, which endpoint %q does not have (add it, or set notification: null)", chain.Name)
	}
	if s, ok := at.own(parent, "notification", "retry"); ok && st.Notification && !st.Retry {
		d.errorAt(s.pos, s.path, "notification: output_chain needs retry: output_chain as well")
	}
	// The upstream sender and tag are what an exploder at the end of the chain fans out to.
	explodes := chain.EndsInExploder()
	if at.has("upstream_sender") && !d.check(ref{senderRef, st.UpstreamSender, nil, at["upstream_sender"]}, ns) {
		return
	}
	up := r.Sender(st.UpstreamSender)
	if up == nil || !explodes && !at.has("upstream_tag") {
		return
	}
	upst, ok := up.ForTag(st.UpstreamTag)
	if !ok {
		where := here
		if s, ok := at["upstream_tag"]; ok {
			where = s
		} else if s, ok := at.own(parent, "upstream_sender"); ok {
			where = s
		}
		d.errorAt(where.pos, where.path, "upstream tag %q is not a tag of sender %q (%s)", st.UpstreamTag, up.Name, knownList(ns.tags[up.Name]))
		return
	}
	if upChain := r.Endpoint(upst.OutputChain); explodes && upChain != nil && upChain.EndsInExploder() {
		where, ok := at.own(parent, "upstream_tag", "upstream_sender", "output_chain")
		if !ok {
			where = here
		}
		d.errorAt(where.pos, where.path, "the exploder of endpoint %q sends each recipient to sender %q tag %q, whose output_chain %q ends in exploder too; set upstream_tag to a tag whose chain delivers",
			chain.Name, up.Name, st.UpstreamTag, upChain.Name)
	}
}

// listenAddr is an address a listener in the file binds.
type listenAddr struct {
	addr HostPort
	pos  Position
	path path
}

// checkListeners reports two listeners on one port of one address (or of all addresses).
func (d *decoder) checkListeners() {
	for i, a := range d.listens {
		for _, b := range d.listens[:i] {
			if a.addr.Port == b.addr.Port && (a.addr.Host == b.addr.Host || isWildcard(a.addr.Host) || isWildcard(b.addr.Host)) {
				d.errorAt(a.pos, a.path, "%s is already used by %s (line %d)", a.addr, b.path, b.pos.Line)
				break
			}
		}
	}
}

func isWildcard(host string) bool {
	return host == "" || host == "0.0.0.0" || host == "::" || host == "::0"
}
