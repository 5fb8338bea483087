package mime

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
)

// What Render writes from the reference's message-builder spec, Parse reads back into the
// same message: headers (in the parsed form of §8.3), the text bodies, the related part by
// its Content-ID.
func TestRenderParsesBack(t *testing.T) {
	spec, blobs := normalized(t, referenceSpec(t))
	msg := mustRender(t, spec, blobs.open)
	parts := blobMap{}
	raw, err := Parse(strings.NewReader(msg), 1<<20, func(id, _ string, r io.Reader) error {
		b, err := io.ReadAll(r)
		parts[id] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var got any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	headers := fmt.Sprint(get(got, "parts", "headers"))
	for _, want := range []string{"[subject hello]", "[message-id abc@xyz]", "[references <abd@xyz> <abe@xyz>]",
		"[from [map[address:alice@example.com display_name:alice a]]]"} {
		if !strings.Contains(headers, want) {
			t.Errorf("headers lack %s: %s", want, headers)
		}
	}
	bodies := map[string]string{}
	for i := range 2 {
		ct, _ := get(got, "text_body", i, "content_type").(string)
		content, _ := get(got, "text_body", i, "content", "inline").(string)
		bodies[ct] = strings.TrimRight(content, "\r\n")
	}
	if bodies["text/plain"] != "hello" || bodies["text/html"] != "<b>hello</b>" {
		t.Errorf("text bodies %q\n%s", bodies, raw)
	}
	related := fmt.Sprint(get(got, "related_attachments", 0))
	if !strings.Contains(related, "content_id:xyz123") {
		t.Errorf("related attachment %s", related)
	}
	var found bool
	for _, b := range parts {
		found = found || b == "related image contents"
	}
	if !found {
		t.Errorf("the related part did not come back: %q", parts)
	}
}
