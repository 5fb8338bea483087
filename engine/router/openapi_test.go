package router

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/store/sqlite"
)

// These tests hold openapi.json to the code: the routes it documents are exactly those of the
// routes table and are served by the real handlers, its references resolve, and its error
// codes are exactly those the package's handlers can answer with.

// openAPIMethods are the operation keys of an OpenAPI path item.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// openAPIDocument decodes the embedded document.
func openAPIDocument(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	return doc
}

// openAPIOperation is one documented operation.
type openAPIOperation struct {
	method, path string
	op           map[string]any
	pathParams   []any // the path item's parameters, shared by its operations
}

func (o openAPIOperation) String() string { return o.method + " " + o.path }

// openAPIOperations lists the document's operations in path and method order.
func openAPIOperations(t *testing.T, doc map[string]any) []openAPIOperation {
	t.Helper()
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatal("openapi.json has no paths object")
	}
	var ops []openAPIOperation
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		item, ok := paths[p].(map[string]any)
		if !ok {
			t.Fatalf("paths[%q] is not an object", p)
		}
		shared, _ := item["parameters"].([]any)
		for _, m := range openAPIMethods {
			if op, ok := item[m].(map[string]any); ok {
				ops = append(ops, openAPIOperation{strings.ToUpper(m), p, op, shared})
			}
		}
	}
	return ops
}

// openAPIResolve follows a local reference ("#/a/b~1c") to the value it names.
func openAPIResolve(doc map[string]any, ref string) (any, error) {
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("$ref %q is not a reference within the document", ref)
	}
	var cur any = doc
	for _, tok := range strings.Split(ptr, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("$ref %q: no %q", ref, tok)
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("$ref %q: no item %q", ref, tok)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("$ref %q: cannot descend into %q", ref, tok)
		}
	}
	return cur, nil
}

// openAPIDeref resolves v if it is a reference object.
func openAPIDeref(t *testing.T, doc map[string]any, v any) map[string]any {
	t.Helper()
	m, _ := v.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		r, err := openAPIResolve(doc, ref)
		if err != nil {
			t.Fatal(err)
		}
		m, _ = r.(map[string]any)
	}
	if m == nil {
		t.Fatalf("expected an object, got %v", v)
	}
	return m
}

// openAPIPath turns a ServeMux pattern's path into an OpenAPI path: wildcards are already
// {name}; a rest wildcard {name...} becomes {name} and the end anchor {$} goes.
func openAPIPath(pattern string) string {
	p := strings.ReplaceAll(pattern, "{$}", "")
	return regexp.MustCompile(`\{([^{}]+)\.\.\.\}`).ReplaceAllString(p, "{$1}")
}

func TestOpenAPIDocument(t *testing.T) {
	doc := openAPIDocument(t)
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", doc["openapi"])
	}
	info, _ := doc["info"].(map[string]any)
	if info["title"] == nil || info["version"] == nil {
		t.Errorf("info needs a title and a version: %v", info)
	}
	onDisk, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, openAPIDoc) {
		t.Error("the embedded document differs from openapi.json")
	}
	var compact, indented bytes.Buffer
	if err := json.Compact(&compact, openAPIDoc); err != nil {
		t.Fatal(err)
	}
	if err := json.Indent(&indented, compact.Bytes(), "", "  "); err != nil {
		t.Fatal(err)
	}
	indented.WriteByte('\n')
	if !bytes.Equal(indented.Bytes(), openAPIDoc) {
		t.Error("openapi.json is not indented with 2 spaces, one member per line (reformat it, e.g. jq --indent 2 .)")
	}
}

