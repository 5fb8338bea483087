package main

import "testing"

// The sample configs check clean, together with the shipped scripts they use: no errors,
// and no warnings about the configs themselves (smoke runs of scripts without options
// may warn).
func TestExampleConfigsCheck(t *testing.T) {
	code, out, errOut := runCapture("check", "../../config/examples", "../../scripts")
	if code != 0 {
		t.Fatalf("koukan check config/examples scripts: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCapture("check", "--strict", "../../config/examples")
	if code != 0 || out != "" {
		t.Errorf("koukan check --strict config/examples: exit %d\n%s%s", code, out, errOut)
	}
}
