package tx

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

const listOffsetSuffix = "_list_offset"

// Parse reads a transaction as context c carries it. It is strict, because
// what it accepts is stored and forwarded: unknown keys, keys context c does
// not carry, null values and empty lists are errors, and so is a real value
// where c expects a placeholder. Placeholders carry no value and are dropped.
// Errors are *SyntaxError or *FieldError.
func Parse(data []byte, c Context) (*Tx, error) {
	if c >= numContexts {
		return nil, fmt.Errorf("tx: unknown context %d", c)
	}
	if err := checkSyntax(data); err != nil {
		return nil, err
	}
	data = bytes.TrimSpace(data)
	if firstByte(data) != '{' {
		return nil, &FieldError{Reason: "the transaction must be a JSON object"}
	}
	mem, err := readObject(data, "")
	if err != nil {
		return nil, err
	}
	t := &Tx{}
	var offsets []member
	for _, m := range mem {
		if name, ok := strings.CutSuffix(m.key, listOffsetSuffix); ok {
			if f := fieldsByName[name]; f != nil && f.offsets != 0 {
				if !f.offsets.has(c) {
					return nil, notAllowed(m.key, c)
				}
				offsets = append(offsets, m)
				continue
			}
		}
		if err := readField(t, m, c); err != nil {
			return nil, err
		}
	}
	for _, m := range offsets {
		f := fieldsByName[strings.TrimSuffix(m.key, listOffsetSuffix)]
		if !f.isSet(t) {
			return nil, fieldErr(m.key, "is only allowed together with %s", f.name)
		}
		n, err := readInt(m.raw, m.key, 0, 1<<31-1)
		if err != nil {
			return nil, err
		}
		*f.kind.(listKind).offset(t) = int(n)
	}
	return t, nil
}

func readField(t *Tx, m member, c Context) error {
	f := fieldsByName[m.key]
	switch {
	case f == nil || f.full|f.placeholder|f.echo == 0:
		return unknownKey("", m.key)
	case !f.valid(c):
		return notAllowed(m.key, c)
	case isNull(m.raw):
		return fieldErr(m.key, "must not be null")
	case isEmptyList(m.raw):
		return fieldErr(m.key, "must not be an empty list")
	case f.full.has(c):
		return f.read(t, m.raw, m.key, c)
	}
	return checkPlaceholder(f, m.raw, m.key, c)
}

// A placeholder is {} for a single value and a list of {} for a list.
func placeholder(f *field, t *Tx) any {
	if l, ok := f.kind.(listKind); ok {
		return make([]struct{}, l.length(t))
	}
	return struct{}{}
}

func checkPlaceholder(f *field, raw json.RawMessage, path string, c Context) error {
	if _, ok := f.kind.(listKind); !ok {
		return checkEmptyObject(raw, path, c)
	}
	items, err := readList(raw, path)
	for i := 0; err == nil && i < len(items); i++ {
		err = checkEmptyObject(items[i], indexPath(path, i), c)
	}
	return err
}

func checkEmptyObject(raw json.RawMessage, path string, c Context) error {
	if mem, err := readObject(raw, path); err != nil || len(mem) > 0 {
		return fieldErr(path, "must be the placeholder {} in %s", c)
	}
	return nil
}

// MarshalFor writes t as context c carries it, leaving out the fields (and
// body forms) c does not carry and writing placeholders where c expects them.
// Keys come in a fixed order, so equal transactions give equal bytes.
func (t *Tx) MarshalFor(c Context) ([]byte, error) {
	if c >= numContexts {
		return nil, fmt.Errorf("tx: unknown context %d", c)
	}
	var o object
	for _, f := range fields {
		if !f.isSet(t) {
			continue
		}
		switch {
		case f.full.has(c):
			v, ok := f.write(t, c)
			if !ok {
				continue
			}
			o = append(o, kv{Key: f.name, Value: v})
			if f.offsets.has(c) {
				o = append(o, kv{Key: f.name + listOffsetSuffix, Value: *f.kind.(listKind).offset(t)})
			}
		case f.placeholder.has(c):
			o = append(o, kv{Key: f.name, Value: placeholder(f, t)})
		}
	}
	return encodeJSON(o)
}
