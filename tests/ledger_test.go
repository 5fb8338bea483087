package tests

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Shared by the fault and load tests: a sink that plays the internet and records what it
// got, a ledger of what clients sent and had acknowledged, the clients themselves, and a
// look at a koukan process's memory, file descriptors and goroutines.

// testMessage is message id; the sink files it under id.
func testMessage(id string) string {
	return fmt.Sprintf("Message-ID: <%s@fault.test>\r\nSubject: %s\r\n\r\nhello\r\n", id, id)
}

var messageID = regexp.MustCompile(`(?i)Message-ID: <([^@>]+)@fault\.test>`)

// fault is how the sink treats one connection.
type fault int

const (
	behave fault = iota
	// stallGreeting sends the greeting and then never answers.
	stallGreeting
	// stallData takes the whole message and then never answers the end of the data.
	stallData
	// reset accepts the start of the message and then resets the connection (RST).
	reset
	// slow answers every command, each after slowReply: each in time, too slow in sum.
	slow
)

func (f fault) String() string {
	return [...]string{"behave", "stall after greeting", "stall after DATA", "reset mid-transaction", "slow answers"}[f]
}

// slowReply is how long the slow fault takes over each reply.
const slowReply = 800 * time.Millisecond

// sinkConn is one connection the sink accepted: when, how it treated it, when its fault
// began (the greeting sent, the message received, each slow reply started) and when the
// client hung up (zero while it has not).
type sinkConn struct {
	fault                  fault
	opened, faulted, ended time.Time
}

// sink is the internet for fault and load tests: an SMTP server on a loopback port that
// accepts every message and records, by the id testMessage stamped on it, when each copy
// was accepted. Its misbehaviour is set per connection (faults); well-behaved connections go
// to go-smtp.
type sink struct {
	port int

	mu    sync.Mutex
	got   map[string][]time.Time
	stray int // messages without a test id
	conns []*sinkConn
	// faults picks the treatment of connection n (counted from 1); nil behaves.
	faults func(n int) fault
	// latency is how long it takes over accepting each message.
	latency time.Duration
}

func startSink(t *testing.T) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{port: ln.Addr().(*net.TCPAddr).Port, got: map[string][]time.Time{}}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s}, nil }))
	srv.Domain = "sink.test"
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.ErrorLog = peerLog{}
	handoff := &connListener{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	go srv.Serve(handoff)
	var raw sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			rec := &sinkConn{opened: time.Now()}
			if s.faults != nil {
				rec.fault = s.faults(len(s.conns) + 1)
			}
			s.conns = append(s.conns, rec)
			s.mu.Unlock()
			if rec.fault == behave {
				select {
				case handoff.conns <- &endingConn{c, func() { s.mu.Lock(); rec.ended = time.Now(); s.mu.Unlock() }}:
				case <-handoff.done:
					c.Close()
				}
				continue
			}
			raw.Add(1)
			go func() {
				defer raw.Done()
				s.misbehave(c, rec)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		srv.Close()
		raw.Wait()
	})
	return s
}

// endingConn notes when go-smtp closes a connection.
type endingConn struct {
	net.Conn
	ended func()
}

func (c *endingConn) Close() error {
	c.ended()
	return c.Conn.Close()
}

// connListener hands go-smtp the connections the sink lets it have.
type connListener struct {
	addr  net.Addr
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *connListener) Addr() net.Addr { return l.addr }

