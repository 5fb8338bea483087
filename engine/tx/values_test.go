package tx

import "testing"

func TestResponseClasses(t *testing.T) {
	tests := []struct {
		code                 int
		ok, temp, perm, errr bool
	}{
		{200, true, false, false, false},
		{250, true, false, false, false},
		{299, true, false, false, false},
		{354, false, false, false, true},
		{421, false, true, false, true},
		{499, false, true, false, true},
		{500, false, false, true, true},
		{599, false, false, true, true},
		{CodeInternal, false, false, false, true},
	}
	for _, tt := range tests {
		r := Response{Code: tt.code}
		if r.Ok() != tt.ok || r.Temp() != tt.temp || r.Perm() != tt.perm || r.Err() != tt.errr {
			t.Errorf("%d: ok %v temp %v perm %v err %v", tt.code, r.Ok(), r.Temp(), r.Perm(), r.Err())
		}
	}
	if s := (Response{451, "4.3.0 x"}).String(); s != "451 4.3.0 x" {
		t.Errorf("String() = %q", s)
	}
}

func TestParseEsmtpParam(t *testing.T) {
	tests := []struct {
		in   string
		want EsmtpParam
		err  bool
	}{
		{"SIZE=1234", EsmtpParam{"SIZE", "1234"}, false},
		{"SMTPUTF8", EsmtpParam{"SMTPUTF8", ""}, false},
		{"BODY=8BITMIME", EsmtpParam{"BODY", "8BITMIME"}, false},
		{"X-FOO=a+b", EsmtpParam{"X-FOO", "a+b"}, false},
		{"ORCPT=rfc822;bjorn@exämple.com", EsmtpParam{"ORCPT", "rfc822;bjorn@exämple.com"}, false},
		{"=1234", EsmtpParam{}, true},
		{"", EsmtpParam{}, true},
		{"SIZE=", EsmtpParam{}, true},
		{"SIZE=1=2", EsmtpParam{}, true},
		{"SIZE=1 2", EsmtpParam{}, true},
		{"-FOO", EsmtpParam{}, true},
		{"FO_O", EsmtpParam{}, true},
		{"SIZE=1\r\nRCPT", EsmtpParam{}, true},
	}
	for _, tt := range tests {
		got, err := ParseEsmtpParam(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseEsmtpParam(%q) = %+v, %v", tt.in, got, err)
		}
		if err == nil && got.String() != tt.in {
			t.Errorf("%+v.String() = %q", got, got.String())
		}
	}
}
