package tests

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/store/storetest"
)

const faultRouter = `
rest_listener: {addr: [127.0.0.1, %[1]d], session_uri: "http://127.0.0.1:%[1]d"}
storage: {url: "%[2]s", session_refresh_interval: 0.2}
rest_endpoint:
  - {name: gateway, endpoint: "http://127.0.0.1:%[3]d", sender: router, tag: outbound}
sender:
  - {name: app, output_chain: out, retry: output_chain}
endpoint:
  - name: out
    output_handler:
      retry_params: {max_attempts: 50, min_attempt_time: 0.3, max_attempt_time: 1, backoff_factor: 1.5}
    chain:
      - filter: router
        policy: {name: address_list, destination: {endpoint: gateway, host_list: [{host: 127.0.0.1, port: %[4]d}]}}
      - {filter: rest_output, rcpt_timeout: 5, data_timeout: 5}
`

const faultGateway = `
rest_listener: {addr: [127.0.0.1, %[1]d], session_uri: "http://127.0.0.1:%[1]d"}
smtp_output:
  hosts:
    outbound: {ehlo_host: fault.test}
`

// kill -9 of one of two routers on one PostgreSQL while applications keep posting to both:
// every transaction a router acknowledged (201) is delivered; duplicates only where the sink
// had the message when its router died. It prints the ledger.
func TestFaultKillOneOfTwoRouters(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	sinkPort, sinkDir := smtpSink(t)
	dir := t.TempDir()
	gwPort := freePort(t)
	os.WriteFile(filepath.Join(dir, "gateway.yaml"), fmt.Appendf(nil, faultGateway, gwPort), 0o644)
	gw := startServer(t, dir, fmt.Sprintf("http://127.0.0.1:%d/healthz", gwPort), "gateway", "--config", "gateway.yaml")
	var routers [2]*server
	var urls [2]string
	for i := range routers {
		port := freePort(t)
		name := fmt.Sprintf("router%d.yaml", i)
		os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, faultRouter, port, dsn, gwPort, sinkPort), 0o644)
		urls[i] = fmt.Sprintf("http://127.0.0.1:%d", port)
		routers[i] = startServer(t, dir, urls[i]+"/healthz", "router", "--config", name)
	}

	const perClient, clients = 40, 4
	var mu sync.Mutex
	acked := map[string]bool{}
	sent := 0
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perClient {
				id := fmt.Sprintf("c%d-m%d", c, i)
				url := urls[(c+i)%2] + "/senders/app/transactions"
				body := fmt.Sprintf(`{"mail_from":{"m":"app@example.com"},"rcpt_to":[{"m":"x@example.net"}],`+
					`"body":{"inline":"Message-ID: <%s@fault.test>\r\nSubject: %s\r\n\r\nhello\r\n"}}`, id, id)
				mu.Lock()
				sent++
				mu.Unlock()
				res, err := http.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					continue // the killed router: not acknowledged
				}
				res.Body.Close()
				if res.StatusCode == 201 {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	time.Sleep(600 * time.Millisecond)
	routers[0].cmd.Process.Signal(syscall.SIGKILL)
	routers[0].cmd.Wait()
	wg.Wait()

	msgID := regexp.MustCompile(`Message-ID: <([^@]+)@fault\.test>`)
	var delivered map[string]int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		delivered = map[string]int{}
		for _, m := range sunk(sinkDir) {
			if id := msgID.FindStringSubmatch(m); id != nil {
				delivered[id[1]]++
			}
		}
		lost := 0
		for id := range acked {
			if delivered[id] == 0 {
				lost++
			}
		}
		if lost == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%d acknowledged transactions were never delivered\nsurvivor:\n%s\ngateway:\n%s", lost, routers[1].out, gw.out)
			break
		}
	}
	duplicated, lost := 0, 0
	for id, n := range delivered {
		if n > 1 {
			duplicated += n - 1
		}
		if !acked[id] {
			t.Logf("%s was delivered without being acknowledged (its router died before answering)", id)
		}
	}
	for id := range acked {
		if delivered[id] == 0 {
			lost++
		}
	}
	t.Logf("ledger: sent %d, acknowledged %d, delivered %d distinct, duplicated %d, lost %d", sent, len(acked), len(delivered), duplicated, lost)
	if lost != 0 {
		t.Errorf("lost %d acknowledged transactions", lost)
	}
}