// misbehave speaks just enough SMTP to reach the fault's point, then commits it. Faulty
// connections never deliver. A stall reads until the client gives up, so ended tells when
// the client's timeout fired; the test's end closes what is left.
func (s *sink) misbehave(c net.Conn, rec *sinkConn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	mark := func(at *time.Time) {
		s.mu.Lock()
		*at = time.Now()
		s.mu.Unlock()
	}
	stall := func() {
		mark(&rec.faulted)
		io.Copy(io.Discard, c)
		mark(&rec.ended)
	}
	r := bufio.NewReader(c)
	reply := func(line string) error {
		if rec.fault == slow {
			mark(&rec.faulted)
			time.Sleep(slowReply)
		}
		_, err := io.WriteString(c, line+"\r\n")
		return err
	}
	if reply("220 sink.test ESMTP") != nil {
		return
	}
	if rec.fault == stallGreeting {
		stall()
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			mark(&rec.ended)
			return
		}
		verb, _, _ := strings.Cut(strings.ToUpper(strings.TrimSpace(line)), " ")
		switch verb {
		case "EHLO", "HELO":
			err = reply("250 sink.test")
		case "MAIL", "RCPT", "RSET", "NOOP":
			err = reply("250 2.0.0 ok")
		case "DATA":
			if err = reply("354 go ahead"); err != nil {
				return
			}
			if rec.fault == reset {
				r.ReadString('\n') // the first line of the message
				mark(&rec.faulted)
				c.(*net.TCPConn).SetLinger(0)
				return
			}
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			if rec.fault == stallData {
				stall()
				return
			}
			err = reply("451 4.3.0 not today") // slow gets here only if the client was patient
		case "QUIT":
			reply("221 2.0.0 bye")
			mark(&rec.ended)
			return
		default:
			err = reply("502 5.5.2 what")
		}
		if err != nil {
			return
		}
	}
}

// quiet waits up to within until no connection is open (the client's pool let them go).
func (s *sink) quiet(within time.Duration) bool {
	for deadline := time.Now().Add(within); ; time.Sleep(50 * time.Millisecond) {
		open := 0
		for _, c := range s.connections() {
			if c.ended.IsZero() && c.fault != reset {
				open++
			}
		}
		if open == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// connections is a copy of the connection log.
func (s *sink) connections() []sinkConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]sinkConn, len(s.conns))
	for i, c := range s.conns {
		out[i] = *c
	}
	return out
}

// misbehaveNext commits fault f on the next k connections; the ones after behave.
func (s *sink) misbehaveNext(k int, f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := len(s.conns) + 1
	s.faults = func(n int) fault {
		if n >= first && n < first+k {
			return f
		}
		return behave
	}
}

// setLatency makes the sink take d over accepting each message.
func (s *sink) setLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// strays counts messages without a test id.
func (s *sink) strays() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stray
}

// delivered is a copy of what arrived: id → when each copy was accepted.
func (s *sink) delivered() map[string][]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]time.Time, len(s.got))
	for id, at := range s.got {
		out[id] = append([]time.Time(nil), at...)
	}
	return out
}

type sinkSession struct{ s *sink }

func (*sinkSession) Reset()                               {}
func (*sinkSession) Logout() error                        { return nil }
func (*sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	latency := ss.s.latency
	ss.s.mu.Unlock()
	time.Sleep(latency)
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if m := messageID.FindSubmatch(b); m != nil {
		ss.s.got[string(m[1])] = append(ss.s.got[string(m[1])], time.Now())
	} else {
		ss.s.stray++
	}
	return nil
}

// ledger is what clients sent and which of it they had acknowledged: 201 from the REST
// API, 250 to the end of the data on SMTP.
type ledger struct {
	mu     sync.Mutex
	events []event
}

// event is one message sent: when, how long the client waited for the answer, and what
// the answer was when not an acknowledgement ("451 4.3.0", "503 storage_unavailable",
// "no answer").
type event struct {
	id     string
	at     time.Time
	took   time.Duration
	ack    bool
	answer string
}

func (l *ledger) record(e event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// send sends message id one way now, and records it.
func (l *ledger) send(id string, s sender) (ack bool, answer string) {
	at := time.Now()
	ack, answer = s(id)
	l.record(event{id: id, at: at, took: time.Since(at), ack: ack, answer: answer})
	return ack, answer
}

// history is a copy of the events so far.
func (l *ledger) history() []event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]event(nil), l.events...)
}

// sender sends message id one way: it reports whether the message was acknowledged and
// what the client saw otherwise.
type sender func(id string) (ack bool, answer string)

