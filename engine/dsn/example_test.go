package dsn_test

import (
	"fmt"

	"github.com/koukan/koukan/engine/dsn"
)

// The output handler decides per recipient whether the sender asked for a
// DSN, from the RCPT's NOTIFY and the MAIL FROM.
func ExampleShouldNotify() {
	notify, err := dsn.ParseNotify("SUCCESS,DELAY")
	if err != nil {
		panic(err)
	}
	fmt.Println(dsn.ShouldNotify("alice@example.com", notify, dsn.ActionDelivered))
	fmt.Println(dsn.ShouldNotify("alice@example.com", notify, dsn.ActionFailed))
	// No NOTIFY: failures and delays, but never to the null reverse-path.
	fmt.Println(dsn.ShouldNotify("alice@example.com", 0, dsn.ActionFailed))
	fmt.Println(dsn.ShouldNotify("", 0, dsn.ActionFailed))
	// Output:
	// true
	// false
	// true
	// false
}

func ExampleParseORCPT() {
	a, err := dsn.ParseORCPT(`utf-8;j\x{F6}e@b\x{FC}cher.example`)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s; %s\n", a.Type, a.Address)
	// Output: utf-8; jöe@bücher.example
}
