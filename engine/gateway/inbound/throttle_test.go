package inbound

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/rest/resttest"
)

func TestAuthThrottleUnits(t *testing.T) {
	t.Parallel()
	now := time.Unix(1e9, 0)
	th := newAuthThrottle(3, time.Minute, 100*time.Millisecond)
	th.now = func() time.Time { return now }

	for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		if th.blocked("192.0.2.1") {
			t.Fatalf("blocked after %d failures", i)
		}
		if n, d := th.failed("192.0.2.1"); n != i+1 || d != want {
			t.Errorf("failure %d: count %d, wait %v; want %d, %v", i+1, n, d, i+1, want)
		}
		now = now.Add(50 * time.Second) // each within the window of the last
	}
	if !th.blocked("192.0.2.1") || !th.blocked("::ffff:192.0.2.1") {
		t.Error("not blocked after 3 failures")
	}
	if th.blocked("192.0.2.2") {
		t.Error("a neighbour is blocked")
	}
	now = now.Add(9 * time.Second) // 59 s after the last failure
	if !th.blocked("192.0.2.1") {
		t.Error("unblocked within the window")
	}
	now = now.Add(time.Second)
	if th.blocked("192.0.2.1") {
		t.Error("still blocked a window after the last failure")
	}
	if n, _ := th.failed("192.0.2.1"); n != 1 {
		t.Errorf("the count after a quiet window is %d, want 1", n)
	}

	// An IPv6 client counts as its /64.
	th.failed("2001:db8:1:2::1")
	th.failed("2001:db8:1:2:ffff::2")
	th.failed("2001:db8:1:2:abcd::3")
	if !th.blocked("2001:db8:1:2::99") || th.blocked("2001:db8:1:3::1") {
		t.Error("IPv6 /64s are not counted together")
	}

	// The wait doubles up to maxAuthDelay.
	slow := newAuthThrottle(100, time.Hour, 10*time.Second)
	var d time.Duration
	for range 10 {
		_, d = slow.failed("192.0.2.9")
	}
	if d != maxAuthDelay {
		t.Errorf("wait after 10 failures %v, want %v", d, maxAuthDelay)
	}

	// Memory is bounded, expired entries going first.
	big := newAuthThrottle(5, time.Minute, 0)
	big.now = func() time.Time { return now }
	for i := range maxThrottled {
		big.failed(fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255))
	}
	now = now.Add(2 * time.Minute)
	big.failed("192.0.2.200")
	if len(big.entries) != 1 {
		t.Errorf("%d entries after the others expired, want 1", len(big.entries))
	}
	for i := range maxThrottled + 100 {
		big.failed(fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255))
	}
	if len(big.entries) > maxThrottled {
		t.Errorf("%d entries, over %d", len(big.entries), maxThrottled)
	}

	off := newAuthThrottle(0, time.Minute, time.Second)
	if n, d := off.failed("192.0.2.1"); off != nil || n != 0 || d != 0 || off.blocked("192.0.2.1") {
		t.Error("max 0 still throttles")
	}
}

// Failed AUTH replies wait longer each time; past the limit AUTH is refused with 454 4.7.0
// and the connection closed, on a new connection too, even with the right secret; the log
// names the address and never the secret.
func TestAuthThrottle(t *testing.T) {
	t.Parallel()
	e := start(t, Options{AuthSecrets: writeSecrets(t), AllowInsecureAuth: true,
		MaxAuthFailures: 3, AuthFailureWindow: time.Minute, AuthFailureDelay: 50 * time.Millisecond}, resttest.Options{})
	plain := func(user, secret string) string {
		return "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+secret))
	}
	r := e.dialRaw()
	r.expect("220 ")
	r.cmd("EHLO client.test", "250")
	for i, least := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond} {
		started := time.Now()
		r.cmd(plain("machine", fmt.Sprintf("guess %d", i)), "535 5.7.8")
		if took := time.Since(started); took < least {
			t.Errorf("failure %d answered after %v, want at least %v", i+1, took, least)
		}
	}
	r.cmd(plain("machine", testSecrets["machine"]), "454 4.7.0")
	r.closed()

	r = e.dialRaw()
	r.expect("220 ")
	r.cmd("EHLO client.test", "250")
	r.cmd("AUTH LOGIN", "454 4.7.0 Too many failed authentication attempts")
	r.closed()

	logs := e.logs.String()
	if !strings.Contains(logs, "too many failed AUTH attempts") || !strings.Contains(logs, "ip=127.0.0.1") {
		t.Errorf("no log line with the address:\n%s", logs)
	}
	if strings.Contains(logs, "guess") || strings.Contains(logs, testSecrets["machine"]) {
		t.Errorf("a secret is in the log:\n%s", logs)
	}
}