// viaREST posts to a router's sender URL.
func viaREST(senderURL string) sender {
	return func(id string) (bool, string) {
		status, body := postMessage(senderURL, id)
		if status == 0 {
			return false, "no answer"
		}
		var p struct {
			Error struct{ Code string }
		}
		if json.Unmarshal([]byte(body), &p) != nil || p.Error.Code == "" {
			return status == 201, fmt.Sprintf("%d without a problem body: %.100q", status, body)
		}
		return status == 201, fmt.Sprintf("%d %s", status, p.Error.Code)
	}
}

// viaSMTP sends to an SMTP port.
func viaSMTP(port int) sender {
	return func(id string) (bool, string) {
		err := smtpSend(port, id)
		if se, ok := errors.AsType[*smtp.SMTPError](err); ok {
			e := se.EnhancedCode
			return false, fmt.Sprintf("%d %d.%d.%d", se.Code, e[0], e[1], e[2])
		}
		if err != nil {
			return false, "no answer"
		}
		return true, ""
	}
}

// load runs each sender in a loop, one message after the other, until stop closes; the
// messages are named after the sender, "NAME-N". The returned function waits for the
// senders to finish.
func load(l *ledger, stop <-chan struct{}, senders map[string]sender) (wait func()) {
	var wg sync.WaitGroup
	for name, send := range senders {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				l.send(fmt.Sprintf("%s-%d", name, i), send)
			}
		})
	}
	return wg.Wait
}

// tally is a settled ledger.
type tally struct {
	sent, acked, delivered, duplicated, lost int
	// copies is what the sink got, by id.
	copies map[string][]time.Time
}

