package admin

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/koukan/koukan/engine/store"
)

//go:embed ui.html
var pageSource string

var pageTemplate = template.Must(template.New("ui").Funcs(template.FuncMap{
	"when": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"ago":  func(now, t time.Time) string { return Relative(t.Sub(now)) },
}).Parse(pageSource))

// Status page settings: how far back the chart and the per-domain counts look, and how
// many recent transactions and domains it shows.
const (
	pageWindow       = time.Hour
	pageTransactions = 25
	pageDomains      = 20
)

// pageData is what the status page shows.
type pageData struct {
	Now          time.Time
	Queue        store.QueueStats
	SampleEvery  time.Duration
	Chart        chart
	Transactions []TxView
	Suspended    []DomainView
	Domains      []domainRow
	Scripts      *Scripts
}

// domainRow is one destination domain's outcomes over the window.
type domainRow struct {
	Domain                                string
	Delivered, Failed, Deferred, InFlight int
	// Success is the percentage of delivered among delivered and failed, "" without either.
	Success string
}

// page is GET /ui: the status page, rendered on the server; it reloads itself every 30 s.
func (a *Admin) page(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	now := time.Now()
	d := pageData{Now: now, SampleEvery: a.o.SampleEvery}
	var err error
	if d.Queue, err = a.o.Store.Queue(ctx); err != nil {
		return err
	}
	if d.Suspended, err = a.suspended(r); err != nil {
		return err
	}
	recent, err := a.o.Store.List(ctx, store.ListQuery{Limit: pageTransactions})
	if err != nil {
		return err
	}
	for _, s := range recent {
		d.Transactions = append(d.Transactions, view(s))
	}
	stats, err := a.o.Store.DomainStats(ctx, now.Add(-pageWindow))
	if err != nil {
		return err
	}
	d.Domains = domainRows(stats)
	d.Chart = newChart(a.history.all(), now)
	if a.o.Scripts != nil {
		s := a.o.Scripts()
		d.Scripts = &s
	}
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, d); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes())
	return nil
}

// domainRows orders domains by how much they carried, busiest first, and keeps the first
// pageDomains.
func domainRows(stats []store.DomainStats) []domainRow {
	var rows []domainRow
	for _, s := range stats {
		c := s.Counts
		row := domainRow{Domain: s.Domain, Delivered: c[store.StateDelivered], Failed: c[store.StateFailed],
			Deferred: c[store.StateDue] + c[store.StateDeferred] + c[store.StateHeld], InFlight: c[store.StateInFlight]}
		if n := row.Delivered + row.Failed; n > 0 {
			row.Success = fmt.Sprintf("%.0f%%", 100*float64(row.Delivered)/float64(n))
		}
		rows = append(rows, row)
	}
	total := func(r domainRow) int { return r.Delivered + r.Failed + r.Deferred + r.InFlight }
	slices.SortStableFunc(rows, func(a, b domainRow) int { return total(b) - total(a) })
	return rows[:min(len(rows), pageDomains)]
}

// chart is the queue depth over the window as an inline SVG line chart: one polyline per
// state, time across, transactions up.
type chart struct {
	Width, Height int
	Left, Bottom  int // the plot's left and bottom edges
	Max           int // the top of the scale
	Series        []series
	// Ticks are the time labels along the bottom.
	Ticks []tick
	// Samples is how many samples it draws.
	Samples int
}

type series struct {
	Name, Color string
	Points      string // "x,y x,y ..."
	// LastX and LastY mark the latest sample, so that even one sample shows.
	LastX, LastY int
	Last         int
}

type tick struct {
	X     int
	Label string
}

func newChart(samples []sample, now time.Time) chart {
	c := chart{Width: 720, Height: 220, Left: 48, Bottom: 190, Max: 1, Samples: len(samples)}
	top, right := 10, c.Width-10
	for _, s := range samples {
		c.Max = max(c.Max, s.InFlight, s.Due, s.Deferred, s.Held)
	}
	x := func(t time.Time) int {
		f := 1 - float64(now.Sub(t))/float64(pageWindow)
		return c.Left + int(max(f, 0)*float64(right-c.Left))
	}
	y := func(n int) int { return c.Bottom - n*(c.Bottom-top)/c.Max }
	for _, def := range []struct {
		name, color string
		get         func(store.QueueStats) int
	}{
		{"in flight", "#1f77b4", func(q store.QueueStats) int { return q.InFlight }},
		{"due", "#ff7f0e", func(q store.QueueStats) int { return q.Due }},
		{"deferred", "#d62728", func(q store.QueueStats) int { return q.Deferred }},
		{"held", "#9467bd", func(q store.QueueStats) int { return q.Held }},
	} {
		s := series{Name: def.name, Color: def.color}
		var pts []string
		for _, smp := range samples {
			s.LastX, s.LastY, s.Last = x(smp.At), y(def.get(smp.QueueStats)), def.get(smp.QueueStats)
			pts = append(pts, fmt.Sprintf("%d,%d", s.LastX, s.LastY))
		}
		s.Points = strings.Join(pts, " ")
		c.Series = append(c.Series, s)
	}
	for _, m := range []int{60, 45, 30, 15, 0} {
		label := fmt.Sprintf("-%d min", m)
		if m == 0 {
			label = "now"
		}
		c.Ticks = append(c.Ticks, tick{x(now.Add(-time.Duration(m) * time.Minute)), label})
	}
	return c
}

// Relative says roughly how far from now an offset d is: "in 4m", "12s ago". The status
// page and koukan queue show times so.
func Relative(d time.Duration) string {
	past := d < 0
	if past {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		s = fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	if past {
		return s + " ago"
	}
	return "in " + s
}
