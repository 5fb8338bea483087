package auth

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseDMARC(t *testing.T) {
	def := DMARCRecord{ADKIM: "r", ASPF: "r", Percent: 100, FailureOptions: "0"}
	with := func(f func(r *DMARCRecord)) *DMARCRecord {
		r := def
		f(&r)
		return &r
	}
	tests := []struct {
		txt     string
		want    *DMARCRecord
		wantErr string
	}{
		{"v=DMARC1; p=reject", with(func(r *DMARCRecord) { r.Policy = "reject" }), ""},
		{"v=DMARC1;p=none;", with(func(r *DMARCRecord) { r.Policy = "none" }), ""},
		{" V = DMARC1 ; P = Quarantine ; SP = none ; ADKIM = s ; aspf=S; pct=20; fo=1:d; x-new=ignored",
			with(func(r *DMARCRecord) {
				r.Policy, r.SubdomainPolicy, r.ADKIM, r.ASPF, r.Percent, r.FailureOptions = "quarantine", "none", "s", "s", 20, "1:d"
			}), ""},
		{"v=DMARC1; p=reject; rua=mailto:a@example.com, mailto:b@example.com!10m; ruf=mailto:f@example.com",
			with(func(r *DMARCRecord) {
				r.Policy = "reject"
				r.ReportAggregate = []string{"mailto:a@example.com", "mailto:b@example.com!10m"}
				r.ReportFailure = []string{"mailto:f@example.com"}
			}), ""},
		// §6.6.3 step 6: a bad p= with a valid rua= is read as p=none.
		{"v=DMARC1; p=bogus; rua=mailto:a@example.com", with(func(r *DMARCRecord) {
			r.Policy = "none"
			r.ReportAggregate = []string{"mailto:a@example.com"}
		}), ""},
		{"v=DMARC1; rua=mailto:a@example.com", with(func(r *DMARCRecord) {
			r.Policy = "none"
			r.ReportAggregate = []string{"mailto:a@example.com"}
		}), ""},
		{"v=DMARC1; p=bogus", nil, `invalid p="bogus"`},
		{"v=DMARC1; p=reject; sp=bogus", nil, `invalid sp="bogus"`},
		{"v=DMARC1", nil, "no p= tag"},
		{"v=DMARC1; p=reject; adkim=x", nil, `invalid adkim="x"`},
		{"v=DMARC1; p=reject; pct=101", nil, `invalid pct="101"`},
		{"v=DMARC1; p=reject; pct=abc", nil, `invalid pct="abc"`},
		{"v=DMARC1; p=reject; p=none", nil, `duplicate tag "p"`},
		{"v=DMARC1; p=reject; junk", nil, `malformed tag "junk"`},
		{"p=reject; v=DMARC1", nil, "must start with v=DMARC1"},
		{"v=dmarc1; p=reject", nil, "must start with v=DMARC1"},
		{"v=DMARC10; p=reject", nil, "must start with v=DMARC1"},
		{"v=spf1 -all", nil, "must start with v=DMARC1"},
	}
	for _, tt := range tests {
		got, err := ParseDMARC(tt.txt)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseDMARC(%q) = %+v, %v; want error %q", tt.txt, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseDMARC(%q) = %+v, %v; want %+v", tt.txt, got, err, tt.want)
		}
	}
}

// failTXT answers like a SERVFAIL for the names it has, and like txtMap
// otherwise.
type failTXT struct {
	txtMap
	fail map[string]bool
}

func (f failTXT) lookup(ctx context.Context, name string) ([]string, error) {
	if f.fail[name] {
		return nil, errors.New("server failure")
	}
	return f.txtMap.lookup(ctx, name)
}