// settle waits up to within for every acknowledged message to reach the sink, then logs the
// ledger line and fails the test if any was lost.
func (l *ledger) settle(t *testing.T, s *sink, within time.Duration) tally {
	t.Helper()
	events := l.history()
	acked := map[string]bool{}
	for _, e := range events {
		if e.ack {
			acked[e.id] = true
		}
	}
	var got map[string][]time.Time
	missing := 0
	for deadline := time.Now().Add(within); ; time.Sleep(100 * time.Millisecond) {
		got, missing = s.delivered(), 0
		for id := range acked {
			if len(got[id]) == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
	}
	r := tally{sent: len(events), delivered: len(got), lost: missing, copies: got}
	unacked := 0
	answers := map[string]int{}
	for _, e := range events {
		if e.ack {
			r.acked++
		} else {
			answers[e.answer]++
		}
	}
	for id, at := range got {
		r.duplicated += len(at) - 1
		if !acked[id] {
			unacked++
		}
	}
	t.Logf("ledger: sent %d, acknowledged %d, delivered %d, duplicated %d, lost %d "+
		"(delivered unacknowledged %d; other answers %v; stray messages %d)",
		r.sent, r.acked, r.delivered, r.duplicated, r.lost, unacked, answers, s.strays())
	if r.lost != 0 {
		var lost []string
		for _, e := range events {
			if e.ack && len(got[e.id]) == 0 {
				lost = append(lost, fmt.Sprintf("%s (sent %s, acknowledged after %v)", e.id, e.at.Format("15:04:05.000"), e.took))
			}
		}
		t.Errorf("lost %d acknowledged messages: %s", r.lost, strings.Join(lost, ", "))
	}
	return r
}

// restClient is a REST client with a bound on every request, so that no test hangs on one.
var restClient = &http.Client{Timeout: 30 * time.Second}

// postMessage creates a transaction for message id on the router's sender URL. It returns
// the status (0 without an answer) and the body.
func postMessage(senderURL, id string) (int, string) {
	body := fmt.Sprintf(`{"mail_from":{"m":"app@example.com"},"rcpt_to":[{"m":"x@example.net"}],"body":{"inline":%s}}`,
		strconv.Quote(testMessage(id)))
	res, err := restClient.Post(senderURL, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// smtpSend sends message id to an SMTP port: nil once the end of the data got 250, else
// the refusal (an *smtp.SMTPError) or what broke the conversation.
func smtpSend(port int, id string) error {
	c, err := smtp.Dial(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = 30*time.Second, 30*time.Second
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.SendMail("app@example.com", []string{"x@example.net"}, strings.NewReader(testMessage(id))); err != nil {
		return err
	}
	c.Quit()
	return nil
}

// procStat is a koukan process's footprint: resident memory (now and its peak), open file
// descriptors and, from its /metrics, goroutines.
type procStat struct {
	rss, peak  int64 // bytes
	fds        int
	goroutines int
}

func (p procStat) String() string {
	return fmt.Sprintf("RSS %.1f MB (peak %.1f MB), %d fds, %d goroutines", float64(p.rss)/1e6, float64(p.peak)/1e6, p.fds, p.goroutines)
}

// statOf reads the footprint of process pid; metricsURL is its /metrics.
func statOf(t *testing.T, pid int, metricsURL string) procStat {
	t.Helper()
	var p procStat
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the status of process %d: %v", pid, err)
	}
	for line := range strings.Lines(string(status)) {
		k, v, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			p.rss = kb << 10
		case "VmHWM":
			p.peak = kb << 10
		}
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	p.fds = len(fds)
	p.goroutines = int(metric(t, metricsURL, "go_goroutines"))
	return p
}

// metric is the sum of the samples of a metric (every label set) at a /metrics URL.
func metric(t *testing.T, metricsURL, name string) float64 {
	t.Helper()
	res, err := restClient.Get(metricsURL)
	if err != nil {
		t.Fatalf("reading %s: %v", metricsURL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	sum := 0.0
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || rest[0] != ' ' && rest[0] != '{' {
			continue
		}
		v, _ := strconv.ParseFloat(strings.TrimSpace(rest[strings.LastIndexByte(rest, ' '):]), 64)
		sum += v
	}
	return sum
}

// drain waits up to within until the router whose /metrics is at metricsURL sees nothing
// in flight or waiting for a retry in its whole database, and the sink has got nothing new
// for a while (the dequeue loop picks a due transaction up within a second). What is still
// due then goes nowhere: an upload its client gave up on when the replica that created it
// died (only that replica finishes an upload), left for GC.
func drain(t *testing.T, metricsURL string, s *sink, within time.Duration) {
	t.Helper()
	const quiet = 1500 * time.Millisecond
	copies, since := -1, time.Now()
	for deadline := time.Now().Add(within); ; time.Sleep(100 * time.Millisecond) {
		n := 0
		for _, at := range s.delivered() {
			n += len(at)
		}
		if n != copies {
			copies, since = n, time.Now()
		}
		busy := metric(t, metricsURL, `koukan_queue_transactions{state="in_flight"}`) +
			metric(t, metricsURL, `koukan_queue_transactions{state="deferred"}`)
		if busy == 0 && time.Since(since) >= quiet {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("transactions still under way after %v", within)
			return
		}
	}
}

// settles waits up to within for a process to come back to its footprint before a fault,
// give or take slack goroutines and fds (pooled connections come and go), and fails the
// test if it does not: what stays is a leak.
func settles(t *testing.T, name string, pid int, metricsURL string, before procStat, slack int, within time.Duration) {
	t.Helper()
	var now procStat
	for deadline := time.Now().Add(within); ; time.Sleep(200 * time.Millisecond) {
		now = statOf(t, pid, metricsURL)
		if now.goroutines <= before.goroutines+slack && now.fds <= before.fds+slack {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%s leaks: before %v, after %v (slack %d)", name, before, now, slack)
			break
		}
	}
	t.Logf("%s: before %v; after %v", name, before, now)
}

// logsOf kills the servers (the test is giving up on them) and returns what they printed,
// for a failure message. Reading a running server's output would race with its copying.
func logsOf(servers ...*server) string {
	var b strings.Builder
	for _, s := range servers {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			s.cmd.Wait()
		}
		fmt.Fprintf(&b, "--- koukan %s:\n%s\n", strings.Join(s.cmd.Args[1:], " "), s.out)
	}
	return b.String()
}
