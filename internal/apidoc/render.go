package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// render turns an OpenAPI 3.1 document into the Markdown of docs/api.md. It renders every
// keyword the document uses and fails on any it does not know, so that nothing the
// document says can be left out of docs/api.md without a word.
func render(src []byte) ([]byte, error) {
	v, err := decodeJSON(src)
	if err != nil {
		return nil, err
	}
	doc, ok := v.(object)
	if !ok {
		return nil, fmt.Errorf("the document is not a JSON object")
	}
	r := &renderer{doc: doc, anchors: map[string]string{}, slugs: map[string]bool{}}
	r.document()
	if r.err != nil {
		return nil, r.err
	}
	return []byte(r.b.String()), nil
}

type renderer struct {
	doc object
	b   strings.Builder
	err error // the first problem; rendering goes on, its output is dropped
	// anchors are the fragment of every heading a link may point at, by kind and name
	// ("schema:Mailbox"); slugs are those taken.
	anchors map[string]string
	slugs   map[string]bool
	codes   []errorCode
	codeRE  *regexp.Regexp // finds "code:" and "code, code:" at the start of a sentence
}

// errorCode is one problem code, with its status and meaning, from the ErrorCode schema.
type errorCode struct {
	code, status, meaning string
}

func (r *renderer) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

// keys fails if o has a key that is not in known, which docs/api.md would leave out.
func (r *renderer) keys(where string, o object, known ...string) {
	for _, m := range o {
		if !slices.Contains(known, m.key) {
			r.fail("%s: %q is not rendered (teach internal/apidoc about it)", where, m.key)
		}
	}
}

// operation is one method of one path.
type operation struct {
	method, path string
	op           object
	shared       []any // the path item's parameters
}

func (o operation) String() string { return o.method + " " + o.path }

var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// operations lists the document's operations in its own order.
func (r *renderer) operations() []operation {
	var ops []operation
	for _, p := range r.doc.obj("paths") {
		item, _ := p.val.(object)
		r.keys("paths "+p.key, item, append([]string{"parameters"}, methods...)...)
		for _, m := range item {
			if op, ok := m.val.(object); ok && m.key != "parameters" {
				ops = append(ops, operation{strings.ToUpper(m.key), p.key, op, item.list("parameters")})
			}
		}
	}
	return ops
}

func (r *renderer) components(kind string) object { return r.doc.obj("components").obj(kind) }

// resolve follows a reference to a component of the given kind; anything else is itself.
func (r *renderer) resolve(v any, kind string) (object, string) {
	o, _ := v.(object)
	ref := o.str("$ref")
	if ref == "" {
		return o, ""
	}
	name, ok := strings.CutPrefix(ref, "#/components/"+kind+"/")
	target := r.components(kind).obj(name)
	if !ok || target == nil {
		r.fail("$ref %q: want an existing #/components/%s/...", ref, kind)
	}
	return target, name
}