// TestOpenAPIRoutes checks that the document describes exactly the routes table.
func TestOpenAPIRoutes(t *testing.T) {
	doc := openAPIDocument(t)
	documented := map[string]bool{}
	for _, o := range openAPIOperations(t, doc) {
		documented[o.String()] = true
	}
	served := map[string]bool{}
	for _, rt := range routes {
		served[rt.method+" "+openAPIPath(rt.pattern)] = true
	}
	for _, r := range slices.Sorted(maps.Keys(served)) {
		if !documented[r] {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(documented)) {
		if !served[r] {
			t.Errorf("openapi.json documents %s, which is not a route", r)
		}
	}
}

// TestOpenAPIOperations checks each operation: an id, responses, and path parameters that
// are those of its path.
func TestOpenAPIOperations(t *testing.T) {
	doc := openAPIDocument(t)
	ids := map[string]string{}
	wildcard := regexp.MustCompile(`\{([^{}]+)\}`)
	for _, o := range openAPIOperations(t, doc) {
		id, _ := o.op["operationId"].(string)
		if id == "" {
			t.Errorf("%s has no operationId", o)
		} else if prev, dup := ids[id]; dup {
			t.Errorf("%s and %s share operationId %q", prev, o, id)
		}
		ids[id] = o.String()

		responses, _ := o.op["responses"].(map[string]any)
		if len(responses) == 0 {
			t.Errorf("%s documents no response", o)
		}
		for code, r := range responses {
			if code != "default" && !regexp.MustCompile(`^[1-5][0-9][0-9]$`).MatchString(code) {
				t.Errorf("%s: response key %q is not a status code", o, code)
			}
			if d, _ := openAPIDeref(t, doc, r)["description"].(string); d == "" {
				t.Errorf("%s: response %s has no description", o, code)
			}
		}

		want := map[string]bool{}
		for _, m := range wildcard.FindAllStringSubmatch(o.path, -1) {
			want[m[1]] = true
		}
		declared := map[string]bool{}
		opParams, _ := o.op["parameters"].([]any)
		for _, p := range append(slices.Clone(o.pathParams), opParams...) {
			param := openAPIDeref(t, doc, p)
			name, _ := param["name"].(string)
			if param["in"] != "path" {
				continue
			}
			if param["required"] != true {
				t.Errorf("%s: path parameter %q is not required", o, name)
			}
			if !want[name] {
				t.Errorf("%s: path parameter %q is not in the path", o, name)
			}
			declared[name] = true
		}
		for name := range want {
			if !declared[name] {
				t.Errorf("%s: path parameter %q is not declared", o, name)
			}
		}
	}
}

// TestOpenAPIRefs checks that every $ref points within the document at something that exists.
func TestOpenAPIRefs(t *testing.T) {
	doc := openAPIDocument(t)
	n := 0
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"]; ok {
				n++
				s, _ := ref.(string)
				if _, err := openAPIResolve(doc, s); err != nil {
					t.Errorf("%s: %v", path, err)
				}
			}
			for k, e := range v {
				walk(path+"/"+k, e)
			}
		case []any:
			for i, e := range v {
				walk(path+"/"+strconv.Itoa(i), e)
			}
		}
	}
	walk("#", doc)
	if n == 0 {
		t.Error("no $ref found; the walk is broken")
	}
}

// openAPISourceCodes finds the problem codes the package's handlers use, with their HTTP
// statuses: the code and status of every problem(...) call and apiError literal.
func openAPISourceCodes(t *testing.T) map[string]map[int]bool {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	statusOf := map[string]int{}
	for code := 100; code < 600; code++ {
		if text := http.StatusText(code); text != "" {
			statusOf["Status"+strings.NewReplacer(" ", "", "-", "", "'", "").Replace(text)] = code
		}
	}
	codes := map[string]map[int]bool{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			var status, code ast.Expr
			switch n := n.(type) {
			case *ast.FuncDecl:
				return n.Name.Name != "problem" // its literal passes its parameters on
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "problem" && len(n.Args) >= 2 {
					status, code = n.Args[0], n.Args[1]
				}
			case *ast.CompositeLit:
				if id, ok := n.Type.(*ast.Ident); ok && id.Name == "apiError" {
					for i, e := range n.Elts {
						kv, _ := e.(*ast.KeyValueExpr)
						var key string
						if kv != nil {
							if id, ok := kv.Key.(*ast.Ident); ok {
								key = id.Name
							}
						}
						switch {
						case key == "status":
							status = kv.Value
						case key == "code":
							code = kv.Value
						case kv == nil && i == 0:
							status = e
						case kv == nil && i == 1:
							code = e
						}
					}
				}
			}
			if code == nil {
				return true
			}
			var c string
			lit, ok := code.(*ast.BasicLit)
			ok = ok && lit.Kind == token.STRING
			if ok {
				var err error
				c, err = strconv.Unquote(lit.Value)
				ok = err == nil
			}
			if !ok {
				t.Errorf("%s: a problem code that is not a string literal", fset.Position(code.Pos()))
				return true
			}
			sel, _ := status.(*ast.SelectorExpr)
			st := 0
			if sel != nil {
				st = statusOf[sel.Sel.Name]
			}
			if st == 0 {
				t.Errorf("%s: problem %q has a status that is not an http.Status constant", fset.Position(status.Pos()), c)
				return true
			}
			if codes[c] == nil {
				codes[c] = map[int]bool{}
			}
			codes[c][st] = true
			return true
		})
	}
	return codes
}

