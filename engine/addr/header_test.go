package addr

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseHeaderAddressList(t *testing.T) {
	tests := []struct {
		in   string
		want []HeaderAddress
	}{
		{"alice@example.com", []HeaderAddress{{"", Mailbox{"alice", "example.com"}}}},
		{`"alice a" <alice@example.com>`, []HeaderAddress{{"alice a", Mailbox{"alice", "example.com"}}}},
		{"Alice <alice@example.com>, bob@example.org", []HeaderAddress{
			{"Alice", Mailbox{"alice", "example.com"}},
			{"", Mailbox{"bob", "example.org"}},
		}},
		// RFC 2047 display names, including a charset net/mail lacks.
		{"=?iso-8859-1?q?J=F6rg?= <j@example.com>", []HeaderAddress{{"Jörg", Mailbox{"j", "example.com"}}}},
		{"=?utf-8?b?w6Rsw6Q=?= <a@example.com>", []HeaderAddress{{"älä", Mailbox{"a", "example.com"}}}},
		{"=?koi8-r?b?9MXT1A==?= <a@example.com>", []HeaderAddress{{"Тест", Mailbox{"a", "example.com"}}}},
		// Groups are flattened; empty groups vanish.
		{"undisclosed-recipients:;", []HeaderAddress{}},
		{`Team: a@x.example, "q\"r" <q@y.example>;, z@w.example`, []HeaderAddress{
			{"", Mailbox{"a", "x.example"}},
			{`q"r`, Mailbox{"q", "y.example"}},
			{"", Mailbox{"z", "w.example"}},
		}},
		// Quoted local parts, including one with '@' inside.
		{`"a b"@example.com`, []HeaderAddress{{"", Mailbox{"a b", "example.com"}}}},
		{`Odd <"a@b"@example.com>`, []HeaderAddress{{"Odd", Mailbox{"a@b", "example.com"}}}},
		// RFC 6532 UTF-8 headers.
		{"ユーザー <ユーザー@例子.广告>", []HeaderAddress{{"ユーザー", Mailbox{"ユーザー", "例子.广告"}}}},
		// Empty list members are obsolete syntax, still accepted.
		{"a@b.example, ", []HeaderAddress{{"", Mailbox{"a", "b.example"}}}},
		{"a@[192.0.2.1]", []HeaderAddress{{"", Mailbox{"a", "[192.0.2.1]"}}}},
		{"a@example.com (Alice)", []HeaderAddress{{"Alice", Mailbox{"a", "example.com"}}}},
	}
	for _, tt := range tests {
		got, err := ParseHeaderAddressList(tt.in)
		if err != nil {
			t.Errorf("ParseHeaderAddressList(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseHeaderAddressList(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseHeaderAddressListInvalid(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string
	}{
		{"", "invalid address list: no address"},
		{"alice", "invalid address list"},
		{"<a@b", "invalid address list"},
		{"Alice <a@b> junk", "invalid address list"},
		{"ok@example.com, " + strings.Repeat("x", 65) + "@example.com", "address 2 (" + strings.Repeat("x", 65) + "@example.com): local part too long: 65 > 64 octets"},
		{"a@bad_domain.example", `invalid character '_' in domain label`},
		{"a@[::1]", `missing the "IPv6:" tag`},
	}
	for _, tt := range tests {
		got, err := ParseHeaderAddressList(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseHeaderAddressList(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
		}
	}
}
