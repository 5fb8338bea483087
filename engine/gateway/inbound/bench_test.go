package inbound

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/rest/resttest"
)

// BenchmarkSMTPSource drives the gateway with Postfix's smtp-source, in front of a REST
// receiver that answers at once, and the same load against Postfix's smtp-sink as the
// baseline, in the same run: messages/s for each and their ratio.
//
//	go test -run '^$' -bench SMTPSource -benchtime 3x ./engine/gateway/inbound/
func BenchmarkSMTPSource(b *testing.B) {
	source, err := exec.LookPath("smtp-source")
	if err != nil {
		source = "/usr/sbin/smtp-source"
	}
	sink, err := exec.LookPath("smtp-sink")
	if err != nil {
		sink = "/usr/sbin/smtp-sink"
	}
	for _, size := range []int{2 << 10, 100 << 10} {
		for _, sessions := range []int{1, 50} {
			b.Run(fmt.Sprintf("%dk/%dsessions", size>>10, sessions), func(b *testing.B) {
				const messages = 2000
				sinkAddr := freeLoopback(b)
				args := []string{sinkAddr, "256"}
				if os.Geteuid() == 0 {
					args = append([]string{"-u", "nobody"}, args...) // it refuses to run as root
				}
				cmd := exec.Command(sink, args...)
				if err := cmd.Start(); err != nil {
					b.Skip("smtp-sink:", err)
				}
				defer func() { cmd.Process.Kill(); cmd.Wait() }()
				waitListening(b, sinkAddr)
				e := start(b, Options{MaxConns: -1, MaxConnsPerIP: -1, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, resttest.Options{})
				var sinkRate, gwRate float64
				for b.Loop() {
					sinkRate = sourceRate(b, source, sinkAddr, messages, sessions, size)
					gwRate = sourceRate(b, source, e.addr, messages, sessions, size)
				}
				b.ReportMetric(sinkRate, "sink-msgs/s")
				b.ReportMetric(gwRate, "gateway-msgs/s")
				b.ReportMetric(gwRate/sinkRate, "ratio")
			})
		}
	}
}

// sourceRate sends messages through smtp-source and returns messages/s.
func sourceRate(b *testing.B, source, addr string, messages, sessions, size int) float64 {
	start := time.Now()
	out, err := exec.Command(source, "-s", strconv.Itoa(sessions), "-m", strconv.Itoa(messages), "-l", strconv.Itoa(size),
		"-f", "a@example.org", "-t", "b@example.com", "-d", addr).CombinedOutput()
	if err != nil {
		b.Skipf("smtp-source: %v\n%s", err, out)
	}
	return float64(messages) / time.Since(start).Seconds()
}

func freeLoopback(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitListening(b *testing.B, addr string) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
	}
	b.Fatalf("nothing listens on %s", addr)
}
