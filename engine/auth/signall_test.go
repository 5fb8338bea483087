package auth

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestSignAll(t *testing.T) {
	msg := readTestdata(t, "multipart.msg")
	ed, rsaKey := testEd25519Key(), testRSAKey(t)
	newSigner := func(o SignOptions) *Signer {
		t.Helper()
		s, err := NewSigner(o)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	signers := []*Signer{
		newSigner(SignOptions{Domain: "example.com", Selector: "ed", Key: ed}),
		newSigner(SignOptions{Domain: "example.com", Selector: "rsa", Key: rsaKey, Canonicalization: "simple/simple"}),
		newSigner(SignOptions{Domain: "example.org", Selector: "rsa", Key: rsaKey, Canonicalization: "Relaxed"}),
	}
	sigs, err := SignAll(strings.NewReader(msg), signers...)
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 3 {
		t.Fatalf("got %d signatures", len(sigs))
	}
	for i, want := range []struct{ d, s, a, c string }{
		{"example.com", "ed", "ed25519-sha256", "relaxed/relaxed"},
		{"example.com", "rsa", "rsa-sha256", "simple/simple"},
		{"example.org", "rsa", "rsa-sha256", "relaxed/simple"},
	} {
		sig := sigs[i]
		if got := [4]string{tagValue(sig, "d"), tagValue(sig, "s"), tagValue(sig, "a"), tagValue(sig, "c")}; got != [4]string{want.d, want.s, want.a, want.c} {
			t.Errorf("signature %d has d,s,a,c = %v, want %+v", i, got, want)
		}
	}
	dns := txtMap{
		"ed._domainkey.example.com":  {keyRecord(t, ed)},
		"rsa._domainkey.example.com": {keyRecord(t, rsaKey)},
		"rsa._domainkey.example.org": {keyRecord(t, rsaKey)},
	}
	// In any order on top of the message, every signature verifies.
	signed := sigs[2] + sigs[0] + sigs[1] + msg
	res := verify(t, signed, dns.lookup)
	if len(res) != 3 {
		t.Fatalf("Verify = %+v", res)
	}
	for _, r := range res {
		if r.Result != "pass" {
			t.Errorf("%s/%s: %s (%s)", r.Domain, r.Selector, r.Result, r.Reason)
		}
	}
	// One signature alone is what Sign makes.
	one, err := signers[0].Sign(strings.NewReader(msg))
	if err != nil || verify(t, one+msg, dns.lookup)[0].Result != "pass" {
		t.Errorf("Sign: %v", err)
	}

	if _, err := SignAll(strings.NewReader(msg)); err == nil {
		t.Error("SignAll without signers: no error")
	}
	if _, err := SignAll(strings.NewReader("Subject: x\r\n\r\nbody\r\n"), signers...); err == nil || !strings.Contains(err.Error(), "no From") {
		t.Errorf("SignAll of a message without From: %v", err)
	}
	for _, c := range []string{"loose", "relaxed/loose", "relaxed/simple/simple"} {
		if _, err := NewSigner(SignOptions{Domain: "example.com", Selector: "s", Key: ed, Canonicalization: c}); err == nil || !strings.Contains(err.Error(), "canonicalization") {
			t.Errorf("canonicalization %q: error %v", c, err)
		}
	}
}

func TestVerifyTags(t *testing.T) {
	key := testEd25519Key()
	msg := readTestdata(t, "trivial.msg")
	sig := mustSign(t, msg, SignOptions{Domain: "example.com", Selector: "sel", Key: key, Canonicalization: "simple/relaxed"})
	dns := txtMap{"sel._domainkey.example.com": {keyRecord(t, key)}}
	res, tags, err := VerifyTags(context.Background(), strings.NewReader(sig+"DKIM-Signature: v=1; d=broken\r\n"+msg), dns.lookup)
	if err != nil || len(res) != 2 || len(tags) != 2 {
		t.Fatalf("VerifyTags = %+v, %v, %v", res, tags, err)
	}
	if res[0].Result != "pass" || tags[0]["c"] != "simple/relaxed" || tags[0]["h"] != "From:From:Subject:Date:Message-ID" ||
		tags[0]["d"] != "example.com" || tags[0]["b"] != "" || tags[0]["bh"] != "" {
		t.Errorf("first: %+v %v", res[0], tags[0])
	}
	if _, ok := tags[0]["b"]; ok {
		t.Error("b= is among the tags")
	}
	if res[1].Result != "permerror" || !reflect.DeepEqual(tags[1], map[string]string{"v": "1", "d": "broken"}) {
		t.Errorf("second: %+v %v", res[1], tags[1])
	}
}
