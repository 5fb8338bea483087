package dsn

import (
	"bytes"
	"io"
	"testing"

	"github.com/emersion/go-message"
)

// TestReferenceDSNs reads real DSNs (from Gmail, kept by the reference
// implementation) with the same parsing the tests apply to ours, which
// checks that parsing against someone else's output.
func TestReferenceDSNs(t *testing.T) {
	for _, tt := range []struct{ file, third string }{
		{"dsn.msg", "message/rfc822"},
		{"dsn-text-rfc822-headers.msg", "text/rfc822-headers"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			e, err := message.Read(bytes.NewReader(readTestdata(t, tt.file)))
			if err != nil {
				t.Fatal(err)
			}
			if typ, params, _ := e.Header.ContentType(); typ != "multipart/report" || params["report-type"] != "delivery-status" {
				t.Errorf("Content-Type %s %v", typ, params)
			}
			var types []string
			var status []byte
			mr := e.MultipartReader()
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				typ, _, _ := p.Header.ContentType()
				types = append(types, typ)
				if typ == "message/delivery-status" {
					status, _ = io.ReadAll(p.Body)
				}
			}
			if len(types) != 3 || types[1] != "message/delivery-status" || types[2] != tt.third {
				t.Errorf("parts %q", types)
			}
			checkBlocks(t, statusBlocks(t, status), []map[string]string{
				{
					"Reporting-MTA":         "dns; googlemail.com",
					"Arrival-Date":          "Thu, 15 Feb 2024 11:48:29 -0800 (PST)",
					"X-Original-Message-ID": "<CAPd40h3zsBMTMCjqvczrAWqDJo=agZ39tc9Fn=FpwDhjTQMTVw@mail.gmail.com>",
				},
				{
					"Final-Recipient":   "rfc822; xyz@sandbox.gloop.org",
					"Action":            "failed",
					"Status":            "4.4.2",
					"Diagnostic-Code":   "smtp; Message rejected. For more information, go to https://support.google.com/mail/answer/69585",
					"Last-Attempt-Date": "Thu, 15 Feb 2024 11:48:30 -0800 (PST)",
				},
			})
		})
	}
}
