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
		r, _, err := Check(want, file, data)
		if err != nil {
			t.Errorf("Check(%s): %v", file, err)
		}
		if (r == nil) != (want == KindGateway) {
			t.Errorf("Check(%s) gave router config %v", file, r != nil)
		}
	}
	if got := DetectKind([]byte("a: [")); got != KindRouter {
		t.Errorf("broken yaml detected as %s", got)
	}
}
