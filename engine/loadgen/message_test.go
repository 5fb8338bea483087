package loadgen

import (
	"bytes"
	"math/rand/v2"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"2k": 2048, "100k": 102400, "1m": 1 << 20, "512": 512, "1M": 1 << 20, "64kb": 65536, " 3K ": 3072} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1k", "k", "1.5m", "2g", "2000m", "x"} {
		if n, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, n)
		}
	}
}

func TestTemplateSizesAndShape(t *testing.T) {
	date := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, size := range []int{300, 1000, 2 << 10, 100 << 10, 1 << 20, 1<<20 + 77} {
		tm := NewTemplate(size, "bench@example.com", "sink@example.net", date)
		m := tm.Next()
		raw := m.String()
		if d := abs(len(raw) - size); d*100 > size {
			t.Errorf("size %d: message is %d bytes, more than 1%% off", size, len(raw))
		}
		if len(raw) != size || m.Len() != size || tm.Size() != size {
			t.Errorf("size %d: String %d, Len %d, Size %d bytes; want exact", size, len(raw), m.Len(), tm.Size())
		}
		var w bytes.Buffer
		if n, err := m.WriteTo(&w); err != nil || n != int64(size) || w.String() != raw {
			t.Errorf("size %d: WriteTo wrote %d, %v, differently from String", size, n, err)
		}
		var r bytes.Buffer
		r.ReadFrom(m.Reader())
		if r.String() != raw {
			t.Errorf("size %d: Reader differs from String", size)
		}
		checkLines(t, size, raw)
		msg, err := mail.ReadMessage(strings.NewReader(raw))
		if err != nil {
			t.Fatalf("size %d: not a message: %v", size, err)
		}
		for _, h := range []string{"Date", "Message-ID", "From", "To", "Subject", "MIME-Version", "Content-Type"} {
			if msg.Header.Get(h) == "" {
				t.Errorf("size %d: no %s header", size, h)
			}
		}
		if got, err := msg.Header.Date(); err != nil || !got.Equal(date) {
			t.Errorf("size %d: Date %v, %v", size, got, err)
		}
		if got := msg.Header.Get("Message-ID"); got != m.ID {
			t.Errorf("size %d: Message-ID %q, want %q", size, got, m.ID)
		}
		if _, err := mail.ParseAddress(msg.Header.Get("From")); err != nil {
			t.Errorf("size %d: From: %v", size, err)
		}
	}
}

// checkLines checks that raw is CRLF lines of printable ASCII, none over 998 octets, and
// that no body line would need dot-stuffing.
func checkLines(t *testing.T, size int, raw string) {
	t.Helper()
	if !strings.HasSuffix(raw, "\r\n") {
		t.Errorf("size %d: does not end in CRLF", size)
	}
	lines := strings.Split(strings.TrimSuffix(raw, "\r\n"), "\r\n")
	for i, l := range lines {
		if len(l) > 998 {
			t.Errorf("size %d: line %d has %d octets", size, i, len(l))
		}
		if strings.HasPrefix(l, ".") {
			t.Errorf("size %d: line %d starts with a dot", size, i)
		}
		for _, c := range []byte(l) {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("size %d: line %d has byte %#x (a bare CR or LF, or not printable)", size, i, c)
			}
		}
	}
}

func TestBodyLengthIsExactForEveryRemainder(t *testing.T) {
	for n := 0; n < 400; n++ {
		b := body(n)
		want := max(n, 2)
		if n == 0 {
			want = 0
		}
		if len(b) != want {
			t.Fatalf("body(%d) is %d bytes", n, len(b))
		}
		if n > 0 {
			checkLines(t, n, string(b))
		}
	}
}

