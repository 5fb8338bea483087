package config

import (
	"maps"

	"gopkg.in/yaml.v3"
)

// Sender is a named principal; its name is the URL path segment of POST
// /senders/{sender}/transactions.
type Sender struct {
	Name string
	Pos  Position
	// SenderSettings apply to requests without a tag.
	SenderSettings
	Tags []Tag
}

// Tag is a variant of a sender picked by the tag in the request's JSON.
type Tag struct {
	Name string
	Pos  Position
	// SenderSettings are the sender's settings with the keys this tag sets on top.
	SenderSettings
}

// SenderSettings say what happens to a transaction created for a sender (and tag).
type SenderSettings struct {
	// OutputChain is the name of the endpoint whose chain the transaction runs.
	OutputChain string
	// Retry (retry: output_chain) retries the transaction with the chain's retry_params.
	Retry bool
	// Notification (notification: output_chain) sends a DSN on failure with the chain's
	// output_handler.notification.
	Notification bool
	// UpstreamSender and UpstreamTag are what an exploder at the end of OutputChain creates
	// its per-recipient transactions as; by default this sender and tag.
	UpstreamSender, UpstreamTag string
	// Webhook, when set, receives an event for each attempt outcome and DSN of the
	// transactions created for this sender (and tag); a tag's replaces its sender's.
	Webhook *Webhook
}

// site is where a key was written.
type site struct {
	pos  Position
	path path
}

// sites records where the settings keys of a sender or tag were written, by key, for the
// checks in validate.go. A tag starts with a copy of its sender's.
type sites map[string]site

// senderSites are the sites of one sender and of each of its tags, in order.
type senderSites struct {
	own  sites
	tags []sites
}

// ForTag returns the settings for a request with the given tag ("" for none), or false if
// the sender has no such tag.
func (s *Sender) ForTag(tag string) (*SenderSettings, bool) {
	if tag == "" {
		return &s.SenderSettings, true
	}
	for i := range s.Tags {
		if s.Tags[i].Name == tag {
			return &s.Tags[i].SenderSettings, true
		}
	}
	return nil, false
}

func (d *decoder) sender(p path, n *yaml.Node) Sender {
	s := Sender{Pos: d.pos(n)}
	var own SenderSettings
	at := senderSites{own: sites{}}
	var tags *yaml.Node
	d.fields(p, n, append(settingsFields(&own, at.own),
		scalar("name", &s.Name, name).must(),
		sub("tag", func(_ *decoder, _ path, v *yaml.Node) { tags = v }))...)
	if !at.own.has("output_chain") {
		d.errorf(n, p, "missing required key %q", "output_chain")
	}
	s.SenderSettings = own.withDefaults(s.Name, "")
	if tags != nil {
		tp := p.key("tag")
		d.list(tp, tags, func(i int, n *yaml.Node) {
			t := Tag{Pos: d.pos(n)}
			st, tagAt := own, maps.Clone(at.own)
			d.fields(tp.item(d.label(i, n)), n, append(settingsFields(&st, tagAt), scalar("name", &t.Name, name).must())...)
			t.SenderSettings = st.withDefaults(s.Name, t.Name)
			s.Tags, at.tags = append(s.Tags, t), append(at.tags, tagAt)
		})
	}
	d.senders = append(d.senders, at)
	return s
}

// notForged is why a sender's remote_host and smtp_meta are ignored.
const notForged = "Koukan does not forge where a message came from"

// settingsFields are the keys a sender and its tags share. A tag decodes them over a copy of
// its sender's settings, which is how its keys override the sender's.
func settingsFields(st *SenderSettings, at sites) []field {
	fs := []field{
		scalar("output_chain", &st.OutputChain, name).notNull(),
		sub("retry", outputChainFlag(&st.Retry)),
		sub("notification", outputChainFlag(&st.Notification)),
		scalar("upstream_sender", &st.UpstreamSender, name),
		scalar("upstream_tag", &st.UpstreamTag, name),
		// The reference forged these into transactions posted to the sender by a
		// rest_endpoint (router-to-router "short circuit").
		ignored("remote_host", notForged),
		ignored("smtp_meta", notForged),
		sub("webhook", func(d *decoder, p path, n *yaml.Node) {
			if st.Webhook = nil; !isNull(deref(n)) {
				st.Webhook = d.webhook(p, n)
			}
		}),
	}
	for i, f := range fs {
		fs[i].decode = func(d *decoder, p path, n *yaml.Node) {
			at[f.key] = site{d.pos(deref(n)), p}
			f.decode(d, p, n)
		}
	}
	return fs
}

// outputChainFlag decodes retry and notification: "output_chain" turns them on, null off.
func outputChainFlag(dst *bool) func(d *decoder, p path, n *yaml.Node) {
	return func(d *decoder, p path, n *yaml.Node) {
		switch n = deref(n); {
		case isNull(n):
			*dst = false
		case n.Kind == yaml.ScalarNode && n.Value == "output_chain":
			*dst = true
		default:
			d.errorf(n, p, "expected output_chain or null, got %s", describe(n))
		}
	}
}

// withDefaults fills in the upstream sender and tag of a request for sender and tag.
func (st SenderSettings) withDefaults(sender, tag string) SenderSettings {
	if st.UpstreamSender == "" {
		st.UpstreamSender = sender
	}
	if st.UpstreamTag == "" {
		st.UpstreamTag = tag
	}
	return st
}

// own returns where the first of keys is written on these settings themselves rather than
// inherited from parent (nil for a sender), or false if all of them are inherited.
func (at sites) own(parent sites, keys ...string) (site, bool) {
	for _, k := range keys {
		s, ok := at[k]
		if ok && (parent == nil || parent[k] != s) {
			return s, true
		}
	}
	return site{}, false
}

// has reports whether key was written for these settings (on the tag or its sender).
func (at sites) has(key string) bool {
	_, ok := at[key]
	return ok
}
