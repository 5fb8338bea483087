package admin

import (
	"testing"
	"time"

	"github.com/koukan/koukan/engine/store"
)

func TestChart(t *testing.T) {
	now := time.Unix(10_000, 0)
	c := newChart([]sample{
		{now.Add(-2 * time.Hour), store.QueueStats{Deferred: 1}}, // before the window: at its left edge
		{now.Add(-30 * time.Minute), store.QueueStats{InFlight: 2, Due: 4, Deferred: 8}},
		{now, store.QueueStats{Deferred: 2, Held: 1}},
	}, now)
	if c.Max != 8 || c.Samples != 3 || len(c.Series) != 4 || c.Series[3].Name != "held" || c.Series[3].Last != 1 {
		t.Fatalf("chart %+v", c)
	}
	deferred := c.Series[2]
	// x from 48 (an hour ago) to 710 (now), y from 190 (0) up to 10 (the top of the scale).
	if want := "48,168 379,10 710,145"; deferred.Points != want {
		t.Errorf("deferred points %q, want %q", deferred.Points, want)
	}
	if deferred.Last != 2 || deferred.LastX != 710 {
		t.Errorf("deferred's last sample: %+v", deferred)
	}
	if c.Ticks[0].X != c.Left || c.Ticks[len(c.Ticks)-1].Label != "now" {
		t.Errorf("ticks %+v", c.Ticks)
	}
	if empty := newChart(nil, now); empty.Max != 1 || empty.Series[0].Points != "" {
		t.Errorf("empty chart %+v", empty)
	}
}

func TestRelative(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-12 * time.Second:              "12s ago",
		4*time.Minute + 5*time.Second:  "in 4m",
		-(3*time.Hour + 7*time.Minute): "3h07m ago",
		72 * time.Hour:                 "in 3d",
		0:                              "in 0s",
	} {
		if got := Relative(d); got != want {
			t.Errorf("Relative(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestNext(t *testing.T) {
	now := time.Unix(10_000, 0)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	for _, tc := range []struct {
		v    TxView
		want string
	}{
		{TxView{State: store.StateDelivered}, ""},
		{TxView{State: store.StateHeld, NextAttempt: at(-time.Hour)}, "on resume"},
		{TxView{State: store.StateDue, NextAttempt: at(-time.Minute)}, "now"},
		{TxView{State: store.StateDeferred, NextAttempt: at(90 * time.Minute)}, "in 1h30m"},
	} {
		if got := tc.v.Next(now); got != tc.want {
			t.Errorf("%s next attempt: %q, want %q", tc.v.State, got, tc.want)
		}
	}
}