func TestMessageIDsAreUnique(t *testing.T) {
	tm := NewTemplate(2048, "a@example.com", "b@example.net", time.Now())
	other := NewTemplate(2048, "a@example.com", "b@example.net", time.Now())
	const workers, each = 8, 500
	ids := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				m := tm.Next()
				if m.Len() != tm.Size() {
					t.Errorf("message %s is %d bytes, not %d", m.ID, m.Len(), tm.Size())
				}
				ids[w] = append(ids[w], m.ID)
			}
		})
	}
	wg.Wait()
	all := slices.Concat(ids...)
	all = append(all, other.Next().ID) // another run's first id collides with nothing
	slices.Sort(all)
	if c := slices.Compact(slices.Clone(all)); len(c) != len(all) {
		t.Errorf("%d duplicate Message-IDs", len(all)-len(c))
	}
	for _, id := range all[:3] {
		if _, err := mail.ParseAddress("x " + id); err != nil {
			t.Errorf("Message-ID %q is not msg-id shaped: %v", id, err)
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		var d []time.Duration
		for _, v := range vs {
			d = append(d, time.Duration(v)*time.Millisecond)
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, c := range []struct {
		vals []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 50, ms(7)[0]},
		{ms(7), 99, ms(7)[0]},
		{ms(hundred...), 50, ms(50)[0]},
		{ms(hundred...), 90, ms(90)[0]},
		{ms(hundred...), 99, ms(99)[0]},
		{ms(hundred...), 100, ms(100)[0]},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 50, ms(5)[0]},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, ms(9)[0]},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, ms(10)[0]},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.1, ms(1)[0]},
		{ms(1, 2, 3), 50, ms(2)[0]},
		{ms(1, 1000), 50, ms(1)[0]},
		{ms(1, 1000), 51, ms(1000)[0]},
	} {
		if got := Percentile(c.vals, c.p); got != c.want {
			t.Errorf("Percentile(%v, %g) = %v, want %v", c.vals, c.p, got, c.want)
		}
	}
}

func TestCollectorSummarizesEverySample(t *testing.T) {
	start := time.Now()
	c := newCollector(start, 0)
	lat := rand.Perm(1000) // 0..999 ms in random order: no sample may be lost
	for _, v := range lat {
		c.record(outcome{ok: true, latency: time.Duration(v+1) * time.Millisecond})
	}
	for range 12 {
		c.record(outcome{code: "451 4.3.0"})
	}
	for range 3 {
		c.record(outcome{code: "550 5.7.1"})
	}
	c.record(outcome{code: "mail: connection closed"})
	p := c.progress(2000)
	if p.Done != 1016 || p.OK != 1000 || p.Failed != 16 || p.Total != 2000 {
		t.Errorf("progress %+v", p)
	}
	r := c.result()
	if r.Sent != 1016 || r.OK != 1000 || r.Failed != 16 {
		t.Errorf("counts %+v", r)
	}
	if r.Latency != (Latency{500, 900, 990, 1000}) {
		t.Errorf("latency %+v, want 500/900/990/1000 ms", r.Latency)
	}
	want := []Group{{"451 4.3.0", 12}, {"550 5.7.1", 3}, {"mail: connection closed", 1}}
	if !slices.Equal(r.Errors, want) {
		t.Errorf("errors %v, want %v", r.Errors, want)
	}
	var out strings.Builder
	r.Mode, r.Target, r.Size, r.Concurrency = "smtp", "127.0.0.1:25", 2048, 4
	r.WriteText(&out)
	for _, s := range []string{"smtp 127.0.0.1:25: 2048-byte messages, concurrency 4\n", "sent      1016\n", "ok        1000\n",
		"failed    16\n", "latency   p50 500ms  p90 900ms  p99 990ms  max 1000ms\n", "errors    451 4.3.0 ×12\n", "          550 5.7.1 ×3\n"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("text output lacks %q:\n%s", s, out.String())
		}
	}
}

func TestReplyCode(t *testing.T) {
	for _, c := range []struct {
		code int
		text string
		want string
	}{
		{451, "4.3.0 try later", "451 4.3.0"},
		{550, "5.7.1", "550 5.7.1"},
		{554, "no enhanced code", "554"},
		{451, "4.3.0.1 nope", "451"},
	} {
		if got := replyCode(c.code, c.text); got != c.want {
			t.Errorf("replyCode(%d, %q) = %q, want %q", c.code, c.text, got, c.want)
		}
	}
}

func abs(n int) int { return max(n, -n) }
