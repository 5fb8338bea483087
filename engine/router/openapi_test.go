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
	"github.com/koukan/koukan/engine/httpauth"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/store/sqlite"
)

// These tests hold openapi.json to the code: the routes it documents are exactly those of the
// routes table and are served by the real handlers, its references resolve, its error codes
// are exactly those the package's handlers and the API key middleware in front of them can
// answer with, and every answer the middleware gives an operation is one it documents.

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
		served[rt.Method+" "+openAPIPath(rt.Pattern)] = true
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
// statuses: the code and status of every httpapi.Problem(...) call and httpapi.Error literal,
// and the codes its httpapi.Unrouted gives the mux's 404 and 405; and those of the
// transaction API's request errors it answers with (httpapi.RequestError, in txapi.go).
func openAPISourceCodes(t *testing.T) map[string]map[int]bool {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	const txAPI = "../httpapi/txapi.go"
	files = append(files, txAPI)
	statusOf := map[string]int{}
	for code := 100; code < 600; code++ {
		if text := http.StatusText(code); text != "" {
			statusOf["Status"+strings.NewReplacer(" ", "", "-", "", "'", "").Replace(text)] = code
		}
	}
	// The fields of httpapi.Unrouted, and the status each code is answered with.
	unrouted := map[string]int{"NotFound": http.StatusNotFound, "MethodNotAllowed": http.StatusMethodNotAllowed}
	codes := map[string]map[int]bool{}
	fset := token.NewFileSet()
	// add records code with its status, which is either given or an http.Status constant.
	add := func(code ast.Expr, st int, status ast.Expr) {
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
			return
		}
		if sel, _ := status.(*ast.SelectorExpr); st == 0 && sel != nil {
			st = statusOf[sel.Sel.Name]
		}
		if st == 0 {
			t.Errorf("%s: problem %q has a status that is not an http.Status constant", fset.Position(code.Pos()), c)
			return
		}
		if codes[c] == nil {
			codes[c] = map[int]bool{}
		}
		codes[c][st] = true
	}
	// httpapiName is the name of x if it is httpapi.<name> (or <name>, inside httpapi).
	inHTTPAPI := false
	httpapiName := func(x ast.Expr) string {
		if id, ok := x.(*ast.Ident); ok && inHTTPAPI {
			return id.Name
		}
		if sel, ok := x.(*ast.SelectorExpr); ok {
			if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "httpapi" {
				return sel.Sel.Name
			}
		}
		return ""
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		inHTTPAPI = name == txAPI
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if httpapiName(n.Fun) == "Problem" && len(n.Args) >= 2 {
					add(n.Args[1], 0, n.Args[0])
				}
			case *ast.CompositeLit:
				typ := httpapiName(n.Type)
				if typ != "Error" && typ != "Unrouted" {
					return true
				}
				var status, code ast.Expr
				for _, e := range n.Elts {
					kv, ok := e.(*ast.KeyValueExpr)
					if !ok {
						t.Errorf("%s: an httpapi.%s literal without field names", fset.Position(e.Pos()), typ)
						continue
					}
					key, _ := kv.Key.(*ast.Ident)
					switch {
					case key == nil:
					case typ == "Unrouted" && unrouted[key.Name] != 0:
						add(kv.Value, unrouted[key.Name], nil)
					case key.Name == "Status":
						status = kv.Value
					case key.Name == "Code":
						code = kv.Value
					}
				}
				if code != nil {
					add(code, 0, status)
				}
			}
			return true
		})
	}
	return codes
}

