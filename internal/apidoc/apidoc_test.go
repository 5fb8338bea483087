package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

const (
	openAPIFile = "../../engine/router/openapi.json"
	apiDocFile  = "../../docs/api.md"
)

// TestAPIDocIsGenerated fails when docs/api.md is not what openapi.json gives, so that the
// API doc cannot drift from the document the router serves.
func TestAPIDocIsGenerated(t *testing.T) {
	src, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	want, err := render(src)
	if err != nil {
		t.Fatalf("rendering %s: %v", openAPIFile, err)
	}
	got, err := os.ReadFile(apiDocFile)
	if err != nil {
		t.Fatalf("%v; run `go run ./internal/apidoc` from the repository root", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/api.md is not generated from engine/router/openapi.json as it is now (%s); "+
			"run `go run ./internal/apidoc` from the repository root", firstDifference(got, want))
	}
}

// firstDifference says where two texts part, by line.
func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) && i < len(w); i++ {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d is %q, want %q", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("it has %d lines, want %d", len(g), len(w))
}

// TestRenderCoversTheDocument checks that every operation, schema, header and problem code
// of openapi.json has its place in docs/api.md.
func TestRenderCoversTheDocument(t *testing.T) {
	src, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	md, err := render(src)
	if err != nil {
		t.Fatal(err)
	}
	v, err := decodeJSON(src)
	if err != nil {
		t.Fatal(err)
	}
	doc := v.(object)
	var want []string
	for _, p := range doc.obj("paths") {
		for _, m := range p.val.(object) {
			if op, ok := m.val.(object); ok && m.key != "parameters" {
				want = append(want, "### "+strings.ToUpper(m.key)+" "+p.key, "Operation id `"+op.str("operationId")+"`")
			}
		}
	}
	comps := doc.obj("components")
	for _, s := range comps.obj("schemas") {
		want = append(want, "### "+s.key+"\n")
	}
	for _, h := range comps.obj("headers") {
		want = append(want, "### "+h.key+"\n")
	}
	for _, c := range comps.obj("schemas").obj("ErrorCode").list("enum") {
		want = append(want, "| `"+c.(string)+"` | ")
	}
	if len(want) < 10 {
		t.Fatalf("found only %d things to look for in %s", len(want), openAPIFile)
	}
	for _, w := range want {
		if !strings.Contains(string(md), w) {
			t.Errorf("docs/api.md lacks %q", w)
		}
	}
}

// minimalDoc is a document with one operation and the ErrorCode schema; %s goes into the
// schema of its 200 response.
const minimalDoc = `{
  "openapi": "3.1.0",
  "info": {"title": "t", "version": "1"},
  "paths": {"/x": {"get": {"operationId": "x", "summary": "X", "responses": {
    "200": {"description": "ok", "content": {"application/json": {"schema": %s}}},
    "404": {"description": "gone, nope: not here. gone: really.", "content": {"application/json": {"schema": {"type": "object"}}}}}}}},
  "components": {"schemas": {
    "ErrorCode": {"type": "string", "enum": ["gone", "nope"], "description": "Codes:\n\n- gone (404): Not here.\n- nope (404): No."},
    "Thing": {"type": "object", "properties": {"a": {"type": "string"}}}}}
}`

func TestRender(t *testing.T) {
	for _, c := range []struct {
		name, schema string
		want         string // in the output, or in the error when err is set
		err          bool
	}{
		{"a reference", `{"$ref": "#/components/schemas/Thing"}`, "| 200 OK | ok |  |  | [Thing](#thing) (`application/json`) |", false},
		{"codes in sentences and lists", `{"type": "object"}`, "| `gone`, `nope` |", false},
		{"a named schema's keys", `{"$ref": "#/components/schemas/Thing"}`, "| `a` | string |  |  |", false},
		{"an unknown keyword is an error", `{"anyOf": [{"type": "string"}]}`, `"anyOf" is not rendered`, true},
		{"a reference to nothing is an error", `{"$ref": "#/components/schemas/Nothing"}`, `"#/components/schemas/Nothing"`, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			md, err := render(fmt.Appendf(nil, minimalDoc, c.schema))
			switch {
			case c.err && err == nil:
				t.Fatalf("no error; want one with %q", c.want)
			case c.err && !strings.Contains(err.Error(), c.want):
				t.Fatalf("error %q; want one with %q", err, c.want)
			case !c.err && err != nil:
				t.Fatal(err)
			case !c.err && !strings.Contains(string(md), c.want):
				t.Fatalf("output lacks %q:\n%s", c.want, md)
			}
		})
	}
	// The enum and the description must list the same codes.
	bad := strings.Replace(minimalDoc, `"enum": ["gone", "nope"]`, `"enum": ["gone", "nope", "other"]`, 1)
	if _, err := render(fmt.Appendf(nil, bad, `{"type": "object"}`)); err == nil || !strings.Contains(err.Error(), "other") {
		t.Errorf("a code without a description line: %v", err)
	}
}

func TestEscaping(t *testing.T) {
	for _, c := range []struct{ in, prose, code string }{
		{"plain mail_from", "plain mail_from", "`plain mail_from`"},
		{"Bearer <key>", `Bearer \<key>`, "`Bearer <key>`"},
		{"bytes 0-1/* or __internal", `bytes 0-1/\* or \_\_internal`, "`bytes 0-1/* or __internal`"},
		{"a`b", "a\\`b", "`` a`b ``"},
	} {
		if got := prose(c.in); got != c.prose {
			t.Errorf("prose(%q) = %q, want %q", c.in, got, c.prose)
		}
		if got := code(c.in); got != c.code {
			t.Errorf("code(%q) = %q, want %q", c.in, got, c.code)
		}
	}
}
