package config

import (
	"os"
	"testing"
)

func TestDetectKind(t *testing.T) {
	for file, want := range map[string]Kind{
		"testdata/good/router.yaml":  KindRouter,
		"testdata/good/gateway.yaml": KindGateway,
		"testdata/good/serve.yaml":   KindServe,
	} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if got := DetectKind(data); got != want {
			t.Errorf("DetectKind(%s) = %s, want %s", file, got, want)
		}
		s, _, err := Check(want, file, data)
		if err != nil || s == nil {
			t.Fatalf("Check(%s): %v", file, err)
		}
		if (s.Router != nil) != (want != KindGateway) || (s.Gateway != nil) != (want != KindRouter) {
			t.Errorf("Check(%s) gave router config %v, gateway config %v", file, s.Router != nil, s.Gateway != nil)
		}
	}
	if got := DetectKind([]byte("a: [")); got != KindRouter {
		t.Errorf("broken yaml detected as %s", got)
	}
}