func TestLookupDMARC(t *testing.T) {
	dns := failTXT{
		txtMap: txtMap{
			"_dmarc.example.com":      {"v=spf1 -all", "v=DMARC1; p=reject; sp=quarantine; adkim=s"},
			"_dmarc.own.example.com":  {"v=DMARC1; p=none"},
			"_dmarc.example.co.uk":    {"v=DMARC1; p=quarantine"},
			"_dmarc.twice.example":    {"v=DMARC1; p=none", "v=DMARC1; p=reject"},
			"_dmarc.broken.example":   {"v=DMARC1; p=maybe"},
			"_dmarc.other.example":    {"some text", "v=spf1 -all"},
			"_dmarc.xn--bcher-kva.de": {"v=DMARC1; p=reject"},
		},
		fail: map[string]bool{"_dmarc.flaky.example": true, "_dmarc.sub.flakyorg.example": false, "_dmarc.flakyorg.example": true},
	}
	tests := []struct {
		domain              string
		found, org, policy  string
		wantResult, wantWhy string
	}{
		{domain: "example.com", found: "example.com", org: "example.com", policy: "reject"},
		{domain: "EXAMPLE.com.", found: "example.com", org: "example.com", policy: "reject"},
		// A subdomain without its own record gets the organizational
		// domain's sp=.
		{domain: "mail.example.com", found: "example.com", org: "example.com", policy: "quarantine"},
		// A subdomain with a record of its own uses its p=.
		{domain: "own.example.com", found: "own.example.com", org: "example.com", policy: "none"},
		// Without sp=, p= applies to subdomains too.
		{domain: "a.b.example.co.uk", found: "example.co.uk", org: "example.co.uk", policy: "quarantine"},
		{domain: "mail.bücher.de", found: "xn--bcher-kva.de", org: "xn--bcher-kva.de", policy: "reject"},
		{domain: "nothing.example", wantResult: "none", wantWhy: "no DMARC record for nothing.example"},
		{domain: "other.example", wantResult: "none"},
		{domain: "twice.example", wantResult: "permerror", wantWhy: "has 2 DMARC records"},
		{domain: "broken.example", wantResult: "permerror", wantWhy: `invalid p="maybe"`},
		{domain: "flaky.example", wantResult: "temperror", wantWhy: "server failure"},
		{domain: "sub.flakyorg.example", wantResult: "temperror"},
		{domain: "[192.0.2.1]", wantResult: "permerror", wantWhy: "address literal"},
		{domain: "", wantResult: "permerror", wantWhy: "empty domain"},
	}
	for _, tt := range tests {
		p, err := LookupDMARC(context.Background(), dns.lookup, tt.domain)
		if tt.wantResult != "" {
			var de *DMARCError
			if !errors.As(err, &de) || de.Result != tt.wantResult || !strings.Contains(de.Reason, tt.wantWhy) {
				t.Errorf("LookupDMARC(%q) = %+v, %v; want %s %q", tt.domain, p, err, tt.wantResult, tt.wantWhy)
			}
			continue
		}
		if err != nil || p.Domain != tt.found || p.OrgDomain != tt.org || p.Policy != tt.policy {
			t.Errorf("LookupDMARC(%q) = %+v, %v; want found at %s (org %s), policy %s", tt.domain, p, err, tt.found, tt.org, tt.policy)
		}
	}
}

func TestOrganizationalDomain(t *testing.T) {
	tests := map[string]string{
		"example.com":            "example.com",
		"Mail.Example.COM.":      "example.com",
		"a.b.c.example.co.uk":    "example.co.uk",
		"example.co.uk":          "example.co.uk",
		"co.uk":                  "co.uk",
		"com":                    "com",
		"mail.bücher.de":         "xn--bcher-kva.de",
		"user.github.io":         "user.github.io",
		"deep.user.github.io":    "user.github.io",
		"mx.unknown-tld-example": "mx.unknown-tld-example",
	}
	for in, want := range tests {
		if got, err := OrganizationalDomain(in); err != nil || got != want {
			t.Errorf("OrganizationalDomain(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "[192.0.2.1]", "a..b"} {
		if got, err := OrganizationalDomain(bad); err == nil {
			t.Errorf("OrganizationalDomain(%q) = %q, want an error", bad, got)
		}
	}
}

func TestAligned(t *testing.T) {
	tests := []struct {
		a, b            string
		relaxed, strict bool
	}{
		{"example.com", "example.com", true, true},
		{"Example.COM.", "example.com", true, true},
		{"mail.example.com", "example.com", true, false},
		{"mail.example.com", "news.example.com", true, false},
		{"example.com", "example.org", false, false},
		{"example.co.uk", "other.co.uk", false, false},
		{"a.github.io", "b.github.io", false, false},
		{"mail.bücher.de", "xn--bcher-kva.de", true, false},
	}
	for _, tt := range tests {
		if got, err := Aligned(tt.a, tt.b, false); err != nil || got != tt.relaxed {
			t.Errorf("Aligned(%q, %q, relaxed) = %v, %v", tt.a, tt.b, got, err)
		}
		if got, err := Aligned(tt.a, tt.b, true); err != nil || got != tt.strict {
			t.Errorf("Aligned(%q, %q, strict) = %v, %v", tt.a, tt.b, got, err)
		}
	}
	if _, err := Aligned("example.com", "", false); err == nil {
		t.Error("Aligned with an empty domain: no error")
	}
}
