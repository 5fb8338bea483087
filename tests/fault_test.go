package tests

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/store/storetest"
)

// faultRouter is a router for fault tests: applications post as sender "app", whose
// transactions go out through the gateway to the sink (the internet) with retries; SMTP
// clients come through the gateway as sender "smtp", whose transactions the exploder
// stores and forwards as "app" transactions (msa: a 250 means stored, not delivered).
// Arguments: REST port, storage URL, gateway REST port, sink port, session refresh interval.
const faultRouter = `
rest_listener: {addr: [127.0.0.1, %[1]d], session_uri: "http://127.0.0.1:%[1]d"}
storage: {url: "%[2]s", session_refresh_interval: %[5]v}
rest_endpoint:
  - {name: gateway, endpoint: "http://127.0.0.1:%[3]d", sender: router, tag: outbound}
sender:
  - {name: app, output_chain: out, retry: output_chain}
  - {name: smtp, output_chain: msa, upstream_sender: app}
endpoint:
  - name: msa
    # A client gone mid-transaction (its cancel lost in an outage) holds it no longer.
    output_handler: {downstream_timeout: 3}
    chain:
      - {filter: exploder, msa: true, rcpt_timeout: 5, data_timeout: 5}
  - name: out
    output_handler:
      # An exploder's child whose parent failed waits for the body no longer.
      downstream_timeout: 5
      retry_params: {max_attempts: 50, min_attempt_time: 0.3, max_attempt_time: 1, backoff_factor: 1.5}
    chain:
      - filter: router
        policy: {name: address_list, destination: {endpoint: gateway, host_list: [{host: 127.0.0.1, port: %[4]d}]}}
      - {filter: rest_output, rcpt_timeout: 5, data_timeout: 3}
`

// faultGateway sends the routers' mail out (REST listener on restPort), giving up on a next
// hop after 2 s, and takes SMTP on one port per router (mx), passing it to that router's
// "smtp" sender (routers: each router's base URL, in the same order).
func faultGateway(restPort int, mx []int, routers []string) string {
	cfg := fmt.Sprintf(`
rest_listener: {addr: [127.0.0.1, %d], session_uri: "http://127.0.0.1:%[1]d"}
smtp_output:
  hosts:
    outbound: {ehlo_host: fault.test, timeout: 2, reuse_idle: 1}
`, restPort)
	if len(mx) == 0 {
		return cfg
	}
	cfg += "smtp_listener:\n  services:\n"
	for i, port := range mx {
		cfg += fmt.Sprintf("    - {addr: [127.0.0.1, %d], endpoint: router%d, sender: smtp, max_connections: 2000, max_connections_per_ip: 2000}\n", port, i)
	}
	cfg += "rest_output:\n"
	for i, url := range routers {
		cfg += fmt.Sprintf("  - {name: router%d, endpoint: \"%s/senders/smtp/transactions\", rcpt_timeout: 10, data_timeout: 10}\n", i, url)
	}
	return cfg
}

// faultPair is one router and one gateway of a fault test, running from dir: the router
// (on storage, refreshing its session every refresh seconds) sends out through the
// gateway to sink; with mx, the gateway also takes SMTP on mxPort for the router.
type faultPair struct {
	url, gwURL string
	mxPort     int
	router, gw *server
}