func (r *renderer) document() {
	r.keys("the document", r.doc, "openapi", "info", "security", "paths", "components")
	r.keys("components", r.doc.obj("components"), "schemas", "parameters", "headers", "responses", "securitySchemes")
	info := r.doc.obj("info")
	r.keys("info", info, "title", "version", "description")
	if v := r.doc.str("openapi"); !strings.HasPrefix(v, "3.1.") {
		r.fail("openapi %q: want 3.1.x", v)
	}
	r.readErrorCodes()
	ops := r.operations()
	r.registerAnchors(ops)

	r.line("# REST API reference")
	r.line("")
	r.line("<!-- Generated from engine/router/openapi.json by `go run ./internal/apidoc`; do not edit. -->")
	r.line("")
	r.para("This is the reference of the router's REST API, generated from the OpenAPI " + r.doc.str("openapi") +
		" document every router serves at `GET /openapi.json` (`engine/router/openapi.json` in the repository). " +
		"[rest.md](rest.md) is the manual: the model, and how to use it, with examples.")
	r.para(fmt.Sprintf("**%s**, API version %s.", prose(info.str("title")), prose(info.str("version"))))
	r.para(prose(info.str("description")))
	for _, s := range []string{"Authentication", "Operations", "Errors", "Response headers", "Schemas"} {
		r.line(fmt.Sprintf("- [%s](#%s)", s, r.anchors["section:"+s]))
	}
	r.line("")

	r.security()
	r.heading(2, "Operations")
	r.table([]string{"method", "path", "summary"}, func(row func(...string)) {
		for _, o := range ops {
			row(o.method, fmt.Sprintf("[%s](#%s)", code(o.path), r.anchors["op:"+o.String()]), prose(o.op.str("summary")))
		}
	})
	for _, o := range ops {
		r.operation(o)
	}
	r.errors()
	r.heading(2, "Response headers")
	for _, h := range r.components("headers") {
		r.header(h.key, h.val)
	}
	r.heading(2, "Schemas")
	for _, s := range r.components("schemas") {
		r.heading(3, s.key)
		if s.key == "ErrorCode" {
			o, _ := s.val.(object)
			r.keys("schema ErrorCode", o, "type", "description", "enum")
			r.para(fmt.Sprintf("A string: one of the problem codes listed under [Errors](#%s).", r.anchors["section:Errors"]))
			continue
		}
		r.schema("schema "+s.key, s.val)
	}
}

// registerAnchors computes the fragment of every heading, in the order they are written,
// as GitHub does: lower case, punctuation dropped, spaces to hyphens.
func (r *renderer) registerAnchors(ops []operation) {
	add := func(key, heading string) {
		var b strings.Builder
		for _, c := range strings.ToLower(heading) {
			switch {
			case c == ' ':
				b.WriteByte('-')
			case c == '-' || c == '_' || unicode.IsLetter(c) || unicode.IsDigit(c):
				b.WriteRune(c)
			}
		}
		slug := b.String()
		if r.slugs[slug] {
			r.fail("two headings have the anchor #%s (the second is %s)", slug, key)
		}
		r.slugs[slug], r.anchors[key] = true, slug
	}
	add("section:Authentication", "Authentication")
	add("section:Operations", "Operations")
	for _, o := range ops {
		add("op:"+o.String(), o.String())
	}
	add("section:Errors", "Errors")
	add("section:Response headers", "Response headers")
	for _, h := range r.components("headers") {
		add("header:"+h.key, h.key)
	}
	add("section:Schemas", "Schemas")
	for _, s := range r.components("schemas") {
		add("schema:"+s.key, s.key)
	}
}

func (r *renderer) security() {
	r.heading(2, "Authentication")
	schemes := r.components("securitySchemes")
	if reqs := r.doc.list("security"); len(reqs) > 0 {
		r.para("A request is served with any one of: " + r.requirements(reqs) + ".")
	} else {
		r.para("Requests need no credentials.")
	}
	if len(schemes) == 0 {
		return
	}
	r.table([]string{"scheme", "type", "description"}, func(row func(...string)) {
		for _, s := range schemes {
			o, _ := s.val.(object)
			r.keys("security scheme "+s.key, o, "type", "scheme", "description")
			typ := o.str("type")
			if typ != "http" {
				r.fail("security scheme %s: type %q is not rendered", s.key, typ)
			}
			row(code(s.key), "HTTP "+code(o.str("scheme")), prose(o.str("description")))
		}
	})
}

// requirements describes a list of security requirements, any one of which is enough.
func (r *renderer) requirements(reqs []any) string {
	var alts []string
	for _, req := range reqs {
		o, _ := req.(object)
		if len(o) == 0 {
			alts = append(alts, "no credentials")
			continue
		}
		var names []string
		for _, m := range o {
			if r.components("securitySchemes").get(m.key) == nil {
				r.fail("security: %q is not a security scheme", m.key)
			}
			if scopes, _ := m.val.([]any); len(scopes) > 0 {
				r.fail("security: the scopes of %q are not rendered", m.key)
			}
			names = append(names, "the "+code(m.key)+" scheme")
		}
		alts = append(alts, strings.Join(names, " and "))
	}
	return strings.Join(alts, "; ")
}

