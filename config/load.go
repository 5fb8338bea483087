package config

import (
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadRouter reads and validates a router.yaml. On failure the error is Errors (unless the
// file could not be read); warnings come back either way.
func LoadRouter(path string) (*Router, Warnings, error) { return load(path, ParseRouter) }

// LoadGateway reads and validates a gateway.yaml, like LoadRouter.
func LoadGateway(path string) (*Gateway, Warnings, error) { return load(path, ParseGateway) }

// LoadServe reads and validates an all-in-one file for `koukan serve`, like LoadRouter.
func LoadServe(path string) (*Serve, Warnings, error) { return load(path, ParseServe) }

// ParseRouter validates router.yaml content; name is the file name used in messages.
func ParseRouter(name string, data []byte) (*Router, Warnings, error) {
	return parse(name, data, (*decoder).router)
}

// ParseGateway validates gateway.yaml content; name is the file name used in messages.
func ParseGateway(name string, data []byte) (*Gateway, Warnings, error) {
	return parse(name, data, (*decoder).gateway)
}

// ParseServe validates serve file content; name is the file name used in messages.
func ParseServe(name string, data []byte) (*Serve, Warnings, error) {
	return parse(name, data, (*decoder).serve)
}

func load[T any](path string, parse func(string, []byte) (*T, Warnings, error)) (*T, Warnings, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return parse(path, data)
}

func parse[T any](name string, data []byte, build func(*decoder, path, *yaml.Node) *T) (*T, Warnings, error) {
	d := newDecoder(name)
	var v *T
	if root := d.document(data); root != nil {
		v = build(d, "", root)
		d.checkListeners()
	}
	warns := Warnings(sortProblems(d.warns))
	if len(d.errs) > 0 {
		return nil, warns, Errors(sortProblems(d.errs))
	}
	return v, warns, nil
}

// document parses data as one YAML document whose top level is a mapping. An empty file is
// an empty mapping. It returns nil if there is nothing to decode.
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return &yaml.Node{Kind: yaml.MappingNode, Line: 1, Column: 1}
	case err != nil:
		d.syntaxError(data, err)
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		d.errorf(&next, "", "a config file holds one YAML document; this is a second one")
	case !errors.Is(err, io.EOF):
		d.syntaxError(data, err)
	}
	if len(doc.Content) == 0 {
		return &yaml.Node{Kind: yaml.MappingNode, Line: 1, Column: 1}
	}
	root := deref(doc.Content[0])
	if root.Kind != yaml.MappingNode && !isNull(root) {
		d.errorf(root, "", "expected a mapping of sections at the top level, got %s", describe(root))
		return nil
	}
	return root
}

var (
	yamlError     = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)
	unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
)

// parserProblems are the yaml.v3 messages that come from its parser rather than its scanner.
// For these yaml.v3 prints a 0-based line number.
var parserProblems = []string{
	"did not find expected <stream-start>", "did not find expected <document start>",
	"found undefined tag handle", "did not find expected node content",
	"did not find expected '-' indicator", "did not find expected key",
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"found duplicate %YAML directive", "found incompatible YAML document",
	"found duplicate %TAG directive",
}

// syntaxError reports a yaml.v3 error with the best line yaml.v3 lets us know. Its messages
// carry no column, and on line 1 no line either.
func (d *decoder) syntaxError(data []byte, err error) {
	m := yamlError.FindStringSubmatch(err.Error())
	if m == nil {
		d.errorAt(Position{File: d.file}, "", "invalid YAML: %v", err)
		return
	}
	line, _ := strconv.Atoi(m[1])
	msg := m[2]
	pos := Position{File: d.file, Line: max(line, 1)}
	if isParserProblem(msg) {
		pos.Line = line + 1
	} else if a := unknownAnchor.FindStringSubmatch(msg); a != nil {
		pos = d.find(data, "*"+a[1])
	}
	if lines := strings.Split(string(data), "\n"); pos.Line <= len(lines) && strings.Contains(leadingSpace(lines[pos.Line-1]), "\t") {
		msg += " (YAML does not allow tabs for indentation)"
	}
	d.errorAt(pos, "", "invalid YAML: %s", msg)
}

func isParserProblem(msg string) bool {
	for _, p := range parserProblems {
		if msg == p {
			return true
		}
	}
	return false
}

func leadingSpace(s string) string { return s[:len(s)-len(strings.TrimLeft(s, " \t"))] }

// find returns the position of the first occurrence of s in data, or of line 1 if none.
func (d *decoder) find(data []byte, s string) Position {
	i := bytes.Index(data, []byte(s))
	if i < 0 {
		return Position{File: d.file, Line: 1}
	}
	before := data[:i]
	line := bytes.Count(before, []byte("\n")) + 1
	return Position{File: d.file, Line: line, Column: i - bytes.LastIndexByte(before, '\n')}
}
