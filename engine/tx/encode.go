package tx

import (
	"bytes"
	"encoding/json"
)

// kv is one member of an object written in a fixed order.
type kv struct {
	key   string
	value any
}

// object is a JSON object whose keys are written in slice order, which keeps
// output deterministic and in the order the spec's examples use.
type object []kv

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := encodeJSON(m.key)
		b.Write(k)
		b.WriteByte(':')
		v, err := encodeJSON(m.value)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// encodeJSON is json.Marshal without HTML escaping, so that text such as
// "<b>hello</b>" survives a round trip byte for byte.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}
