// Command apidoc writes docs/api.md, the reference manual of the router's REST API, from
// engine/router/openapi.json, the OpenAPI document the router serves at /openapi.json and
// that engine/router's tests hold to the handlers. The manual is generated so that it
// says exactly what the served document says; a test in this package fails when it is stale.
//
// Run it from the repository root after changing openapi.json:
//
//	go run ./internal/apidoc
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	in := flag.String("in", "engine/router/openapi.json", "the OpenAPI `file` to read")
	out := flag.String("out", "docs/api.md", "the Markdown `file` to write")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintf(os.Stderr, "apidoc: %v\n", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	src, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	md, err := render(src)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	return os.WriteFile(out, md, 0o644)
}
