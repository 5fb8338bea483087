package tx

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
)

var (
	_ kind     = scalar[int]{}
	_ kind     = list[Response]{}
	_ listKind = list[Response]{}
	_ kind     = dict[any]{}
)

// scalar is a write-once field: once set, it may only be set again to an equal
// value, unless grow allows the change (the body).
type scalar[V any] struct {
	slot   func(*Tx) *V
	clone  func(V) V              // nil: copying V shares nothing mutable
	grow   func(old, new V) error // nil: no change allowed
	decode func(json.RawMessage, string, Context) (V, error)
	encode func(V, Context) (any, bool) // nil: V marshals itself
}

func isZero[V any](v V) bool { return reflect.ValueOf(&v).Elem().IsZero() }

func (s scalar[V]) cloned(v V) V {
	if s.clone == nil {
		return v
	}
	return s.clone(v)
}

func (s scalar[V]) isSet(t *Tx) bool    { return !isZero(*s.slot(t)) }
func (s scalar[V]) copyTo(dst, src *Tx) { *s.slot(dst) = s.cloned(*s.slot(src)) }

// changed reports whether n differs from o, failing if it may not.
func (s scalar[V]) changed(name string, o, n V) (bool, error) {
	if reflect.DeepEqual(o, n) {
		return false, nil
	}
	if s.grow == nil {
		return false, conflict(name, "is write-once and cannot change")
	}
	if err := s.grow(o, n); err != nil {
		return false, conflict(name, "%s", err.Error())
	}
	return true, nil
}

func (s scalar[V]) delta(name string, old, new, out *Tx) error {
	o, n := *s.slot(old), *s.slot(new)
	switch {
	case isZero(n):
		if !isZero(o) {
			return conflict(name, "cannot be cleared once set")
		}
	case isZero(o):
		*s.slot(out) = s.cloned(n)
	default:
		if ch, err := s.changed(name, o, n); err != nil || !ch {
			return err
		}
		*s.slot(out) = s.cloned(n)
	}
	return nil
}

func (s scalar[V]) merge(name string, t, d *Tx) error {
	n := *s.slot(d)
	if isZero(n) {
		return nil
	}
	if o := *s.slot(t); !isZero(o) {
		if ch, err := s.changed(name, o, n); err != nil || !ch {
			return err
		}
	}
	*s.slot(t) = s.cloned(n)
	return nil
}

func (s scalar[V]) read(t *Tx, raw json.RawMessage, path string, c Context) error {
	v, err := s.decode(raw, path, c)
	if err == nil {
		*s.slot(t) = v
	}
	return err
}

func (s scalar[V]) write(t *Tx, c Context) (any, bool) {
	v := *s.slot(t)
	if s.encode == nil {
		return v, true
	}
	return s.encode(v, c)
}

// list is an append-only field. A delta carries the new items and the offset
// (old length) at which they start; a merge requires that offset to be the
// current length, so a writer with a stale view is refused.
type list[E any] struct {
	slot   func(*Tx) *[]E
	off    func(*Tx) *int
	clone  func(E) E // nil: copying E shares nothing mutable
	decode func(json.RawMessage, string) (E, error)
}

func (l list[E]) cloned(items []E) []E {
	out := slices.Clone(items)
	if l.clone != nil {
		for i := range out {
			out[i] = l.clone(out[i])
		}
	}
	return out
}

func (l list[E]) isSet(t *Tx) bool    { return len(*l.slot(t)) > 0 }
func (l list[E]) copyTo(dst, src *Tx) { *l.slot(dst) = l.cloned(*l.slot(src)) }
func (l list[E]) offset(t *Tx) *int   { return l.off(t) }
func (l list[E]) length(t *Tx) int    { return len(*l.slot(t)) }

func (l list[E]) delta(name string, old, new, out *Tx) error {
	o, n := *l.slot(old), *l.slot(new)
	if len(n) < len(o) {
		return conflict(name, "cannot shrink from %d to %d items", len(o), len(n))
	}
	for i := range o {
		if !reflect.DeepEqual(o[i], n[i]) {
			return conflict(indexPath(name, i), "is write-once and cannot change")
		}
	}
	if len(n) > len(o) {
		*l.slot(out) = l.cloned(n[len(o):])
		*l.off(out) = len(o)
	}
	return nil
}

func (l list[E]) merge(name string, t, d *Tx) error {
	tail := *l.slot(d)
	if len(tail) == 0 {
		return nil
	}
	cur := l.slot(t)
	if off := *l.off(d); off != len(*cur) {
		return conflict(name, "items start at offset %d but the list has %d", off, len(*cur))
	}
	*cur = append(slices.Clip(*cur), l.cloned(tail)...)
	return nil
}

func (l list[E]) read(t *Tx, raw json.RawMessage, path string, _ Context) error {
	v, err := decodeList(raw, path, l.decode)
	if err == nil {
		*l.slot(t) = v
	}
	return err
}

func (l list[E]) write(t *Tx, _ Context) (any, bool) { return *l.slot(t), true }

// dict is a keyed field: keys are added and values replaced, never removed.
// A non-nil empty map is set (e.g. retry: {} turns retries on).
type dict[E any] struct {
	slot   func(*Tx) *map[string]E
	clone  func(E) E
	decode func(json.RawMessage, string) (map[string]E, error)
}

func (m dict[E]) cloneValue(v E) E {
	if m.clone == nil {
		return v
	}
	return m.clone(v)
}

func (m dict[E]) cloned(src map[string]E) map[string]E {
	out := maps.Clone(src)
	for k, v := range out {
		out[k] = m.cloneValue(v)
	}
	return out
}

func (m dict[E]) isSet(t *Tx) bool    { return *m.slot(t) != nil }
func (m dict[E]) copyTo(dst, src *Tx) { *m.slot(dst) = m.cloned(*m.slot(src)) }

func (m dict[E]) delta(name string, old, new, out *Tx) error {
	o, n := *m.slot(old), *m.slot(new)
	switch {
	case n == nil:
		if o != nil {
			return conflict(name, "cannot be cleared once set")
		}
		return nil
	case o == nil:
		*m.slot(out) = m.cloned(n)
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(o)) {
		if _, ok := n[k]; !ok {
			return conflict(name, "key %q cannot be removed", k)
		}
	}
	var d map[string]E
	for k, v := range n {
		if ov, ok := o[k]; !ok || !reflect.DeepEqual(ov, v) {
			if d == nil {
				d = map[string]E{}
			}
			d[k] = m.cloneValue(v)
		}
	}
	*m.slot(out) = d
	return nil
}

func (m dict[E]) merge(_ string, t, d *Tx) error {
	add := *m.slot(d)
	if add == nil {
		return nil
	}
	cur := m.slot(t)
	if *cur == nil {
		*cur = map[string]E{}
	}
	maps.Copy(*cur, m.cloned(add))
	return nil
}

func (m dict[E]) read(t *Tx, raw json.RawMessage, path string, _ Context) error {
	v, err := m.decode(raw, path)
	if err == nil {
		*m.slot(t) = v
	}
	return err
}

func (m dict[E]) write(t *Tx, _ Context) (any, bool) { return *m.slot(t), true }
