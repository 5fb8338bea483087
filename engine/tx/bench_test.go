package tx

import "testing"

// BenchmarkParse reads a stored transaction document as the router does on every wake of a
// waiter and every step of an attempt.
func BenchmarkParse(b *testing.B) {
	doc := []byte(`{"sender":{"name":"submission","tag":"smtp-msa-upstream"},"remote_host":["127.0.0.1",40000],` +
		`"local_host":["127.0.0.1",587],"mail_from":{"m":"a@example.org","e":[{"k":"SIZE","p":"2048"}]},` +
		`"rcpt_to":[{"m":"b@example.com"}],"smtp_meta":{"ehlo_host":"localhost","esmtp":false,"tls":false,"auth":false},` +
		`"retry":{},"notification":{}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(doc, DB); err != nil {
			b.Fatal(err)
		}
	}
}
