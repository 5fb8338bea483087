package admin

import (
	"testing"
	"time"

	"github.com/koukan/koukan/engine/store"
)

func TestHistoryKeepsTheLatest(t *testing.T) {
	h := newHistory(3)
	if got := h.all(); len(got) != 0 {
		t.Fatalf("empty history: %v", got)
	}
	base := time.Unix(1000, 0)
	for i := range 5 {
		h.add(sample{base.Add(time.Duration(i) * time.Second), store.QueueStats{Due: i}})
		got := h.all()
		if want := min(i+1, 3); len(got) != want {
			t.Fatalf("after %d samples: %d kept, want %d", i+1, len(got), want)
		}
		for j, s := range got {
			if want := i - len(got) + 1 + j; s.Due != want {
				t.Errorf("after %d samples: sample %d is %d, want %d (oldest first)", i+1, j, s.Due, want)
			}
		}
	}
}