func (r *renderer) operation(o operation) {
	r.keys(o.String(), o.op, "operationId", "summary", "description", "parameters", "requestBody", "responses", "security")
	r.heading(3, o.String())
	r.para(fmt.Sprintf("**%s.** Operation id %s.", prose(strings.TrimSuffix(o.op.str("summary"), ".")), code(o.op.str("operationId"))))
	r.para(prose(o.op.str("description")))
	if reqs, ok := o.op.get("security").([]any); ok {
		r.para("Served with any one of: " + r.requirements(reqs) + ".")
	}
	r.parameters(o)
	r.requestBody(o)
	r.responses(o)
}

// parameters lists the path item's parameters with the operation's, which replace those of
// the same name and location.
func (r *renderer) parameters(o operation) {
	var params []object
	index := map[string]int{}
	for _, v := range append(slices.Clone(o.shared), o.op.list("parameters")...) {
		p, _ := r.resolve(v, "parameters")
		r.keys(o.String()+" parameter "+p.str("name"), p, "name", "in", "required", "description", "schema")
		id := p.str("in") + ":" + p.str("name")
		if i, ok := index[id]; ok {
			params[i] = p
			continue
		}
		index[id] = len(params)
		params = append(params, p)
	}
	if len(params) == 0 {
		return
	}
	r.para("**Parameters**")
	r.table([]string{"name", "in", "type", "required", "description"}, func(row func(...string)) {
		for _, p := range params {
			schema := p.get("schema")
			row(code(p.str("name")), p.str("in"), r.nested(schema), yes(p.get("required") == true),
				join(prose(p.str("description")), r.notes(schema, true)))
		}
	})
}

func (r *renderer) requestBody(o operation) {
	v := o.op.get("requestBody")
	if v == nil {
		return
	}
	rb, _ := r.resolve(v, "requestBodies")
	r.keys(o.String()+" request body", rb, "required", "description", "content")
	need := "optional"
	if rb.get("required") == true {
		need = "required"
	}
	r.para(fmt.Sprintf("**Request body** (%s). %s", need, prose(rb.str("description"))))
	content := rb.obj("content")
	r.table([]string{"content type", "schema"}, func(row func(...string)) {
		for _, c := range content {
			m, _ := c.val.(object)
			row(code(c.key), join(r.nested(m.get("schema")), r.notes(m.get("schema"), true)))
		}
	})
	r.mediaExamples(o.String()+" request body", "of the request body", content)
}

func (r *renderer) responses(o operation) {
	type example struct {
		status  string
		content object
	}
	var examples []example
	r.para("**Responses**")
	r.table([]string{"status", "meaning", "problem codes", "headers", "body"}, func(row func(...string)) {
		for _, s := range o.op.obj("responses") {
			res, _ := r.resolve(s.val, "responses")
			r.keys(o.String()+" response "+s.key, res, "description", "headers", "content")
			status := s.key
			if n, err := strconv.Atoi(s.key); err == nil && http.StatusText(n) != "" {
				status += " " + http.StatusText(n)
			}
			var headers, bodies []string
			for _, h := range res.obj("headers") {
				if _, name := r.resolve(h.val, "headers"); name != "" {
					headers = append(headers, fmt.Sprintf("[%s](#%s)", code(h.key), r.anchors["header:"+name]))
				} else {
					r.fail("%s response %s: header %s: only references to components/headers are rendered", o, s.key, h.key)
				}
			}
			for _, c := range res.obj("content") {
				m, _ := c.val.(object)
				bodies = append(bodies, join(r.nested(m.get("schema")), "("+code(c.key)+")", r.notes(m.get("schema"), true)))
			}
			if len(bodies) == 0 {
				bodies = []string{"none"}
			}
			desc := res.str("description")
			row(status, prose(desc), strings.Join(r.problemCodes(desc), ", "), strings.Join(headers, ", "), strings.Join(bodies, ", "))
			examples = append(examples, example{s.key, res.obj("content")})
		}
	})
	for _, e := range examples {
		r.mediaExamples(o.String()+" response "+e.status, "of the "+e.status+" response", e.content)
	}
}

