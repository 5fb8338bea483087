package dsn

import "testing"

func TestParseNotify(t *testing.T) {
	tests := []struct {
		in      string
		want    Notify
		wantErr bool
	}{
		{"NEVER", NotifyNever, false},
		{"never", NotifyNever, false},
		{"SUCCESS", NotifySuccess, false},
		{"FAILURE", NotifyFailure, false},
		{"DELAY", NotifyDelay, false},
		{"SUCCESS,FAILURE", NotifySuccess | NotifyFailure, false},
		{"failure,Delay", NotifyFailure | NotifyDelay, false},
		{"SUCCESS,FAILURE,DELAY", NotifySuccess | NotifyFailure | NotifyDelay, false},
		{"FAILURE,FAILURE", NotifyFailure, false},
		{"", 0, true},
		{"NEVER,FAILURE", 0, true},
		{"FAILURE,NEVER", 0, true},
		{"FAILURE,", 0, true},
		{"FAILURE DELAY", 0, true},
		{"WARN", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseNotify(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseNotify(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestWants(t *testing.T) {
	all := NotifySuccess | NotifyFailure | NotifyDelay
	tests := []struct {
		n    Notify
		a    Action
		want bool
	}{
		{0, ActionFailed, true},
		{0, ActionDelayed, true},
		{0, ActionDelivered, false},
		{0, ActionRelayed, false},
		{NotifyNever, ActionFailed, false},
		{NotifyNever, ActionDelayed, false},
		{NotifyNever, ActionDelivered, false},
		{NotifyNever | NotifyFailure, ActionFailed, false},
		{NotifyFailure, ActionFailed, true},
		{NotifyFailure, ActionDelayed, false},
		{NotifyDelay, ActionDelayed, true},
		{NotifyDelay, ActionFailed, false},
		{NotifySuccess, ActionDelivered, true},
		{NotifySuccess, ActionRelayed, true},
		{NotifySuccess, ActionFailed, false},
		{all, ActionFailed, true},
		{all, ActionDelayed, true},
		{all, ActionDelivered, true},
		{all, Action(0), false},
	}
	for _, tt := range tests {
		if got := Wants(tt.n, tt.a); got != tt.want {
			t.Errorf("Wants(%b, %v) = %v; want %v", tt.n, tt.a, got, tt.want)
		}
	}
}

func TestShouldNotify(t *testing.T) {
	tests := []struct {
		mailFrom string
		n        Notify
		a        Action
		want     bool
	}{
		{"alice@example.com", 0, ActionFailed, true},
		{"", 0, ActionFailed, false},
		{"", NotifyFailure | NotifySuccess, ActionDelivered, false},
		{"alice@example.com", NotifyNever, ActionFailed, false},
		{"alice@example.com", NotifySuccess, ActionDelivered, true},
		{"alice@example.com", NotifyFailure, ActionDelayed, false},
	}
	for _, tt := range tests {
		if got := ShouldNotify(tt.mailFrom, tt.n, tt.a); got != tt.want {
			t.Errorf("ShouldNotify(%q, %b, %v) = %v; want %v", tt.mailFrom, tt.n, tt.a, got, tt.want)
		}
	}
}

func TestParseRet(t *testing.T) {
	tests := []struct {
		in      string
		want    Ret
		wantErr bool
	}{
		{"HDRS", RetHeaders, false},
		{"hdrs", RetHeaders, false},
		{"FULL", RetFull, false},
		{"Full", RetFull, false},
		{"", 0, true},
		{"BODY", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseRet(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseRet(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
