package addr

import (
	"strings"
	"testing"
)

func TestParseMailboxValid(t *testing.T) {
	tests := []struct {
		in     string
		local  string
		domain string
		str    string // String() when it differs from in
	}{
		{in: "a@b", local: "a", domain: "b"},
		{in: "alice@example.com", local: "alice", domain: "example.com"},
		{in: "Alice.Smith@Example.COM", local: "Alice.Smith", domain: "Example.COM"},
		{in: "a+tag@example.com", local: "a+tag", domain: "example.com"},
		{in: "!#$%&'*+-/=?^_`{|}~@example.com", local: "!#$%&'*+-/=?^_`{|}~", domain: "example.com"},
		{in: "a.b.c@x-y.example", local: "a.b.c", domain: "x-y.example"},
		{in: "a@123.example", local: "a", domain: "123.example"},
		{in: "a@1.2.3.4", local: "a", domain: "1.2.3.4"},
		{in: "a@localhost", local: "a", domain: "localhost"},
		// Quoted local parts keep their content, unquoted.
		{in: `"a b"@x`, local: "a b", domain: "x"},
		{in: `"a\"b"@x`, local: `a"b`, domain: "x"},
		{in: `"a\\b"@x`, local: `a\b`, domain: "x"},
		{in: `"a@b"@x`, local: "a@b", domain: "x"},
		{in: `".a"@x`, local: ".a", domain: "x"},
		{in: `"a..b"@x`, local: "a..b", domain: "x"},
		{in: `""@x`, local: "", domain: "x"},
		{in: `"abc"@x`, local: "abc", domain: "x", str: "abc@x"},
		{in: `"a\bc"@x`, local: "abc", domain: "x", str: "abc@x"},
		{in: `"a\ b"@x`, local: "a b", domain: "x", str: `"a b"@x`},
		// SMTPUTF8 (RFC 6531) local parts and IDN domains.
		{in: "用户@例子.广告", local: "用户", domain: "例子.广告"},
		{in: "ざっくり@example.com", local: "ざっくり", domain: "example.com"},
		{in: "jörg@bücher.example", local: "jörg", domain: "bücher.example"},
		{in: `"jö rg"@bücher.example`, local: "jö rg", domain: "bücher.example"},
		{in: "a@xn--bcher-kva.example", local: "a", domain: "xn--bcher-kva.example"},
		{in: "a@Bücher.Example", local: "a", domain: "Bücher.Example"},
		{in: "a@straße.de", local: "a", domain: "straße.de"},
		// Address literals.
		{in: "a@[127.0.0.1]", local: "a", domain: "[127.0.0.1]"},
		{in: "a@[IPv6:2001:db8::1]", local: "a", domain: "[IPv6:2001:db8::1]"},
		{in: "a@[ipv6:::1]", local: "a", domain: "[ipv6:::1]"},
		{in: "a@[IPv6:::ffff:192.0.2.1]", local: "a", domain: "[IPv6:::ffff:192.0.2.1]"},
		// Limits, exactly reached.
		{in: strings.Repeat("l", 64) + "@x", local: strings.Repeat("l", 64), domain: "x"},
		{in: "a@" + strings.Repeat("d", 63) + ".x", local: "a", domain: strings.Repeat("d", 63) + ".x"},
	}
	for _, tt := range tests {
		m, err := ParseMailbox(tt.in)
		if err != nil {
			t.Errorf("ParseMailbox(%q): %v", tt.in, err)
			continue
		}
		if m.Local != tt.local || m.Domain != tt.domain {
			t.Errorf("ParseMailbox(%q) = %q, %q; want %q, %q", tt.in, m.Local, m.Domain, tt.local, tt.domain)
		}
		want := tt.in
		if tt.str != "" {
			want = tt.str
		}
		if got := m.String(); got != want {
			t.Errorf("ParseMailbox(%q).String() = %q, want %q", tt.in, got, want)
		}
	}
}