// mediaExamples writes the examples of each media type of a request or response body.
func (r *renderer) mediaExamples(where, of string, content object) {
	for _, c := range content {
		m, _ := c.val.(object)
		r.keys(where+" "+c.key, m, "schema", "example", "examples")
		if ex := m.get("example"); ex != nil {
			r.para("Example " + of + ":")
			r.jsonBlock(ex)
		}
		for _, e := range m.obj("examples") {
			eo, _ := e.val.(object)
			r.keys(where+" example "+e.key, eo, "summary", "value")
			r.para(fmt.Sprintf("Example %s: %s.", code(e.key), prose(strings.TrimSuffix(eo.str("summary"), "."))))
			r.jsonBlock(eo.get("value"))
		}
	}
}

var codeLine = regexp.MustCompile(`^- ([a-z0-9_]+) \(([0-9]{3})\): (.+)$`)

// readErrorCodes takes the problem codes from the ErrorCode schema: its enum, and its
// description, an introduction and then one "- code (status): meaning" line per code.
func (r *renderer) readErrorCodes() {
	s := r.components("schemas").obj("ErrorCode")
	if s == nil {
		r.fail("no ErrorCode schema: docs/api.md lists the problem codes from it")
		return
	}
	var enum []string
	for _, v := range s.list("enum") {
		c, _ := v.(string)
		enum = append(enum, c)
	}
	for _, l := range strings.Split(s.str("description"), "\n") {
		m := codeLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if !slices.Contains(enum, m[1]) {
			r.fail("ErrorCode: %s is described but not in the enum", m[1])
		}
		r.codes = append(r.codes, errorCode{m[1], m[2], m[3]})
	}
	var alt []string
	for _, c := range enum {
		if !slices.ContainsFunc(r.codes, func(e errorCode) bool { return e.code == c }) {
			r.fail("ErrorCode: %s is in the enum but has no \"- %s (status): meaning\" line in the description", c, c)
		}
		alt = append(alt, regexp.QuoteMeta(c))
	}
	one := `(?:` + strings.Join(alt, "|") + `)`
	r.codeRE = regexp.MustCompile(`(?:^|\.\s+)(` + one + `(?:,\s*` + one + `)*):`)
}