// TestOpenAPIErrorCodes checks that the ErrorCode schema lists exactly the codes the handlers
// and the API key middleware use, each with its status.
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
	for _, a := range openAPIAuthAnswers(t, doc) {
		if a.code != "" {
			if used[a.code] == nil {
				used[a.code] = map[int]bool{}
			}
			used[a.code][a.status] = true
		}
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

// openAPIServer runs the real handlers on an empty SQLite store, behind the API key
// middleware when there are keys.
func openAPIServer(t *testing.T, keys *httpauth.Keys) *httptest.Server {
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
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := New(cfg, st, steps(hold{}), log)
	h := svc.Handler()
	if keys != nil {
		h = httpauth.Middleware(httpauth.Options{Keys: keys, TxSender: svc.TxSender, Log: log})(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		svc.Shutdown(context.Background())
		srv.Close()
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return srv
}

// openAPIRequest sends a request, with an Authorization header unless auth is "", without
// following redirects; it returns the status, the header, the body and the problem code if
// the body is a problem.
func openAPIRequest(t *testing.T, method, url, auth string) (int, http.Header, []byte, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
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
	return res.StatusCode, res.Header, body, p.Error.Code
}

// TestOpenAPIServed checks GET /openapi.json on the real handlers, and that every documented
// operation reaches a handler of its own rather than the unknown-route fallback.
func TestOpenAPIServed(t *testing.T) {
	srv := openAPIServer(t, nil)
	status, header, body, _ := openAPIRequest(t, "GET", srv.URL+"/openapi.json", "")
	if ctype := header.Get("Content-Type"); status != http.StatusOK || ctype != "application/json" {
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
		status, _, body, code := openAPIRequest(t, o.method, srv.URL+wildcard.ReplaceAllString(o.path, "openapi-test"), "")
		if code == "unknown_route" {
			t.Errorf("%s is documented but not served: %d %s", o, status, body)
		}
	}
	// The probe above must be able to tell: an undocumented path is the fallback's, and an
	// undocumented method on a documented path is refused with 405.
	if _, _, body, code := openAPIRequest(t, "GET", srv.URL+"/transactions/openapi-test/elsewhere", ""); code != "unknown_route" {
		t.Errorf("GET of an unknown path: want unknown_route, got %s", body)
	}
	if status, _, body, code := openAPIRequest(t, "DELETE", srv.URL+"/transactions/openapi-test", ""); status != 405 || code != "method_not_allowed" {
		t.Errorf("DELETE /transactions/{tx}: want 405 method_not_allowed, got %d %s", status, body)
	}
}

// openAPIAnswer is what the API key middleware, in front of the real handlers, answered a
// caller for an operation.
type openAPIAnswer struct {
	op     openAPIOperation
	caller string
	status int
	header http.Header
	code   string
}

// openAPIAuthAnswers sends every documented operation, behind API keys, without a key, with
// a wrong one and with a key for another sender.
func openAPIAuthAnswers(t *testing.T, doc map[string]any) []openAPIAnswer {
	t.Helper()
	key, cred := httpauth.NewKey()
	keys, err := httpauth.ParseKeys("api_keys", []byte("sender someone-else "+cred+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv := openAPIServer(t, keys)
	wildcard := regexp.MustCompile(`\{[^{}]+\}`)
	var answers []openAPIAnswer
	for _, o := range openAPIOperations(t, doc) {
		for _, c := range []struct{ name, auth string }{
			{"no key", ""}, {"a wrong key", "Bearer koukan_wrong"}, {"another sender's key", "Bearer " + key},
		} {
			status, header, _, code := openAPIRequest(t, o.method, srv.URL+wildcard.ReplaceAllString(o.path, "openapi-test"), c.auth)
			answers = append(answers, openAPIAnswer{o, c.name, status, header, code})
		}
	}
	return answers
}

// TestOpenAPIAuth checks the bearer scheme, optional at the top level, and that every error
// the API key middleware answers an operation with is a response the operation documents,
// naming the problem code (and the WWW-Authenticate header of a 401).
func TestOpenAPIAuth(t *testing.T) {
	doc := openAPIDocument(t)
	components, _ := doc["components"].(map[string]any)
	schemes, _ := components["securitySchemes"].(map[string]any)
	var bearer []string
	for name, s := range schemes {
		if s, _ := s.(map[string]any); s["type"] == "http" && strings.EqualFold(fmt.Sprint(s["scheme"]), "bearer") {
			bearer = append(bearer, name)
		}
	}
	if len(bearer) != 1 {
		t.Fatalf("want one http bearer scheme in components.securitySchemes, have %v", schemes)
	}
	// Keys are optional, per deployment: one requirement is empty, the other the scheme's.
	security, _ := doc["security"].([]any)
	var optional, keyed bool
	for _, req := range security {
		req, _ := req.(map[string]any)
		if len(req) == 0 {
			optional = true
		}
		for name, scopes := range req {
			if schemes[name] == nil {
				t.Errorf("security names %q, which is not in components.securitySchemes", name)
			}
			if scopes, ok := scopes.([]any); !ok || len(scopes) != 0 {
				t.Errorf("security: %q has scopes %v, want []", name, scopes)
			}
			keyed = keyed || name == bearer[0]
		}
	}
	if !optional || !keyed || len(security) != 2 {
		t.Errorf("security = %v, want [{}, {%q: []}]", security, bearer[0])
	}

	seen := map[int]bool{}
	for _, a := range openAPIAuthAnswers(t, doc) {
		if a.caller != "another sender's key" && a.status != http.StatusUnauthorized {
			t.Errorf("%s with %s: %d, want 401", a.op, a.caller, a.status)
		}
		if a.status < 400 {
			continue
		}
		seen[a.status] = true
		documented, ok := a.op.op["responses"].(map[string]any)[strconv.Itoa(a.status)]
		if !ok {
			t.Errorf("%s with %s: answered %d (%s), which it does not document", a.op, a.caller, a.status, a.code)
			continue
		}
		res := openAPIDeref(t, doc, documented)
		if d, _ := res["description"].(string); a.code == "" || !strings.Contains(d, a.code+":") {
			t.Errorf("%s: the %d response does not name %q, which %s gets: %q", a.op, a.status, a.code, a.caller, d)
		}
		if a.status == http.StatusUnauthorized {
			headers, _ := res["headers"].(map[string]any)
			if headers["WWW-Authenticate"] == nil || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("%s: WWW-Authenticate documented %v, answered %q", a.op, headers["WWW-Authenticate"], a.header.Get("WWW-Authenticate"))
			}
		}
	}
	if !seen[http.StatusForbidden] {
		t.Error("no operation answered another sender's key with 403: the probe is broken")
	}
}
