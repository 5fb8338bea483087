package dsn

import "testing"

func TestStatusAndDiagnostic(t *testing.T) {
	tests := []struct {
		code     int
		reply    string
		action   Action
		wantStat string
		wantDiag string
	}{
		{550, "5.1.1 no such user", ActionFailed, "5.1.1", "smtp; 550 5.1.1 no such user"},
		{550, "5.1.1", ActionFailed, "5.1.1", "smtp; 550 5.1.1"},
		{554, "5.7.26 unauthenticated", ActionFailed, "5.7.26", "smtp; 554 5.7.26 unauthenticated"},
		{552, "5.123.456 big", ActionFailed, "5.123.456", "smtp; 552 5.123.456 big"},
		{451, "4.4.1 timed out", ActionDelayed, "4.4.1", "smtp; 451 4.4.1 timed out"},
		{451, "4.4.1 timed out", ActionFailed, "4.4.1", "smtp; 451 4.4.1 timed out"}, // gave up on a temporary error
		{250, "2.0.0 ok queued", ActionDelivered, "2.0.0", "smtp; 250 2.0.0 ok queued"},
		{550, "no such user", ActionFailed, "5.0.0", "smtp; 550 no such user"},
		{550, "", ActionFailed, "5.0.0", "smtp; 550"},
		{421, "busy", ActionDelayed, "4.0.0", "smtp; 421 busy"},
		{550, "4.1.1 wrong class", ActionFailed, "5.0.0", "smtp; 550 4.1.1 wrong class"},
		{550, "5.1.1.1 too many parts", ActionFailed, "5.0.0", "smtp; 550 5.1.1.1 too many parts"},
		{550, "5.1.1234 long detail", ActionFailed, "5.0.0", "smtp; 550 5.1.1234 long detail"},
		{550, "5.1.1: no space", ActionFailed, "5.0.0", "smtp; 550 5.1.1: no space"},
		{550, "3.1.1 bad class", ActionFailed, "5.0.0", "smtp; 550 3.1.1 bad class"},
		{550, "x 5.1.1 not at start", ActionFailed, "5.0.0", "smtp; 550 x 5.1.1 not at start"},
		{600, "store: connection refused", ActionFailed, "5.0.0", ""},
		{600, "store: connection refused", ActionDelayed, "4.0.0", ""},
		{0, "", ActionDelayed, "4.0.0", ""},
		{0, "", ActionDelivered, "2.0.0", ""},
		{354, "go ahead", ActionRelayed, "2.0.0", ""},
		{199, "", ActionFailed, "5.0.0", ""},
	}
	for _, tt := range tests {
		r := Recipient{Code: tt.code, Reply: tt.reply, Action: tt.action}
		if got := r.status(tt.reply); got != tt.wantStat {
			t.Errorf("status(%d %q, %v) = %q; want %q", tt.code, tt.reply, tt.action, got, tt.wantStat)
		}
		if got := r.diagnostic(tt.reply); got != tt.wantDiag {
			t.Errorf("diagnostic(%d %q) = %q; want %q", tt.code, tt.reply, got, tt.wantDiag)
		}
	}
}
