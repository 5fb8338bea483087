package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The next hop misbehaves on the first connections of each message: it stalls after its
// greeting, stalls after taking the whole message, resets the connection in the middle of
// the message, or answers every command slowly. Each time the deadline for the phase fires,
// the router retries no sooner than its backoff says, and the message is delivered once the
// next hop behaves; and neither the router nor the gateway keeps a goroutine or a connection
// from it. It prints what it measured.
func TestFaultUpstreamMisbehaves(t *testing.T) {
	if testing.Short() {
		t.Skip("about 30 s of timeouts and retries")
	}
	sink := startSink(t)
	dir := t.TempDir()
	p := startFaultPair(t, dir, "sqlite:///router.db", sink, 1, false)
	router, gw, url, gwURL := p.router, p.gw, p.url, p.gwURL
	// What gives up on each fault: the gateway's deadline for the MAIL phase as a whole
	// (smtp_output.hosts.outbound.timeout) on a stall after the greeting and on slow
	// answers; on a stall after the message, the router's rest_output data_timeout, upon
	// which the gateway drops the connection.
	const timeout, dataTimeout = 2 * time.Second, 3 * time.Second
	deadline := map[fault]time.Duration{stallGreeting: timeout, slow: timeout, stallData: dataTimeout}
	const minRetry = 300 * time.Millisecond

	l := &ledger{}
	send := viaREST(url + "/senders/app/transactions")
	deliver := func(id string) time.Time {
		t.Helper()
		at := time.Now()
		if ack, answer := l.send(id, send); !ack {
			t.Fatalf("%s: %s", id, answer)
		}
		for deadline := time.Now().Add(40 * time.Second); len(sink.delivered()[id]) == 0; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s was not delivered\n%s", id, logsOf(router, gw))
			}
		}
		return at
	}
	// Warm up, so that what is counted before is what a working pair holds, then let the
	// gateway's pooled connection go (reuse_idle 1 s).
	deliver("warmup")
	before := map[string]procStat{}
	if !sink.quiet(10 * time.Second) {
		t.Fatal("the gateway keeps its connection to the sink")
	}
	before["router"] = statOf(t, router.cmd.Process.Pid, url+"/metrics")
	before["gateway"] = statOf(t, gw.cmd.Process.Pid, gwURL+"/metrics")

	const faulty = 2 // connections per fault
	for _, f := range []fault{stallGreeting, stallData, reset, slow} {
		if !sink.quiet(10 * time.Second) {
			t.Fatalf("%v: the gateway keeps its connections to the sink", f)
		}
		first := len(sink.connections())
		sink.misbehaveNext(faulty, f)
		id := strings.ReplaceAll(f.String(), " ", "-")
		created := deliver(id)
		conns := sink.connections()[first:]
		var report []string
		var prevEnd time.Time
		for i, c := range conns {
			if i > faulty {
				t.Errorf("%v: %d connections, want %d", f, len(conns), faulty+1)
				break
			}
			if i > 0 {
				// The retry came no sooner than the policy allows: backoff_factor × age,
				// at least min_attempt_time, less 20% jitter.
				gap := c.opened.Sub(prevEnd)
				want := time.Duration(0.8 * float64(max(min(time.Duration(1.5*float64(prevEnd.Sub(created))), time.Second), minRetry)))
				report = append(report, fmt.Sprintf("retry after %v", gap.Round(10*time.Millisecond)))
				if gap < want-50*time.Millisecond {
					t.Errorf("%v: attempt %d came %v after the last one ended, sooner than the backoff (%v)", f, i+1, gap, want)
				}
			}
			if c.fault == behave {
				break
			}
			var fired time.Duration
			switch f {
			case stallGreeting, stallData:
				fired = c.ended.Sub(c.faulted)
			case slow:
				fired = c.ended.Sub(c.opened)
			case reset:
				fired = c.faulted.Sub(c.opened)
			}
			report = append(report, fmt.Sprintf("attempt %d dropped after %v", i+1, fired.Round(10*time.Millisecond)))
			if d := deadline[f]; c.ended.IsZero() && f != reset {
				t.Errorf("%v: the gateway never gave up on connection %d", f, i+1)
			} else if f != reset && (fired < d-200*time.Millisecond || fired > d+3*time.Second) {
				t.Errorf("%v: connection %d was dropped after %v; the deadline is %v", f, i+1, fired, d)
			}
			switch prevEnd = c.ended; f {
			case reset:
				prevEnd = c.faulted // the sink ended it
			case slow:
				// The gateway gave up then; the sink hears of it only at its next reply.
				prevEnd = c.opened.Add(timeout)
			}
		}
		t.Logf("%v: %v; delivered %v after it was posted", f, report, sink.delivered()[id][0].Sub(created).Round(10*time.Millisecond))
	}
	l.settle(t, sink, 10*time.Second)
	settles(t, "router", router.cmd.Process.Pid, url+"/metrics", before["router"], 5, 10*time.Second)
	settles(t, "gateway", gw.cmd.Process.Pid, gwURL+"/metrics", before["gateway"], 5, 10*time.Second)
	if t.Failed() {
		t.Log(logsOf(router, gw))
	}
}
