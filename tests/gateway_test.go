package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/rest/resttest"
)

// mta is a router and a gateway, as separate processes on loopback: mail from SMTP for
// example.com goes through the exploder to the receiver (an application); mail posted by
// the application as sender "app" goes out through the gateway to the "internet" port.
type mta struct {
	dir                  string
	router, gateway      *server
	routerURL            string
	mxPort, internetPort int
	recv                 *resttest.Receiver
}

const mtaRouter = `
rest_listener: {addr: [127.0.0.1, %[1]d], session_uri: "http://127.0.0.1:%[1]d"}
storage: {url: "sqlite:///router.db"}
rest_endpoint:
  - {name: gateway, endpoint: "http://127.0.0.1:%[2]d", sender: router, tag: outbound}
  - {name: app, endpoint: "%[3]s", sender: inbound}
sender:
  - {name: ingress, output_chain: ingress, upstream_sender: deliver}
  - {name: deliver, output_chain: deliver}
  - {name: app, output_chain: outbound}
endpoint:
  - name: ingress
    chain:
      - {filter: router, dry_run: true, policy: {name: address_list, domains: [example.com], destination: {endpoint: app}}}
      - {filter: router, dry_run: true}
      - {filter: exploder, msa: false}
  - name: deliver
    chain:
      - {filter: received_header, received_hostname: mx.test}
      - {filter: router, policy: {name: address_list, domains: [example.com], destination: {endpoint: app}}}
      - {filter: rest_output}
  - name: outbound
    chain:
      - {filter: router, policy: {name: dest_domain, dest_port: %[4]d, destination: {endpoint: gateway}}}
      - {filter: dns_resolution, static_hosts: [{host: 127.0.0.1, port: %[4]d}]}
      - {filter: rest_output}
`

const mtaGateway = `
rest_listener: {addr: [127.0.0.1, %[1]d], session_uri: "http://127.0.0.1:%[1]d"}
smtp_output:
  hosts:
    outbound: {ehlo_host: gw.test}
smtp_listener:
  services:
    - addr: [127.0.0.1, %[2]d]
      endpoint: router
      sender: ingress
rest_output:
  - {name: router, endpoint: "http://127.0.0.1:%[3]d/senders/ingress/transactions"}
`

// startMTA runs the router and the gateway; internetPort is where outbound mail goes.
func startMTA(t *testing.T, internetPort int) *mta {
	t.Helper()
	m := &mta{dir: t.TempDir(), mxPort: freePort(t), internetPort: internetPort,
		recv: resttest.NewReceiver(resttest.Options{})}
	t.Cleanup(m.recv.Close)
	routerPort, gwPort := freePort(t), freePort(t)
	m.routerURL = fmt.Sprintf("http://127.0.0.1:%d", routerPort)
	os.WriteFile(filepath.Join(m.dir, "router.yaml"), fmt.Appendf(nil, mtaRouter, routerPort, gwPort, m.recv.URL(), internetPort), 0o644)
	os.WriteFile(filepath.Join(m.dir, "gateway.yaml"), fmt.Appendf(nil, mtaGateway, gwPort, m.mxPort, routerPort), 0o644)
	m.router = startServer(t, m.dir, m.routerURL+"/openapi.json", "router", "--config", "router.yaml")
	m.gateway = startServer(t, m.dir, fmt.Sprintf("http://127.0.0.1:%d/transactions/none", gwPort), "gateway", "--config", "gateway.yaml")
	return m
}

func (m *mta) logs() string {
	return "router:\n" + m.router.out.String() + "\ngateway:\n" + m.gateway.out.String()
}

func swaks(t *testing.T, port int, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("swaks"); err != nil {
		t.Skip("swaks is not installed")
	}
	out, _ := exec.Command("swaks", append([]string{"--server", "127.0.0.1", "--port", fmt.Sprint(port)}, args...)...).CombinedOutput()
	return string(out)
}

// accepted reports whether a swaks transcript ends with the message accepted.
func accepted(transcript string) bool {
	return !strings.Contains(transcript, "<** ") && strings.Contains(transcript, "-> .") &&
		strings.Contains(transcript[strings.LastIndex(transcript, "-> ."):], "  250 ")
}