func startFaultPair(t *testing.T, dir, storage string, sink *sink, refresh float64, mx bool) faultPair {
	t.Helper()
	ports := distinctPorts(t, 3)
	routerPort, gwPort := ports[0], ports[1]
	p := faultPair{url: fmt.Sprintf("http://127.0.0.1:%d", routerPort), gwURL: fmt.Sprintf("http://127.0.0.1:%d", gwPort)}
	writeFile(t, filepath.Join(dir, "router.yaml"), fmt.Appendf(nil, faultRouter, routerPort, storage, gwPort, sink.port, refresh))
	p.router = startServer(t, dir, p.url+"/healthz", "router", "--config", "router.yaml")
	var mxPorts []int
	var routers []string
	if mx {
		p.mxPort, mxPorts, routers = ports[2], []int{ports[2]}, []string{p.url}
	}
	writeFile(t, filepath.Join(dir, "gateway.yaml"), []byte(faultGateway(gwPort, mxPorts, routers)))
	p.gw = startServer(t, dir, p.gwURL+"/healthz", "gateway", "--config", "gateway.yaml")
	if mx {
		if err := waitPort(p.mxPort, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// steadyLoad keeps two REST clients and two SMTP clients sending to p until stop closes.
func steadyLoad(l *ledger, stop <-chan struct{}, p faultPair) (wait func()) {
	return load(l, stop, map[string]sender{
		"rest.a": viaREST(p.url + "/senders/app/transactions"), "rest.b": viaREST(p.url + "/senders/app/transactions"),
		"smtp.a": viaSMTP(p.mxPort), "smtp.b": viaSMTP(p.mxPort),
	})
}

// kill -9 of one of two routers on one PostgreSQL while applications keep posting to both
// and SMTP clients keep sending through the gateway to both: every message a router
// acknowledged (201, or 250 through the gateway) is delivered, the survivor takes the dead
// one's work over within the session timeout, and the only duplicates are messages of the
// dead router that the sink had accepted while it died. It prints the ledger.
func TestFaultKillOneOfTwoRouters(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	sink := startSink(t)
	dir := t.TempDir()
	ports := distinctPorts(t, 5)
	gwPort, mx := ports[0], ports[1:3]
	const refresh = 0.2 // s; the session timeout is 10 intervals
	sessionTTL := time.Duration(10 * refresh * float64(time.Second))
	var routers [2]*server
	var urls [2]string
	for i := range routers {
		port := ports[3+i]
		name := fmt.Sprintf("router%d.yaml", i)
		writeFile(t, filepath.Join(dir, name), fmt.Appendf(nil, faultRouter, port, dsn, gwPort, sink.port, refresh))
		urls[i] = fmt.Sprintf("http://127.0.0.1:%d", port)
		routers[i] = startServer(t, dir, urls[i]+"/healthz", "router", "--config", name)
	}
	writeFile(t, filepath.Join(dir, "gateway.yaml"), []byte(faultGateway(gwPort, mx, urls[:])))
	gw := startServer(t, dir, fmt.Sprintf("http://127.0.0.1:%d/healthz", gwPort), "gateway", "--config", "gateway.yaml")
	for _, p := range mx {
		if err := waitPort(p, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	// Deliveries take a while, so that the killed router has some under way.
	sink.setLatency(300 * time.Millisecond)
	l := &ledger{}
	senders := map[string]sender{}
	for r := range routers {
		// Two of each kind of client per router; the name says whose its messages are.
		for _, c := range []string{"a", "b"} {
			senders[fmt.Sprintf("r%d.rest.%s", r, c)] = viaREST(urls[r] + "/senders/app/transactions")
			senders[fmt.Sprintf("r%d.smtp.%s", r, c)] = viaSMTP(mx[r])
		}
	}
	owner := func(id string) int { return int(id[1] - '0') }
	stop := make(chan struct{})
	wait := load(l, stop, senders)
	time.Sleep(1500 * time.Millisecond)
	routers[0].cmd.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	routers[0].cmd.Wait()
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wait()

	// Wait for the survivor to finish the dead router's work too, duplicates included.
	drain(t, urls[1]+"/metrics", sink, 30*time.Second)
	r := l.settle(t, sink, 10*time.Second)
	if t.Failed() {
		t.Fatal(logsOf(routers[1], gw))
	}
	// The survivor cannot take the dead router's work over before the session timeout
	// (counted from the dead router's last refresh, before the kill): copies that arrived
	// earlier are what the gateway finished sending for the dead router, later ones the
	// survivor's. A duplicate is a message of the dead router that the sink had accepted
	// before the router could record it, and that the survivor sent again.
	grace := killed.Add(sessionTTL)
	var first, last time.Duration
	taken, dupes := 0, 0
	for id, at := range r.copies {
		if len(at) > 1 {
			dupes++
			switch {
			case owner(id) != 0:
				t.Errorf("%s of the surviving router was delivered %d times", id, len(at))
			case at[0].After(grace):
				t.Errorf("%s was first delivered %v after the kill, and again later", id, at[0].Sub(killed))
			}
		}
		if owner(id) == 0 && at[len(at)-1].After(grace) {
			d := at[len(at)-1].Sub(killed)
			if taken == 0 || d < first {
				first = d
			}
			last = max(last, d)
			taken++
		}
	}
	t.Logf("takeover: the survivor delivered %d messages of the killed router, %v to %v after the kill (session timeout %v); %d duplicates",
		taken, first.Round(time.Millisecond), last.Round(time.Millisecond), sessionTTL, dupes)
	if taken == 0 {
		t.Errorf("the killed router had nothing under way: the test proves nothing")
	}
	if last > sessionTTL+10*time.Second {
		t.Errorf("the survivor took %v to deliver the dead router's work (session timeout %v)", last, sessionTTL)
	}
}