func TestParseMailboxInvalid(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	// A 255-octet domain of 63-octet labels.
	domain255 := long(63) + "." + long(63) + "." + long(63) + "." + long(63)
	tests := []struct {
		in      string
		wantErr string
	}{
		{"", "empty address"},
		{"alice", "missing '@'"},
		{"@example.com", "local part empty"},
		{"alice@", "domain empty"},
		{".a@x", "local part starts with '.'"},
		{"a.@x", "local part ends with '.'"},
		{"a..b@x", "consecutive dots"},
		{"a b@x", `invalid character ' ' in local part`},
		{"a(b)@x", `invalid character '(' in local part`},
		{`a"b"@x`, `invalid character '"' in local part`},
		{"<a@x>", `invalid character '<' in local part`},
		{"a@b@c", `invalid character '@' in domain label "b@c"`},
		{`"a b@x`, "unterminated quoted string"},
		{`"a\`, "unterminated quoted string"},
		{`"a"b@x`, "missing '@' after quoted local part"},
		{"\"a\tb\"@x", `invalid character '\t' in quoted string`},
		{"\"a\r\nb\"@x", `invalid character '\r' in quoted string`},
		{"\"a\\\x01\"@x", `invalid escaped character '\x01'`},
		{`"a\ü"@x`, `invalid escaped character`},
		{"a\xff@x", "not valid UTF-8"},
		{long(70) + "@x", "local part too long: 70 > 64 octets"},
		{`"` + long(63) + `"@x`, "local part too long: 65 > 64 octets"},
		{"ü" + long(63) + "@x", "local part too long: 65 > 64 octets"},
		{"a@x..y", "domain label empty"},
		{"a@.x", "domain label empty"},
		{"a@x.", "domain label empty"},
		{"a@-x.y", `domain label "-x" starts or ends with '-'`},
		{"a@x-.y", `domain label "x-" starts or ends with '-'`},
		{"a@x_y.z", `invalid character '_' in domain label "x_y"`},
		{"a@x y", `invalid character ' ' in domain label "x y"`},
		{"a@" + long(64) + ".x", "domain label too long: 64 > 63 octets"},
		{"a@" + domain255 + ".x", "domain too long: 257 > 255 octets"},
		{"a@" + strings.Repeat("ü", 60) + ".x", "domain label too long"},
		{"a@xn--zz.example", "invalid domain"},
		{"a@bü_cher.example", "invalid domain"},
		{"a@[1.2.3.4", "missing closing ']'"},
		{"a@[1.2.3]", `invalid IPv4 address literal "[1.2.3]"`},
		{"a@[1.2.3.256]", "invalid IPv4 address literal"},
		{"a@[01.2.3.4]", "invalid IPv4 address literal"},
		{"a@[::1]", `IPv6 address literal "[::1]" missing the "IPv6:" tag`},
		{"a@[IPv6:1.2.3.4]", "invalid IPv6 address literal"},
		{"a@[IPv6:fe80::1%eth0]", "invalid IPv6 address literal"},
		{"a@[IPv6:2001:db8::g]", "invalid IPv6 address literal"},
		{"a@[x400:foo]", `unsupported address literal tag "x400"`},
		{"a@[]", "invalid IPv4 address literal"},
		{long(64) + "@" + domain255[:190], "path too long: 257 > 256 octets"},
	}
	for _, tt := range tests {
		m, err := ParseMailbox(tt.in)
		if err == nil {
			t.Errorf("ParseMailbox(%q) = %+v, want error containing %q", tt.in, m, tt.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseMailbox(%q) error = %q, want it to contain %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		in      string
		want    Mailbox
		null    bool
		wantErr string
	}{
		{in: "<>", null: true},
		{in: "<a@b>", want: Mailbox{"a", "b"}},
		{in: "a@b", want: Mailbox{"a", "b"}},
		{in: `<"a>b"@c>`, want: Mailbox{"a>b", "c"}},
		{in: "<jörg@bücher.example>", want: Mailbox{"jörg", "bücher.example"}},
		{in: "<@r1.example,@r2.example:a@b>", want: Mailbox{"a", "b"}},
		{in: "<@r1.example:a@[IPv6:::1]>", want: Mailbox{"a", "[IPv6:::1]"}},
		{in: "", wantErr: "empty address"},
		{in: "<", wantErr: "missing closing '>'"},
		{in: "<a@b", wantErr: "missing closing '>'"},
		{in: "<<>>", wantErr: "missing '@'"},
		{in: "< a@b>", wantErr: "invalid character ' ' in local part"},
		{in: "a@b>", wantErr: `invalid character '>'`},
		{in: "<@r1.example a@b>", wantErr: "source route missing ':'"},
		{in: "<@r_1:a@b>", wantErr: `source route: invalid character '_'`},
		{in: "<@r1,r2:a@b>", wantErr: `source route hop "r2" missing '@'`},
		{in: "<" + strings.Repeat("a", 64) + "@" + strings.Repeat("b.", 94) + "cc>", wantErr: "path too long: 257 > 256 octets"},
	}
	for _, tt := range tests {
		m, null, err := ParsePath(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParsePath(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || m != tt.want || null != tt.null {
			t.Errorf("ParsePath(%q) = %+v, %v, %v; want %+v, %v", tt.in, m, null, err, tt.want, tt.null)
		}
	}
}

func TestStringQuoting(t *testing.T) {
	tests := []struct {
		m    Mailbox
		want string
	}{
		{Mailbox{}, ""},
		{Mailbox{"a", "b"}, "a@b"},
		{Mailbox{"a b", "b"}, `"a b"@b`},
		{Mailbox{`a"b\c`, "b"}, `"a\"b\\c"@b`},
		{Mailbox{"", "b"}, `""@b`},
		{Mailbox{"a.", "b"}, `"a."@b`},
		{Mailbox{"jörg", "bücher.example"}, "jörg@bücher.example"},
		{Mailbox{"a@b", "c"}, `"a@b"@c`},
	}
	for _, tt := range tests {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.m, got, tt.want)
		}
	}
}

func TestDomainConversion(t *testing.T) {
	tests := []struct {
		domain, ascii, unicode string
	}{
		{"bücher.example", "xn--bcher-kva.example", "bücher.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", "bücher.example"},
		{"XN--BCHER-KVA.Example", "xn--bcher-kva.example", "bücher.example"},
		{"Bücher.EXAMPLE", "xn--bcher-kva.example", "bücher.example"},
		{"Example.COM", "example.com", "example.com"},
		{"straße.de", "xn--strae-oqa.de", "straße.de"},
		{"例子.测试", "xn--fsqu00a.xn--0zwm56d", "例子.测试"},
		{"[127.0.0.1]", "[127.0.0.1]", "[127.0.0.1]"},
		{"[IPv6:2001:DB8::1]", "[IPv6:2001:DB8::1]", "[IPv6:2001:DB8::1]"},
	}
	for _, tt := range tests {
		m := Mailbox{Local: "a", Domain: tt.domain}
		if got, err := m.ASCIIDomain(); err != nil || got != tt.ascii {
			t.Errorf("ASCIIDomain(%q) = %q, %v; want %q", tt.domain, got, err, tt.ascii)
		}
		if got, err := m.UnicodeDomain(); err != nil || got != tt.unicode {
			t.Errorf("UnicodeDomain(%q) = %q, %v; want %q", tt.domain, got, err, tt.unicode)
		}
	}
	for _, d := range []string{"", "a..b", "a_b.example", "xn--zz.example", "[1.2.3]"} {
		m := Mailbox{Local: "a", Domain: d}
		if got, err := m.ASCIIDomain(); err == nil {
			t.Errorf("ASCIIDomain(%q) = %q, want error", d, got)
		}
		if got, err := m.UnicodeDomain(); err == nil {
			t.Errorf("UnicodeDomain(%q) = %q, want error", d, got)
		}
	}
}

func TestNeedsSMTPUTF8(t *testing.T) {
	tests := []struct {
		m    Mailbox
		want bool
	}{
		{Mailbox{"alice", "example.com"}, false},
		{Mailbox{"alice", "bücher.example"}, false},
		{Mailbox{"jörg", "example.com"}, true},
		{Mailbox{"用户", "例子.广告"}, true},
		{Mailbox{}, false},
	}
	for _, tt := range tests {
		if got := tt.m.NeedsSMTPUTF8(); got != tt.want {
			t.Errorf("%+v.NeedsSMTPUTF8() = %v, want %v", tt.m, got, tt.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	fold := NormalizeOptions{FoldLocalCase: true}
	plus := NormalizeOptions{StripSubaddress: "+"}
	both := NormalizeOptions{FoldLocalCase: true, StripSubaddress: "+"}
	tests := []struct {
		in   string
		o    NormalizeOptions
		want string
	}{
		{"Alice@Example.COM", NormalizeOptions{}, "Alice@example.com"},
		{"<Alice@Example.COM>", NormalizeOptions{}, "Alice@example.com"},
		{"Alice@Example.COM", fold, "alice@example.com"},
		{"JÖRG@Bücher.Example", fold, "jörg@xn--bcher-kva.example"},
		{"JÖRG@Bücher.Example", NormalizeOptions{}, "JÖRG@xn--bcher-kva.example"},
		{"a+tag@x", plus, "a@x"},
		{"a+b+c@x", plus, "a@x"},
		{"+tag@x", plus, "+tag@x"},
		{"a+tag@x", NormalizeOptions{}, "a+tag@x"},
		{"Bob--Lists@x", NormalizeOptions{StripSubaddress: "--"}, "Bob@x"},
		{"Bob+Lists@X", both, "bob@x"},
		{`"abc"@x`, NormalizeOptions{}, "abc@x"},
		{`"A B"@x`, fold, `"a b"@x`},
		{`"a b+c"@x`, plus, `"a b"@x`},
		{"a@[IPv6:2001:DB8:0::1]", NormalizeOptions{}, "a@[IPv6:2001:db8::1]"},
		{"a@[ipv6:::ffff:192.0.2.1]", NormalizeOptions{}, "a@[IPv6:::ffff:192.0.2.1]"},
		{"a@[192.0.2.1]", NormalizeOptions{}, "a@[192.0.2.1]"},
		{"<>", fold, ""},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in, tt.o)
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q, %+v) = %q, %v; want %q", tt.in, tt.o, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "a", "a@b..c", "<a@b"} {
		if got, err := Normalize(in, both); err == nil {
			t.Errorf("Normalize(%q) = %q, want error", in, got)
		}
	}
}

func TestDomainOf(t *testing.T) {
	for in, want := range map[string]string{
		"bob@Example.COM":        "example.com",
		"bob@bücher.example":     "xn--bcher-kva.example",
		`"a@b"@example.org`:      "example.org",
		"not an address@Odd.Net": "odd.net",
		"postmaster":             "",
	} {
		if got := DomainOf(in); got != want {
			t.Errorf("DomainOf(%q) = %q, want %q", in, got, want)
		}
	}
}
