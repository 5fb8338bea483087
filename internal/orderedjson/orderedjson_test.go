package orderedjson

import "testing"

// Members come out in slice order, nested objects too, and text is not HTML-escaped.
func TestObject(t *testing.T) {
	o := Object{{Key: "z", Value: 1}, {Key: "a", Value: Object{{Key: "html", Value: "<b>&</b>"}}}, {Key: "m", Value: []any{"x", nil}}}
	got, err := Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"z":1,"a":{"html":"<b>&</b>"},"m":["x",null]}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