// problemCodes finds the codes a response description gives, each sentence of which starts
// with the codes it explains: "invalid_json, invalid_field: not a valid transaction."
func (r *renderer) problemCodes(desc string) []string {
	var out []string
	for _, m := range r.codeRE.FindAllStringSubmatch(desc, -1) {
		for _, c := range strings.Split(m[1], ",") {
			if c = code(strings.TrimSpace(c)); !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}

func (r *renderer) errors() {
	r.heading(2, "Errors")
	s := r.components("schemas").obj("ErrorCode")
	var intro []string
	for _, l := range strings.Split(s.str("description"), "\n") {
		if l = strings.TrimSpace(l); l != "" && !codeLine.MatchString(l) {
			intro = append(intro, l)
		}
	}
	lead := "Errors are answered with a JSON body"
	if r.anchors["schema:Problem"] != "" {
		lead += fmt.Sprintf(", the [Problem](#%s) schema", r.anchors["schema:Problem"])
	}
	r.para(lead + fmt.Sprintf(", whose code ([ErrorCode](#%s)) is one of these.", r.anchors["schema:ErrorCode"]))
	r.para(prose(strings.Join(intro, " ")))
	r.table([]string{"code", "status", "meaning"}, func(row func(...string)) {
		for _, c := range r.codes {
			status := c.status
			if n, _ := strconv.Atoi(c.status); http.StatusText(n) != "" {
				status += " " + http.StatusText(n)
			}
			row(code(c.code), status, prose(c.meaning))
		}
	})
}

func (r *renderer) header(name string, v any) {
	h, _ := v.(object)
	r.keys("header "+name, h, "description", "schema")
	r.heading(3, name)
	r.para(prose(h.str("description")))
	r.para(join("Type: "+r.nested(h.get("schema"))+".", r.notes(h.get("schema"), true)))
}

// schemaKeys are the JSON Schema keywords docs/api.md renders.
var schemaKeys = []string{"$ref", "type", "description", "properties", "required", "additionalProperties", "items",
	"prefixItems", "minItems", "minimum", "maximum", "pattern", "minLength", "maxProperties", "examples", "const",
	"enum", "default", "format", "not", "oneOf", "dependentRequired", "contentMediaType"}

// schema writes a named schema: its description, its type, its keys or items, examples.
func (r *renderer) schema(where string, v any) {
	s, _ := v.(object)
	r.keys(where, s, schemaKeys...)
	r.para(prose(s.str("description")))
	switch {
	case s.has("oneOf"):
		r.para("Exactly one of:")
		for _, alt := range s.list("oneOf") {
			a, _ := alt.(object)
			if a.has("$ref") || !a.has("properties") {
				r.line("- " + r.typeOf(a))
				continue
			}
			r.keys(where+" alternative", a, schemaKeys...)
			head := "an object:"
			if a.get("additionalProperties") == false {
				head, a = "an object with only these keys:", a.without("additionalProperties")
			}
			r.line("- " + join(head, r.notes(a, false)))
			required := requiredSet(a)
			for _, p := range a.obj("properties") {
				what := r.typeOf(p.val)
				if required[p.key] {
					what += ", required"
				}
				r.line(fmt.Sprintf("  - %s (%s): %s", code(p.key), what, join(prose(description(p.val)), r.notes(p.val, true))))
			}
		}
		r.line("")
	case s.has("properties"):
		r.para(join("Type: object.", r.notes(s, false)))
		r.table([]string{"key", "type", "required", "description"}, func(row func(...string)) { r.properties(where, "", s, row) })
	case s.has("prefixItems"):
		r.para(join("Type: "+r.typeOf(s)+".", r.notes(s, false)))
		r.table([]string{"item", "type", "description"}, func(row func(...string)) {
			for i, item := range s.list("prefixItems") {
				row(strconv.Itoa(i), r.typeOf(item), join(prose(description(item)), r.notes(item, true)))
			}
		})
	default:
		r.para(join("Type: "+r.typeOf(s)+".", r.notes(s, false)))
	}
	for _, ex := range s.list("examples") {
		r.para("Example:")
		r.jsonBlock(ex)
	}
}

// properties writes a row per property of s, and rows for the keys of a property that is
// an object of its own, named by their path (error.code).
func (r *renderer) properties(where, prefix string, s object, row func(...string)) {
	required := requiredSet(s)
	for _, p := range s.obj("properties") {
		po, _ := p.val.(object)
		r.keys(where+"."+prefix+p.key, po, schemaKeys...)
		row(code(prefix+p.key), r.typeOf(po), yes(required[p.key]), join(prose(po.str("description")), r.notes(po, true)))
		if po.has("properties") && !po.has("$ref") {
			r.properties(where, prefix+p.key+".", po, row)
		}
	}
}

func requiredSet(s object) map[string]bool {
	out := map[string]bool{}
	for _, k := range s.list("required") {
		if k, ok := k.(string); ok {
			out[k] = true
		}
	}
	return out
}

func description(v any) string {
	o, _ := v.(object)
	return o.str("description")
}

// typeOf names the type of a schema in a few words, linking to named schemas.
func (r *renderer) typeOf(v any) string {
	switch v := v.(type) {
	case nil:
		return "any"
	case bool:
		if v {
			return "any"
		}
		return "nothing"
	}
	s, ok := v.(object)
	if !ok {
		r.fail("a schema that is not an object: %v", v)
		return ""
	}
	r.keys("the schema "+clip(jsonText(s)), s, schemaKeys...)
	if ref := s.str("$ref"); ref != "" {
		if _, name := r.resolve(s, "schemas"); name != "" {
			return fmt.Sprintf("[%s](#%s)", name, r.anchors["schema:"+name])
		}
		return ""
	}
	if alts := s.list("oneOf"); alts != nil {
		var names []string
		for _, a := range alts {
			names = append(names, r.nested(a))
		}
		return "one of " + strings.Join(names, ", ")
	}
	if s.has("const") {
		return code(literal(s.get("const")))
	}
	t, ok := s.get("type").(string)
	if !ok && s.has("type") {
		r.fail("type %v: only a single type is rendered", s.get("type"))
	}
	if enum := s.list("enum"); enum != nil {
		var vals []string
		for _, e := range enum {
			vals = append(vals, code(literal(e)))
		}
		return t + ", one of " + strings.Join(vals, ", ")
	}
	switch t {
	case "array":
		if items := s.list("prefixItems"); items != nil {
			var names []string
			for _, it := range items {
				names = append(names, r.nested(it))
			}
			return "[" + strings.Join(names, ", ") + "]"
		}
		if !s.has("items") {
			return "array"
		}
		return "array of " + r.nested(s.get("items"))
	case "object":
		if ap, ok := s.get("additionalProperties").(object); ok {
			return "object, each value " + r.nested(ap)
		}
	case "":
		if not := s.obj("not"); len(not) == 1 && not.str("type") == "null" {
			return "any JSON but null"
		}
		return "any"
	case "string":
		if m := s.str("contentMediaType"); m != "" {
			t = "bytes (" + code(m) + ")"
		}
	}
	if f := s.str("format"); f != "" {
		t += " (" + f + ")"
	}
	return t
}

// nested is typeOf for a schema inside another where only its type is shown: an object
// with keys of its own there would lose them, so it must be a named schema.
func (r *renderer) nested(v any) string {
	if s, _ := v.(object); s.has("properties") && !s.has("$ref") {
		r.fail("the schema %s: an object with properties inside an array, a oneOf or a body is not rendered; make it a named schema", clip(jsonText(s)))
	}
	return r.typeOf(v)
}

// clip shortens a text for a message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// notes says in words what a schema's constraints are; examples of a value that fits on a
// line are given when withExamples is set (a named schema shows them as blocks instead).
func (r *renderer) notes(v any, withExamples bool) string {
	s, _ := v.(object)
	if s.has("$ref") {
		r.keys("a $ref with other keywords", s, "$ref", "description")
		return ""
	}
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if p := s.str("pattern"); p != "" {
		add("Matches %s.", code(p))
	}
	if not := s.obj("not"); not != nil {
		switch {
		case len(not) == 1 && not.str("type") == "null": // in typeOf
		case len(not) == 1 && not.str("pattern") != "":
			add("Does not match %s.", code(not.str("pattern")))
		default:
			r.fail("not %s: only {type: null} and {pattern} are rendered", jsonText(not))
		}
	}
	lo, hi := s.get("minimum"), s.get("maximum")
	switch {
	case lo != nil && hi != nil:
		add("From %s to %s.", jsonText(lo), jsonText(hi))
	case lo != nil:
		add("At least %s.", jsonText(lo))
	case hi != nil:
		add("At most %s.", jsonText(hi))
	}
	switch n := s.get("minLength"); {
	case n == nil:
	case jsonText(n) == "1":
		add("Not empty.")
	default:
		add("At least %s characters.", jsonText(n))
	}
	switch n := s.get("minItems"); {
	case n == nil || jsonText(n) == strconv.Itoa(len(s.list("prefixItems"))): // a tuple's length
	case jsonText(n) == "1":
		add("At least one item.")
	default:
		add("At least %s items.", jsonText(n))
	}
	if n := s.get("maxProperties"); n != nil {
		if jsonText(n) == "0" {
			add("Always empty.")
		} else {
			add("At most %s keys.", jsonText(n))
		}
	}
	if s.get("additionalProperties") == false && s.has("properties") {
		add("Other keys are refused.")
	}
	if s.has("items") && s.get("items") != false && s.has("prefixItems") {
		r.fail("items beside prefixItems: only items: false is rendered")
	}
	for _, m := range s.obj("dependentRequired") {
		var needs []string
		for _, k := range m.val.([]any) {
			needs = append(needs, code(literal(k)))
		}
		add("%s only with %s.", code(m.key), strings.Join(needs, " and "))
	}
	if d := s.get("default"); d != nil {
		add("Default %s.", code(literal(d)))
	}
	if withExamples {
		var ex []string
		for _, e := range s.list("examples") {
			ex = append(ex, code(literal(e)))
		}
		if len(ex) > 0 {
			add("For example %s.", strings.Join(ex, ", "))
		}
	}
	return strings.Join(out, " ")
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return ""
}

// join joins the non-empty sentences with a space.
func join(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

// literal shows a value as written in a header or a JSON document: a string as itself.
func literal(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return jsonText(v)
}

func jsonText(v any) string {
	b, err := marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// prose escapes the characters of a description that Markdown would take for markup: < for
// HTML, * and ` always, _ where it is not inside a word.
func prose(s string) string {
	var b strings.Builder
	rs := []rune(s)
	word := func(i int) bool {
		return i >= 0 && i < len(rs) && (unicode.IsLetter(rs[i]) || unicode.IsDigit(rs[i]))
	}
	for i, c := range rs {
		switch {
		case c == '<' || c == '*' || c == '`' || c == '\\':
			b.WriteByte('\\')
		case c == '_' && (!word(i-1) || !word(i+1)):
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// code writes s as a code span, with a fence longer than any run of backticks in it.
func code(s string) string {
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") || len(fence) > 1 {
		s = " " + s + " "
	}
	return fence + s + fence
}

func (r *renderer) line(s string) {
	r.b.WriteString(s)
	r.b.WriteByte('\n')
}

// para writes a paragraph; an empty one writes nothing.
func (r *renderer) para(s string) {
	if s != "" {
		r.line(s)
		r.line("")
	}
}

func (r *renderer) heading(level int, text string) {
	r.para(strings.Repeat("#", level) + " " + text)
}

// table writes a table whose rows fill calls row with; cells are single lines, and a | in
// them (code spans included) is escaped as GitHub's tables want.
func (r *renderer) table(header []string, fill func(row func(...string))) {
	cell := strings.NewReplacer("|", `\|`, "\n", " ")
	write := func(cells []string) {
		for i := range cells {
			cells[i] = cell.Replace(cells[i])
		}
		r.line("| " + strings.Join(cells, " | ") + " |")
	}
	write(slices.Clone(header))
	write(slices.Repeat([]string{"---"}, len(header)))
	fill(func(cells ...string) { write(cells) })
	r.line("")
}

func (r *renderer) jsonBlock(v any) {
	var b bytes.Buffer
	raw, err := marshal(v)
	if err == nil {
		err = json.Indent(&b, raw, "", "  ")
	}
	if err != nil {
		r.fail("an example: %v", err)
	}
	r.line("```json")
	r.line(b.String())
	r.line("```")
	r.line("")
}
