package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/koukan/koukan/internal/orderedjson"
)

// object is a JSON object with its members in the order the document has them: paths,
// properties and examples read in the order their authors chose, and docs/api.md keeps it.
type object []member

type member struct {
	key string
	val any
}

// get returns the value of key, or nil.
func (o object) get(key string) any {
	for _, m := range o {
		if m.key == key {
			return m.val
		}
	}
	return nil
}

func (o object) has(key string) bool {
	for _, m := range o {
		if m.key == key {
			return true
		}
	}
	return false
}

// str returns key's value if it is a string, else "".
func (o object) str(key string) string {
	s, _ := o.get(key).(string)
	return s
}

// obj returns key's value if it is an object, else nil.
func (o object) obj(key string) object {
	v, _ := o.get(key).(object)
	return v
}

// list returns key's value if it is an array, else nil.
func (o object) list(key string) []any {
	v, _ := o.get(key).([]any)
	return v
}

// without returns o without key.
func (o object) without(key string) object {
	var out object
	for _, m := range o {
		if m.key != key {
			out = append(out, m)
		}
	}
	return out
}

// MarshalJSON writes the members in order, for the examples docs/api.md shows.
func (o object) MarshalJSON() ([]byte, error) {
	out := make(orderedjson.Object, len(o))
	for i, m := range o {
		out[i] = orderedjson.Member{Key: m.key, Value: m.val}
	}
	return out.MarshalJSON()
}

// marshal is json.Marshal without escaping <, > and &, which docs/api.md shows as written.
var marshal = orderedjson.Marshal

// decodeJSON parses a document into object, []any, string, json.Number, bool and nil.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		o := object{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key := k.(string) // the decoder only gives strings as keys
			if o.has(key) {
				return nil, fmt.Errorf("duplicate key %q", key)
			}
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			o = append(o, member{key, v})
		}
		_, err := dec.Token()
		return o, err
	case json.Delim('['):
		a := []any{}
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token()
		return a, err
	}
	return tok, nil
}