// An SMTP client delivers to the MX port: the router routes the recipient to the
// application, and an unknown recipient is refused at RCPT.
func TestGatewayInbound(t *testing.T) {
	m := startMTA(t, freePort(t))
	out := swaks(t, m.mxPort, "--from", "alice@example.org", "--to", "bob@example.com", "--header", "Subject: inbound", "--body", "hello inbound")
	if !accepted(out) {
		t.Fatalf("swaks:\n%s\n%s", out, m.logs())
	}
	got, err := m.recv.WaitFor(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	body := string(got[0].Body)
	if !strings.Contains(body, "hello inbound") || !strings.Contains(body, "Received: from ") || got[0].Tx.RcptTo[0].Address != "bob@example.com" {
		t.Errorf("the application got %+v\n%s", got[0].Tx, body)
	}
	out = swaks(t, m.mxPort, "--from", "alice@example.org", "--to", "nobody@elsewhere.example")
	if !strings.Contains(out, "<** 550 5.1.1") {
		t.Errorf("unknown recipient:\n%s", out)
	}
}

// The application posts a message; the router sends it out through the gateway to the
// internet's SMTP server (Postfix's smtp-sink).
func TestGatewayOutbound(t *testing.T) {
	sinkPort, sinkDir := smtpSink(t)
	m := startMTA(t, sinkPort)
	res, body := request(t, "POST", m.routerURL+"/senders/app/transactions",
		`{"mail_from":{"m":"app@example.com"},"rcpt_to":[{"m":"carol@example.net"}],"body":{"inline":"Subject: out\r\n\r\nhello outbound\r\n"}}`,
		"Content-Type", "application/json")
	if res.StatusCode != 201 {
		t.Fatalf("create: %d %s", res.StatusCode, body)
	}
	loc := res.Header.Get("Location")
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, body = request(t, "GET", loc, "")
		if strings.Contains(body, `"data_response"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not final: %s\n%s", body, m.logs())
		}
	}
	if !strings.Contains(body, `"data_response":{"code":250`) {
		t.Errorf("final state %s\n%s", body, m.logs())
	}
	msgs := sunk(sinkDir)
	if len(msgs) != 1 || !strings.Contains(msgs[0], "hello outbound") {
		t.Errorf("the sink got %q", msgs)
	}
}

// Postfix on both sides: as the client relaying to our MX port, and as the server our
// gateway delivers to (relaying on to smtp-sink).
func TestGatewayWithPostfix(t *testing.T) {
	sinkPort, sinkDir := smtpSink(t)
	upstream := startPostfix(t, fmt.Sprintf("127.0.0.1:%d", sinkPort))
	m := startMTA(t, upstream.port)
	downstream := startPostfix(t, fmt.Sprintf("127.0.0.1:%d", m.mxPort))

	out := swaks(t, downstream.port, "--from", "dave@example.org", "--to", "bob@example.com", "--body", "via postfix")
	if !accepted(out) {
		t.Fatalf("swaks to postfix:\n%s", out)
	}
	got, err := m.recv.WaitFor(t.Context(), 1)
	if err != nil {
		t.Fatalf("%v\npostfix:\n%s\n%s", err, downstream.log(), m.logs())
	}
	if !strings.Contains(string(got[0].Body), "via postfix") {
		t.Errorf("the application got %q", got[0].Body)
	}

	res, body := request(t, "POST", m.routerURL+"/senders/app/transactions",
		`{"mail_from":{"m":"app@example.com"},"rcpt_to":[{"m":"erin@example.net"}],"body":{"inline":"Subject: out\r\n\r\nto postfix\r\n"}}`,
		"Content-Type", "application/json")
	if res.StatusCode != 201 {
		t.Fatalf("create: %d %s", res.StatusCode, body)
	}
	for deadline := time.Now().Add(20 * time.Second); len(sunk(sinkDir)) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("nothing reached the sink through postfix:\n%s\n%s", upstream.log(), m.logs())
		}
	}
	if m := sunk(sinkDir)[0]; !strings.Contains(m, "to postfix") {
		t.Errorf("sink got %q", m)
	}
}
