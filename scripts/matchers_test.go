package scripts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/tx"
	"github.com/koukan/koukan/luabind"
)

// pmValue is a plain value as the config gives it to a script.
func pmValue(v any) config.Value {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]config.Value, len(v))
		for k, item := range v {
			m[k] = pmValue(item)
		}
		return config.Value{Data: m}
	case []any:
		l := make([]config.Value, len(v))
		for i, item := range v {
			l[i] = pmValue(item)
		}
		return config.Value{Data: l}
	}
	return config.Value{Data: v}
}

// pmTx is a transaction from an SMTP client at ip (none if ""), from mailFrom ("-": no MAIL
// yet), to the recipients; numbers among them are the responses of the first recipients,
// in order.
func pmTx(ip, mailFrom string, rcpts ...string) *tx.Tx {
	t := &tx.Tx{RestID: "m1"}
	if ip != "" {
		t.RemoteHost = &tx.HostPort{Host: ip, Port: 40000}
	}
	if mailFrom != "-" {
		t.MailFrom = &tx.Mailbox{Address: mailFrom}
	}
	for _, r := range rcpts {
		if code, err := strconv.Atoi(r); err == nil {
			t.RcptResponse = append(t.RcptResponse, tx.Response{Code: code, Message: "x"})
			continue
		}
		t.RcptTo = append(t.RcptTo, tx.Mailbox{Address: r})
	}
	return t
}

func withMeta(t *tx.Tx, meta string) *tx.Tx {
	if meta != "" {
		if err := json.Unmarshal([]byte(meta), &t.SMTPMeta); err != nil {
			panic(err)
		}
	}
	return t
}

func withSignal(t *tx.Tx, name, value string) *tx.Tx {
	if t.FilterOutput == nil {
		t.FilterOutput = map[string]json.RawMessage{}
	}
	t.FilterOutput[name] = json.RawMessage(value)
	return t
}

var pmNames = map[luabind.Match]string{luabind.Matched: "MATCH", luabind.NoMatch: "NO_MATCH", luabind.Unknown: "UNMET"}

