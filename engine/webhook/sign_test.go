package webhook

import (
	"errors"
	"testing"
	"time"
)

// The signature is HMAC-SHA256 over timestamp "." body; the expected value was computed
// with openssl dgst -sha256 -hmac.
func TestSign(t *testing.T) {
	got := Sign([]byte("topsecret"), "1700000000", []byte(`{"id":"evt"}`))
	if want := "sha256=b4859d7fc247540b261b47213ae3157990097e49ed7afdd3b6da505d1fa32192"; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	secret, body, ts := []byte("topsecret"), []byte(`{"id":"evt"}`), "1700000000"
	sig := Sign(secret, ts, body)
	now := time.Unix(1700000000, 0).Add(time.Minute)
	for _, c := range []struct {
		name         string
		secret, body []byte
		ts, sig      string
		now          time.Time
		want         error
	}{
		{name: "good", secret: secret, body: body, ts: ts, sig: sig, now: now},
		{name: "other body", secret: secret, body: []byte(`{"id":"evu"}`), ts: ts, sig: sig, now: now, want: ErrBadSignature},
		{name: "other secret", secret: []byte("topsecres"), body: body, ts: ts, sig: sig, now: now, want: ErrBadSignature},
		{name: "other timestamp", secret: secret, body: body, ts: "1700000001", sig: sig, now: now, want: ErrBadSignature},
		{name: "no prefix", secret: secret, body: body, ts: ts, sig: sig[len("sha256="):], now: now, want: ErrBadSignature},
		{name: "not hex", secret: secret, body: body, ts: ts, sig: "sha256=zz", now: now, want: ErrBadSignature},
		{name: "empty", secret: secret, body: body, ts: ts, now: now, want: ErrBadSignature},
		{name: "too old", secret: secret, body: body, ts: ts, sig: sig, now: now.Add(10 * time.Minute), want: ErrStale},
		{name: "from the future", secret: secret, body: body, ts: ts, sig: sig, now: now.Add(-10 * time.Minute), want: ErrStale},
	} {
		if err := Verify(c.secret, c.ts, c.body, c.sig, c.now, 5*time.Minute); !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestNewReply(t *testing.T) {
	for _, c := range []struct {
		code          int
		msg           string
		enhanced, txt string
	}{
		{250, "2.0.0 ok", "2.0.0", "ok"},
		{450, "4.2.1 mailbox busy", "4.2.1", "mailbox busy"},
		{550, "5.1.1 no such user", "5.1.1", "no such user"},
		{550, "4.1.1 wrong class", "", "4.1.1 wrong class"},
		{250, "ok", "", "ok"},
		{554, "5.7.1000 too long", "", "5.7.1000 too long"},
		{250, "2.0.0", "2.0.0", ""},
	} {
		r := NewReply(c.code, c.msg)
		if r.Code != c.code || r.EnhancedCode != c.enhanced || r.Message != c.txt {
			t.Errorf("NewReply(%d, %q) = %+v, want %q %q", c.code, c.msg, r, c.enhanced, c.txt)
		}
	}
}