// TestOpenAPIErrorCodes checks that the ErrorCode schema lists exactly the codes the handlers
// use, each with its status.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := openAPIDocument(t)
	schema := openAPIDeref(t, doc, map[string]any{"$ref": "#/components/schemas/ErrorCode"})
	documented := map[string]bool{}
	enum, _ := schema["enum"].([]any)
	for _, c := range enum {
		s, _ := c.(string)
		documented[s] = true
	}
	desc, _ := schema["description"].(string)
	used := openAPISourceCodes(t)
	if len(used) == 0 {
		t.Fatal("found no problem codes in the package's source")
	}
	for _, c := range slices.Sorted(maps.Keys(used)) {
		if !documented[c] {
			t.Errorf("problem code %q is not in ErrorCode's enum", c)
		}
		for st := range used[c] {
			if !strings.Contains(desc, fmt.Sprintf("- %s (%d):", c, st)) {
				t.Errorf("ErrorCode's description does not list %q with status %d", c, st)
			}
		}
	}
	for _, c := range slices.Sorted(maps.Keys(documented)) {
		if used[c] == nil {
			t.Errorf("ErrorCode lists %q, which no handler uses", c)
		}
	}
}

// openAPIConfig is a minimal router.yaml; %s is the SQLite database path.
const openAPIConfig = `
rest_listener:
  addr: ["127.0.0.1", 1]
  session_uri: http://127.0.0.1:1
storage:
  url: sqlite:///%s
sender:
  - name: submission
    output_chain: submission
endpoint:
  - name: submission
    chain:
      - filter: rest_output
        static_endpoint: http://localhost:1
`

// openAPIServer runs the real handlers on an empty SQLite store.
func openAPIServer(t *testing.T) *httptest.Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.db")
	cfg, _, err := config.ParseRouter("router.yaml", fmt.Appendf(nil, openAPIConfig, path))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), path, store.Options{SessionURI: cfg.RestListener.SessionURI})
	if err != nil {
		t.Fatal(err)
	}
	svc := New(cfg, st, steps(hold{}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(func() {
		svc.Shutdown(context.Background())
		srv.Close()
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return srv
}

// openAPIRequest sends a request without following redirects; it returns the status, the
// Content-Type, the body and the problem code if the body is a problem.
func openAPIRequest(t *testing.T, method, url string) (int, string, []byte, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var p problemJSON
	_ = json.Unmarshal(body, &p)
	return res.StatusCode, res.Header.Get("Content-Type"), body, p.Error.Code
}

// TestOpenAPIServed checks GET /openapi.json on the real handlers, and that every documented
// operation reaches a handler of its own rather than the unknown-route fallback.
func TestOpenAPIServed(t *testing.T) {
	srv := openAPIServer(t)
	status, ctype, body, _ := openAPIRequest(t, "GET", srv.URL+"/openapi.json")
	if status != http.StatusOK || ctype != "application/json" {
		t.Errorf("GET /openapi.json: %d %q", status, ctype)
	}
	onDisk, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, onDisk) {
		t.Error("GET /openapi.json does not serve openapi.json as it is")
	}

	wildcard := regexp.MustCompile(`\{[^{}]+\}`)
	for _, o := range openAPIOperations(t, openAPIDocument(t)) {
		status, _, body, code := openAPIRequest(t, o.method, srv.URL+wildcard.ReplaceAllString(o.path, "openapi-test"))
		if code == "unknown_route" {
			t.Errorf("%s is documented but not served: %d %s", o, status, body)
		}
	}
	// The probe above must be able to tell: an undocumented path is the fallback's, and an
	// undocumented method on a documented path is refused with 405.
	if _, _, body, code := openAPIRequest(t, "GET", srv.URL+"/transactions/openapi-test/elsewhere"); code != "unknown_route" {
		t.Errorf("GET of an unknown path: want unknown_route, got %s", body)
	}
	if status, _, body, code := openAPIRequest(t, "DELETE", srv.URL+"/transactions/openapi-test"); status != 405 || code != "method_not_allowed" {
		t.Errorf("DELETE /transactions/{tx}: want 405 method_not_allowed, got %d %s", status, body)
	}
}