// The simple matchers of reference §7.4, asked directly as policy_action asks them: about
// the transaction (rcpt -1) or one recipient (0-based).
func TestSimpleMatchers(t *testing.T) {
	rt := paRuntime(t)
	const mv = "koukan.message_validation_filter.MessageValidationFilter"
	pa := paPolicySignal
	for i, c := range []struct {
		matcher string
		opts    map[string]any
		tx      *tx.Tx
		rcpt    int
		want    string
	}{
		// network_address
		{"network_address", map[string]any{"cidr": "192.0.2.0/24"}, pmTx("192.0.2.7", "a@x.example"), -1, "MATCH"},
		{"network_address", map[string]any{"cidr": "192.0.2.0/24"}, pmTx("198.51.100.1", "a@x.example"), -1, "NO_MATCH"},
		{"network_address", map[string]any{"cidr": "192.0.2.0/24"}, pmTx("::ffff:192.0.2.7", "a@x.example"), -1, "MATCH"},
		{"network_address", map[string]any{"cidr": "192.0.2.7"}, pmTx("192.0.2.7", "a@x.example"), -1, "MATCH"},
		{"network_address", map[string]any{"cidr": "192.0.2.7"}, pmTx("192.0.2.8", "a@x.example"), -1, "NO_MATCH"},
		{"network_address", map[string]any{"cidr": "2001:db8::/32"}, pmTx("2001:db8:1::25", "a@x.example"), -1, "MATCH"},
		{"network_address", map[string]any{"cidr": "2001:DB8::/32"}, pmTx("[2001:db8::1]", "a@x.example"), -1, "MATCH"},
		{"network_address", map[string]any{"cidr": "2001:db8::/32"}, pmTx("2001:db9::1", "a@x.example"), -1, "NO_MATCH"},
		{"network_address", map[string]any{"cidr": "2001:db8::/32"}, pmTx("192.0.2.7", "a@x.example"), -1, "NO_MATCH"},
		{"network_address", map[string]any{"cidr": "fe80::/10"}, pmTx("fe80::1%eth0", "a@x.example"), -1, "MATCH"},
		{"network_address", map[string]any{"cidr": []any{"10.0.0.0/8", "2001:db8::/32"}}, pmTx("2001:db8::1", "a@x.example"), -1, "MATCH"},
		{"network_address", map[string]any{"cidr": []any{"10.0.0.0/8", "2001:db8::/32"}}, pmTx("10.200.0.1", "a@x.example"), -1, "MATCH"},
		{"network_address", map[string]any{"cidr": "::ffff:192.0.2.0/120"}, pmTx("192.0.2.7", "a@x.example"), -1, "MATCH"},
		{"network_address", map[string]any{"cidr": "10.1.2.3/8"}, pmTx("10.200.0.1", "a@x.example"), -1, "MATCH"},
		{"network_address", map[string]any{"cidr": "0.0.0.0/0"}, pmTx("", "a@x.example"), -1, "UNMET"},
		{"network_address", map[string]any{"cidr": "0.0.0.0/0"}, pmTx("not an ip", "a@x.example"), -1, "NO_MATCH"},

		// smtp_tls and smtp_auth: not known without an SMTP session
		{"smtp_tls", nil, pmTx("192.0.2.7", "a@x.example"), -1, "UNMET"},
		{"smtp_tls", nil, withMeta(pmTx("192.0.2.7", "a@x.example"), `{"tls": true}`), -1, "MATCH"},
		{"smtp_tls", nil, withMeta(pmTx("192.0.2.7", "a@x.example"), `{"tls": false, "auth": true}`), -1, "NO_MATCH"},
		{"smtp_tls", nil, withMeta(pmTx("192.0.2.7", "a@x.example"), `{"ehlo_host": "c.example"}`), -1, "NO_MATCH"},
		{"smtp_auth", nil, pmTx("", "a@x.example"), -1, "UNMET"},
		{"smtp_auth", nil, withMeta(pmTx("192.0.2.7", "a@x.example"), `{"auth": true}`), 0, "MATCH"},
		{"smtp_auth", nil, withMeta(pmTx("192.0.2.7", "a@x.example"), `{"auth": false, "tls": true}`), -1, "NO_MATCH"},
		{"smtp_auth", nil, withMeta(pmTx("192.0.2.7", "a@x.example"), `{}`), -1, "NO_MATCH"},

		// num_rcpts: per recipient, the accepted recipients before it
		{"num_rcpts", map[string]any{"max_rcpts": 1}, pmTx("", "a@x.example", "r1@x", "r2@x", "r3@x", "250", "550"), 0, "NO_MATCH"},
		{"num_rcpts", map[string]any{"max_rcpts": 1}, pmTx("", "a@x.example", "r1@x", "r2@x", "r3@x", "250", "550"), 1, "MATCH"},
		{"num_rcpts", map[string]any{"max_rcpts": 1}, pmTx("", "a@x.example", "r1@x", "r2@x", "r3@x", "550", "250"), 1, "NO_MATCH"},
		{"num_rcpts", map[string]any{"max_rcpts": 1}, pmTx("", "a@x.example", "r1@x", "r2@x", "r3@x", "550", "250"), 2, "MATCH"},
		{"num_rcpts", map[string]any{"max_rcpts": 2}, pmTx("", "a@x.example", "r1@x", "r2@x", "r3@x", "250", "250"), 2, "MATCH"},
		{"num_rcpts", map[string]any{"max_rcpts": 2}, pmTx("", "a@x.example", "r1@x", "r2@x", "r3@x", "250", "451"), 2, "NO_MATCH"},
		{"num_rcpts", map[string]any{"max_rcpts": 0}, pmTx("", "a@x.example", "r1@x"), 0, "MATCH"},
		// for the whole transaction: more recipients accepted or pending than max_rcpts
		{"num_rcpts", map[string]any{"max_rcpts": 1}, pmTx("", "a@x.example", "r1@x", "r2@x", "r3@x", "250", "550"), -1, "MATCH"},
		{"num_rcpts", map[string]any{"max_rcpts": 2}, pmTx("", "a@x.example", "r1@x", "r2@x", "r3@x", "250", "550"), -1, "NO_MATCH"},

		// invalid_mail_from
		{"invalid_mail_from", nil, pmTx("", "-"), -1, "UNMET"},
		{"invalid_mail_from", nil, pmTx("", ""), -1, "NO_MATCH"},
		{"invalid_mail_from", nil, pmTx("", "<>"), -1, "NO_MATCH"},
		{"invalid_mail_from", nil, pmTx("", "alice@example.com"), -1, "NO_MATCH"},
		{"invalid_mail_from", nil, pmTx("", "<alice@example.com>"), -1, "NO_MATCH"},
		{"invalid_mail_from", nil, pmTx("", "álice@bücher.example"), -1, "NO_MATCH"},
		{"invalid_mail_from", nil, pmTx("", "alice"), -1, "MATCH"},
		{"invalid_mail_from", nil, pmTx("", "alice@"), -1, "MATCH"},
		{"invalid_mail_from", nil, pmTx("", "alice@exa mple.com"), -1, "MATCH"},

		// invalid_rcpt_to
		{"invalid_rcpt_to", nil, pmTx("", "a@x.example", "bob@example.com", "bob"), 0, "NO_MATCH"},
		{"invalid_rcpt_to", nil, pmTx("", "a@x.example", "bob@example.com", "bob"), 1, "MATCH"},
		{"invalid_rcpt_to", nil, pmTx("", "a@x.example", "<>"), 0, "MATCH"},
		{"invalid_rcpt_to", nil, pmTx("", "a@x.example"), -1, "UNMET"},
		{"invalid_rcpt_to", nil, pmTx("", "a@x.example", "bob@example.com"), -1, "NO_MATCH"},
		{"invalid_rcpt_to", nil, pmTx("", "a@x.example", "bob@example.com", "bob@"), -1, "MATCH"},

		// address_list on the envelope sender (the default)
		{"address_list", map[string]any{"domains": []any{"Example.COM"}, "prefixes": []any{"bob"}, "delimiter": "+"},
			pmTx("", "Bob+news@example.com"), -1, "MATCH"},
		{"address_list", map[string]any{"domains": []any{"example.com"}, "prefixes": []any{"bob"}},
			pmTx("", "carol@example.com"), -1, "NO_MATCH"},
		{"address_list", map[string]any{"domains": []any{"example.com"}}, pmTx("", "carol@example.com"), -1, "MATCH"},
		{"address_list", map[string]any{"domains": []any{"example.com"}}, pmTx("", "carol@example.org"), -1, "NO_MATCH"},
		{"address_list", map[string]any{"domains": []any{"bücher.example"}}, pmTx("", "carol@xn--bcher-kva.example"), -1, "MATCH"},
		{"address_list", map[string]any{}, pmTx("", "-"), -1, "UNMET"},
		{"address_list", map[string]any{}, pmTx("", ""), -1, "NO_MATCH"},
		{"address_list", map[string]any{"which_addr": "mail_from"}, pmTx("", "anyone@anywhere.example"), -1, "MATCH"},
		// on a recipient
		{"address_list", map[string]any{"which_addr": "rcpt_to", "domains": []any{"example.com"}},
			pmTx("", "a@x.example", "bob@example.org", "bob@example.com"), 0, "NO_MATCH"},
		{"address_list", map[string]any{"which_addr": "rcpt_to", "domains": []any{"example.com"}},
			pmTx("", "a@x.example", "bob@example.org", "bob@example.com"), 1, "MATCH"},
		{"address_list", map[string]any{"which_addr": "rcpt_to", "domains": []any{"example.com"}},
			pmTx("", "a@x.example", "bob@example.org", "bob@example.com"), -1, "MATCH"},
		{"address_list", map[string]any{"which_addr": "rcpt_to", "domains": []any{"example.com"}},
			pmTx("", "a@x.example", "bob@example.org"), -1, "NO_MATCH"},
		{"address_list", map[string]any{"which_addr": "rcpt_to"}, pmTx("", "a@x.example"), -1, "UNMET"},
		// on the From: address message_validation found (reference §12.4: the right signal)
		{"address_list", map[string]any{"which_addr": "header_from", "domains": []any{"example.com"}},
			pmTx("", "a@x.example"), -1, "UNMET"},
		{"address_list", map[string]any{"which_addr": "header_from", "domains": []any{"example.com"}},
			withSignal(pmTx("", "a@x.example"), mv, `{"status": 3, "header_from": "Alice@Example.com"}`), -1, "MATCH"},
		{"address_list", map[string]any{"which_addr": "header_from", "domains": []any{"example.com"}},
			withSignal(pmTx("", "a@x.example"), mv, `{"status": 3, "header_from": "alice@example.org"}`), -1, "NO_MATCH"},
		{"address_list", map[string]any{"which_addr": "header_from", "domains": []any{"example.com"}},
			withSignal(pmTx("", "a@x.example"), mv, `{"status": 1, "err": "2 From: fields"}`), -1, "NO_MATCH"},

		// policy_action: what earlier rules filed
		{"policy_action", map[string]any{"tag": "trusted"}, pmTx("", "a@x.example"), -1, "NO_MATCH"},
		{"policy_action", map[string]any{"tag": "trusted"},
			withSignal(pmTx("", "a@x.example"), pa, `{"matched_tags": ["trusted"], "matched_rules": ["internal"]}`), -1, "MATCH"},
		{"policy_action", map[string]any{"tag": "internal"},
			withSignal(pmTx("", "a@x.example"), pa, `{"matched_tags": ["trusted"], "matched_rules": ["internal"]}`), -1, "NO_MATCH"},
		{"policy_action", map[string]any{"rule": "internal"},
			withSignal(pmTx("", "a@x.example"), pa, `{"matched_tags": ["trusted"], "matched_rules": ["internal"]}`), -1, "MATCH"},
		{"policy_action", map[string]any{"rule": "internal"},
			withSignal(pmTx("", "a@x.example"), pa, `{"matched_rules": ["internal"]}`), -1, "MATCH"},
		{"policy_action", map[string]any{"tag": "trusted", "rule": "other"},
			withSignal(pmTx("", "a@x.example"), pa, `{"matched_tags": ["trusted"], "matched_rules": ["internal"]}`), -1, "NO_MATCH"},
	} {
		where := fmt.Sprintf("case %d: %s %v (rcpt %d)", i, c.matcher, c.opts, c.rcpt)
		opts := map[string]config.Value{}
		for k, v := range c.opts {
			opts[k] = pmValue(v)
		}
		// A leaf of a match expression carries the matcher's name too.
		opts["matcher"] = pmValue(c.matcher)
		m, err := rt.Matcher(new(int), c.matcher, opts)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Match(context.Background(), c.tx, c.rcpt)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		if pmNames[got] != c.want {
			t.Errorf("%s: got %s, want %s", where, pmNames[got], c.want)
		}
	}
}
