package config

import (
	"gopkg.in/yaml.v3"
)

// Value is a YAML value kept with its position, for options that only a Lua script knows how
// to read. Aliases and merge keys are already expanded.
type Value struct {
	Pos    Position // where the value starts
	KeyPos Position // where its key is, for a member of a mapping; zero otherwise
	// Data is nil, bool, int, float64, string, []Value or map[string]Value.
	Data any
}

// Plain returns Data with the positions stripped: nil, bool, int, float64, string, []any or
// map[string]any.
func (v Value) Plain() any {
	switch data := v.Data.(type) {
	case []Value:
		out := make([]any, len(data))
		for i, item := range data {
			out[i] = item.Plain()
		}
		return out
	case map[string]Value:
		out := make(map[string]any, len(data))
		for k, item := range data {
			out[k] = item.Plain()
		}
		return out
	}
	return v.Data
}

// maxValueDepth bounds nesting, which only an alias that contains itself can make deep.
const maxValueDepth = 50

// value converts n; k is its key when n is a member of a mapping.
func (d *decoder) value(p path, k, n *yaml.Node) Value {
	return d.valueAt(p, k, n, 0)
}

func (d *decoder) valueAt(p path, k, n *yaml.Node, depth int) Value {
	n = deref(n)
	v := Value{Pos: d.pos(n)}
	if k != nil {
		v.KeyPos = d.pos(k)
	}
	if d.budget--; d.budget < 0 || depth > maxValueDepth {
		if !d.exhausted {
			d.exhausted = true
			d.errorf(n, p, "value nests too deeply or expands too far (an alias that contains itself?)")
		}
		return v
	}
	switch n.Kind {
	case yaml.ScalarNode:
		v.Data = scalarData(n)
	case yaml.SequenceNode:
		items := make([]Value, len(n.Content))
		for i, c := range n.Content {
			items[i] = d.valueAt(p, nil, c, depth+1)
		}
		v.Data = items
	case yaml.MappingNode:
		m := map[string]Value{}
		for _, e := range d.entries(p, n) {
			m[e.k.Value] = d.valueAt(p.key(e.k.Value), e.k, e.v, depth+1)
		}
		v.Data = m
	}
	return v
}

// scalarData resolves a scalar the way YAML 1.2 does; timestamps and binary stay text.
func scalarData(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b
		}
	case "!!int":
		var i int
		if n.Decode(&i) == nil {
			return i
		}
		var f float64 // too big for int
		if n.Decode(&f) == nil {
			return f
		}
	case "!!float":
		var f float64
		if n.Decode(&f) == nil {
			return f
		}
	}
	return n.Value
}
