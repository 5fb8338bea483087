package tx

import "github.com/koukan/koukan/internal/orderedjson"

// object is a JSON object whose keys are written in slice order, which keeps output
// deterministic and in the order the spec's examples use; kv is one of its members.
type (
	object = orderedjson.Object
	kv     = orderedjson.Member
)

// encodeJSON is json.Marshal without HTML escaping, so that text such as "<b>hello</b>"
// survives a round trip byte for byte.
var encodeJSON = orderedjson.Marshal
