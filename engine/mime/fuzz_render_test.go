package mime

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/koukan/koukan/engine/tx"
)

// FuzzRender: any message-builder JSON the API accepts renders without panicking, and what it
// renders parses back.
func FuzzRender(f *testing.F) {
	f.Add(`{"headers":[["subject","hi"]],"text_body":[{"content_type":"text/plain","content":{"inline":"hello"}}]}`)
	f.Add(`{"headers":[["from",[{"display_name":"a","address":"a@b"}]],["date",{"unix_secs":0,"tz_offset":3600}]],` +
		`"text_body":[{"content_type":"text/html","content":{"inline":"<b>x</b>"}},{"content_type":"text/plain","content":{"inline":"x"}}],` +
		`"file_attachments":[{"content_type":"image/png","filename":"f.png","content":{"create_id":"b1"}}]}`)
	f.Fuzz(func(t *testing.T, js string) {
		spec, err := tx.ParseMessageSpec([]byte(js))
		if err != nil {
			return
		}
		norm, _, err := spec.Normalize()
		if err != nil {
			return
		}
		var out bytes.Buffer
		open := func(string) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("blob bytes")), nil }
		if err := Render(&out, norm, open, "seed"); err != nil {
			return
		}
		if _, err := Parse(bytes.NewReader(out.Bytes()), 1<<20, func(string, string, io.Reader) error { return nil }); err != nil {
			t.Errorf("rendered a message that does not parse: %v\n%s", err, out.Bytes())
		}
	})
}
