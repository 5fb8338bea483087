package addr

import (
	"strings"
	"testing"
	"unicode/utf8"
)

var mailboxSeeds = []string{
	"a@b", `"a b"@x`, `"a\"b"@x`, `""@x`, "jörg@bücher.example", "a@xn--bcher-kva.example",
	"a@[127.0.0.1]", "a@[IPv6:2001:db8::1]", "a..b@x", `"unterminated@x`, "a@x..y", "a@-x", "<a@b>", "<>",
	"<@r1,@r2:a@b>", "a@[x:y]", "用户@例子.广告",
}

// FuzzParseMailbox checks that whatever parses survives a String round
// trip unchanged and respects the RFC 5321 limits.
func FuzzParseMailbox(f *testing.F) {
	for _, s := range mailboxSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMailbox(s)
		if err != nil {
			return
		}
		checkMailbox(t, s, m)
		if len(s) > maxPathLen-2 {
			t.Errorf("ParseMailbox(%q) accepted %d octets", s, len(s))
		}
	})
}

// FuzzParsePath does the same for paths, and checks that the null path
// only comes from "<>".
func FuzzParsePath(f *testing.F) {
	for _, s := range mailboxSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, null, err := ParsePath(s)
		if err != nil {
			return
		}
		if null {
			if s != "<>" || m != (Mailbox{}) {
				t.Errorf("ParsePath(%q) = %+v, null", s, m)
			}
			return
		}
		checkMailbox(t, s, m)
		if _, err := Normalize(s, NormalizeOptions{FoldLocalCase: true, StripSubaddress: "+"}); err != nil {
			t.Errorf("Normalize(%q) failed after ParsePath succeeded: %v", s, err)
		}
	})
}

// FuzzParseHeaderAddressList checks that every returned mailbox is one
// ParseMailbox accepts, whatever net/mail let through.
func FuzzParseHeaderAddressList(f *testing.F) {
	for _, s := range []string{
		"a@b", `"Alice" <a@b>, c@d`, "=?utf-8?q?J=C3=B6rg?= <j@x>", "g: a@b, c@d;", "undisclosed-recipients:;",
		`"a@b"@c`, "a@b (comment)", "=?koi8-r?b?9MXT1A==?= <a@b>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		list, err := ParseHeaderAddressList(s)
		if err != nil {
			return
		}
		for _, a := range list {
			checkMailbox(t, a.Mailbox.String(), a.Mailbox)
		}
	})
}

func checkMailbox(t *testing.T, in string, m Mailbox) {
	t.Helper()
	str := m.String()
	back, err := ParseMailbox(str)
	if err != nil {
		t.Fatalf("%q parsed to %+v but its String %q does not parse: %v", in, m, str, err)
	}
	if back != m {
		t.Fatalf("%q parsed to %+v, String %q parsed back to %+v", in, m, str, back)
	}
	if !utf8.ValidString(m.Local) || !utf8.ValidString(m.Domain) {
		t.Fatalf("%q parsed to invalid UTF-8 %+v", in, m)
	}
	if strings.HasPrefix(m.Domain, "[") {
		return
	}
	a, err := m.ASCIIDomain()
	if err != nil {
		t.Fatalf("%q parsed but ASCIIDomain failed: %v", in, err)
	}
	if len(a) > maxDomainLen {
		t.Fatalf("%q: A-label domain has %d octets", in, len(a))
	}
	for i := 0; i < len(a); i++ {
		if c := a[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			t.Fatalf("%q: ASCIIDomain = %q is not lower-case ASCII", in, a)
		}
	}
	if _, err := m.UnicodeDomain(); err != nil {
		t.Fatalf("%q parsed but UnicodeDomain failed: %v", in, err)
	}
}
