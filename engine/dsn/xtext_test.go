package dsn

import "testing"

func TestDecodeXtext(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"QQ314159", "QQ314159", false},
		{"", "", false},
		{"a+2Bb", "a+b", false},
		{"a+3Db+20c", "a=b c", false},
		{"+2b", "+", false}, // lower-case hex is tolerated
		{`back\slash`, `back\slash`, false},
		{"a+0D+0ABcc:x", "", true}, // CRLF must not come out of ENVID
		{"+7F", "", true},
		{"+C3+A9", "", true}, // xtext encodes ASCII only
		{"+", "", true},
		{"+2", "", true},
		{"+GG", "", true},
		{"a=b", "", true},
		{"a b", "", true},
		{"caf\u00e9", "", true},
	}
	for _, tt := range tests {
		got, err := DecodeXtext(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("DecodeXtext(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseORCPT(t *testing.T) {
	tests := []struct {
		in      string
		want    TypedAddress
		wantErr bool
	}{
		{"rfc822;bob@example.org", TypedAddress{"rfc822", "bob@example.org"}, false},
		{"RFC822;bob+2Btag@example.org", TypedAddress{"rfc822", "bob+tag@example.org"}, false},
		{"x400;+2F+3DG+3DBob", TypedAddress{"x400", "/=G=Bob"}, false},
		{`utf-8;j\x{F6}e@b\x{FC}cher.example`, TypedAddress{"utf-8", "jöe@bücher.example"}, false},
		{"utf-8;jöe@bücher.example", TypedAddress{"utf-8", "jöe@bücher.example"}, false},
		{`UTF-8;\x{1F600}@example.com`, TypedAddress{"utf-8", "\U0001F600@example.com"}, false},
		{`utf-8;a\x{2B}b@example.com`, TypedAddress{"utf-8", "a+b@example.com"}, false},
		{`rfc822;j\x{F6}e@example.com`, TypedAddress{"rfc822", `j\x{F6}e@example.com`}, false},
		{"rfc822;jöe@example.com", TypedAddress{}, true}, // raw UTF-8 only for utf-8
		{`utf-8;a\x{0A}b`, TypedAddress{}, true},
		{`utf-8;a\x{D800}b`, TypedAddress{}, true},
		{`utf-8;a\x{110000}b`, TypedAddress{}, true},
		{`utf-8;a\x{}b`, TypedAddress{}, true},
		{`utf-8;a\x{F6b`, TypedAddress{}, true},
		{"utf-8;a\xffb", TypedAddress{}, true},
		{"utf-8;a\u0085b", TypedAddress{}, true}, // C1 control
		{"rfc822", TypedAddress{}, true},
		{"rfc822;", TypedAddress{}, true},
		{";bob@example.org", TypedAddress{}, true},
		{"rfc 822;bob@example.org", TypedAddress{}, true},
		{"rfc822;bob+0D+0A@example.org", TypedAddress{}, true},
	}
	for _, tt := range tests {
		got, err := ParseORCPT(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseORCPT(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
