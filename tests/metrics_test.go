package tests

import (
	"fmt"
	"io"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// scrape reads every sample at a /metrics URL, keyed as the text format prints it:
// name{label="value",...}, labels in name order.
func scrape(t *testing.T, url string) map[string]string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, b)
	}
	out := map[string]string{}
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" && line[0] != '#' {
			i := strings.LastIndexByte(line, ' ')
			out[line[:i]] = line[i+1:]
		}
	}
	return out
}

// A known mix of mail through `koukan serve`, over REST and SMTP: delivered, failed for good,
// failed for now until the retries run out, refused at RCPT (temporarily and for good), and
// held by a suspended domain. Once nothing is under way, /metrics counts exactly that.
func TestMetricsAfterMixedTraffic(t *testing.T) {
	eachBackend(t, func(t *testing.T, storage string) {
		e := startE2E(t, storage, e2eOptions{
			internet: func(stage, rcpt string, attempt int) *smtp.SMTPError {
				switch {
				case rcpt == "nobody@bounce.test" && stage == "rcpt":
					return smtpErr(550, "5.1.1", "no such user here")
				case rcpt == "later@remote.test" && stage == "rcpt":
					return smtpErr(451, "4.3.0", "try again later")
				}
				return nil
			},
			mailbox: func(stage, rcpt string, attempt int) *smtp.SMTPError {
				switch {
				case rcpt == "bob+busy@example.com" && stage == "rcpt":
					return smtpErr(451, "4.2.1", "mailbox busy")
				case rcpt == "bob+gone@example.com" && stage == "rcpt":
					return smtpErr(550, "5.1.1", "mailbox gone")
				}
				return nil
			},
		})
		if res, body := request(t, "POST", e.api+"/admin/domains/held.test/suspend", ""); res.StatusCode != 200 {
			e.fatalf("suspend: %d %s", res.StatusCode, body)
		}

		// REST, from the null path so that failures send no DSN (each would be more mail).
		post := func(rcpt string) string {
			return e.post("submission", `{"mail_from":{"m":""},"rcpt_to":[{"m":"`+rcpt+`"}],"body":{"inline":"From: app@example.com\r\nTo: `+
				rcpt+`\r\nSubject: metrics\r\nDate: Wed, 06 Mar 2024 10:42:31 -0800\r\nMessage-ID: <metrics@example.com>\r\n\r\nhello\r\n"}}`)
		}
		good, perm, later := post("good@remote.test"), post("nobody@bounce.test"), post("later@remote.test")
		post("one@held.test")
		post("two@held.test")
		for url, want := range map[string]string{good: "upstream response success", perm: "upstream rcpt_response permfail", later: "retry policy max attempts"} {
			if got, raw := e.waitFinal(url); got.FinalAttemptReason != want {
				e.fatalf("%s: %s, want %s", url, raw, want)
			}
		}

		// SMTP: delivered on the MX port (to the mail store, past its dead first host) and
		// the submission port (to the internet); refused at RCPT by the mail store, for now
		// and for good, on the MX port.
		if out := e.mxSwaks("--from", "a@example.org", "--to", "bob@example.com"); !sent(out) {
			e.fatalf("MX:\n%s", out)
		}
		if out := e.subSwaks("--from", "alice@example.com", "--to", "good2@remote.test"); !sent(out) {
			e.fatalf("submission:\n%s", out)
		}
		for rcpt, want := range map[string]string{"bob+busy@example.com": "451 4.2.1", "bob+gone@example.com": "550 5.1.1"} {
			if r := replyTo(e.mxSwaks("--from", "a@example.org", "--to", rcpt), "RCPT TO:<"+rcpt+">"); !strings.HasPrefix(r, want) {
				e.fatalf("RCPT %s: %q, want %s", rcpt, r, want)
			}
		}
		e.waitDeliveries(e.mailbox, "bob@example.com", 1)
		e.waitDeliveries(e.internet, "good2@remote.test", 1)

		want := map[string]int{
			// Every transaction: submission's 5 posts, its SMTP transaction and that one's
			// exploder child; ingress's 3 SMTP transactions and their 3 children (the null
			// reverse path makes no DSNs). All but the 2 held ones are finished below.
			`koukan_transactions_created_total{sender="submission"}`: 7,
			`koukan_transactions_created_total{sender="ingress"}`:    6,
			// submission: good, and good2's SMTP transaction and its exploder child.
			`koukan_transactions_finished_total{reason="upstream response success",sender="submission"}`:       3,
			`koukan_transactions_finished_total{reason="upstream rcpt_response permfail",sender="submission"}`: 1,
			`koukan_transactions_finished_total{reason="retry policy max attempts",sender="submission"}`:       1,
			// ingress: bob's transaction and child; busy's and gone's, each cancelled when the
			// client quit after its refused RCPT.
			`koukan_transactions_finished_total{reason="upstream response success",sender="ingress"}`: 2,
			`koukan_transactions_finished_total{reason="downstream cancelled",sender="ingress"}`:      4,
			`koukan_transaction_seconds_count{outcome="delivered",sender="submission"}`:               3,
			`koukan_transaction_seconds_count{outcome="failed",sender="submission"}`:                  2,
			`koukan_transaction_seconds_count{outcome="delivered",sender="ingress"}`:                  2,
			`koukan_transaction_seconds_count{outcome="cancelled",sender="ingress"}`:                  4,
			// later took 4 attempts; every other attempt was its transaction's last.
			`koukan_attempts_total{outcome="final",sender="submission"}`: 5,
			`koukan_attempts_total{outcome="retry",sender="submission"}`: 3,
			`koukan_attempts_total{outcome="final",sender="ingress"}`:    6,
			// Inbound, the replies relayed to SMTP clients: MAIL, RCPT and the message for the
			// two delivered, MAIL and RCPT for the two refused.
			`koukan_smtp_replies_total{class="2xx",side="inbound"}`: 8,
			`koukan_smtp_replies_total{class="4xx",side="inbound"}`: 1,
			`koukan_smtp_replies_total{class="5xx",side="inbound"}`: 1,
			// Outbound, per command: good, bob and good2 3 each; MAIL for nobody, later (4
			// times), busy and gone; RCPT refused for later (4), busy, nobody and gone; the
			// mail store's dead first host, for bob, busy and gone.
			`koukan_smtp_replies_total{class="2xx",side="outbound"}`: 16,
			`koukan_smtp_replies_total{class="4xx",side="outbound"}`: 8,
			`koukan_smtp_replies_total{class="5xx",side="outbound"}`: 2,
			// What waits: the two held.
			`koukan_queue_transactions{state="held"}`:                                               2,
			`koukan_queue_transactions{state="in_flight"}`:                                          0,
			`koukan_queue_transactions{state="due"}`:                                                0,
			`koukan_queue_transactions{state="deferred"}`:                                           0,
			`koukan_queue_domain_transactions{domain="held.test",state="held"}`:                     2,
			`koukan_queue_domain_transactions{domain="held.test",state="in_flight"}`:                0,
			`koukan_queue_domain_transactions{domain="other",state="held"}`:                         0,
			`koukan_queue_domain_transactions{domain="other",state="due"}`:                          0,
			`koukan_queue_domain_transactions{domain="other",state="in_flight"}`:                    0,
			`koukan_http_requests_total{route="POST /admin/domains/{domain}/suspend",status="200"}`: 1,
			// Creates: 5 REST posts and 4 SMTP transactions to the router; to the gateway
			// good, nobody, later 4 times, good2, and bob, busy and gone twice each (the dead
			// host first).
			`koukan_http_requests_total{route="POST /senders/{sender}/transactions",status="201"}`: 22,
			// Bodies: the two delivered SMTP transactions to the router; good, bob and good2
			// to the gateway.
			`koukan_http_requests_total{route="PUT /transactions/{tx}/body",status="200"}`: 5,
		}
		// Counted as attempts end, a moment after the queue shows them done: wait for all.
		var got map[string]string
		var wrong []string
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			got, wrong = scrape(t, e.api+"/metrics"), nil
			for k, v := range want {
				if got[k] != strconv.Itoa(v) {
					wrong = append(wrong, fmt.Sprintf("%s = %q, want %d", k, got[k], v))
				}
			}
			if len(wrong) == 0 || time.Now().After(deadline) {
				break
			}
		}
		slices.Sort(wrong)
		for _, w := range wrong {
			t.Error(w)
		}
		// No domain but held.test has a series of its own: the others are not queued.
		for k := range got {
			if strings.HasPrefix(k, "koukan_queue_domain_transactions{") && !strings.Contains(k, `domain="held.test"`) && !strings.Contains(k, `domain="other"`) {
				t.Errorf("%s = %s: a domain with nothing queued", k, got[k])
			}
		}
		atLeast := func(k string, min float64) {
			t.Helper()
			if v, err := strconv.ParseFloat(got[k], 64); err != nil || v < min {
				t.Errorf("%s = %q, want at least %v", k, got[k], min)
			}
		}
		// later waited three times at least 0.8 s (1 s less the jitter) between attempts:
		// the histogram measures from creation, not the last attempt.
		atLeast(`koukan_transaction_seconds_sum{outcome="failed",sender="submission"}`, 2.4)
		atLeast(`koukan_store_op_seconds_count{op="create",result="ok"}`, 1)
		atLeast(`koukan_store_op_seconds_count{op="finish_attempt",result="ok"}`, 1)
		atLeast(`koukan_http_requests_total{route="GET /transactions/{tx}",status="200"}`, 1)
		atLeast(`koukan_http_requests_total{route="PATCH /transactions/{tx}",status="200"}`, 4) // a RCPT per SMTP transaction
		atLeast(`koukan_http_requests_total{route="POST /transactions/{tx}/cancel",status="200"}`, 1)

		// The log: the router's line for the permanent failure, and the gateway's for the
		// transaction that carried it to the internet, which the router's line names.
		out := e.output()
		routerLine := regexp.MustCompile(`msg="attempt finished" tx=` + path.Base(perm) +
			` attempt=1 sender=submission sender_tag="" rcpt_domains=\[bounce.test\] upstream=(\S+) reply.code=550 reply.enhanced=5.1.1 reply.message="no such user here" outcome=failed final="upstream rcpt_response permfail"`)
		m := routerLine.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("the log lacks the router's line for %s: %s", perm, routerLine)
		}
		for _, want := range []string{
			fmt.Sprintf(`msg="transaction ended" tx=%s tag=outbound peer=127.0.0.1:%d rcpt_domains=[bounce.test] reply.code=550 reply.enhanced=5.1.1 reply.message="no such user here"`,
				path.Base(m[1]), e.internet.port),
			`msg="attempt finished" tx=` + path.Base(later) + ` attempt=4 sender=submission sender_tag="" rcpt_domains=[remote.test] upstream=`,
			` reply.code=451 reply.enhanced=4.3.0 reply.message="try again later" outcome=failed final="retry policy max attempts"`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("the log lacks %s", want)
			}
		}
	})
}
