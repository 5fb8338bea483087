package tx_test

import (
	"fmt"

	"github.com/koukan/koukan/engine/tx"
)

// The gateway's RCPT step: a PATCH document is parsed, merged into the stored
// transaction, and the client reads back placeholders and responses.
func Example() {
	stored, _ := tx.Parse([]byte(`{"mail_from": {"m": "alice@example.com"}, "rcpt_to": [{"m": "bob@example.com"}]}`), tx.RestCreate)

	patch, _ := tx.Parse([]byte(`{"rcpt_to": [{"m": "carol@example.com"}], "rcpt_to_list_offset": 1}`), tx.RestUpdate)
	fmt.Println(stored.Merge(patch))
	fmt.Println(stored.Merge(patch)) // replayed: the list has moved on

	stored.MailResponse = &tx.Response{Code: 250, Message: "ok"}
	out, _ := stored.MarshalFor(tx.RestRead)
	fmt.Println(string(out))

	_, err := tx.Parse([]byte(`{"rcpt_to": [{"m": 1}]}`), tx.RestCreate)
	fmt.Println(err)
	// Output:
	// <nil>
	// rcpt_to: items start at offset 1 but the list has 2
	// {"mail_from":{},"rcpt_to":[{},{}],"mail_response":{"code":250,"message":"ok"}}
	// rcpt_to[0].m: must be a string
}
