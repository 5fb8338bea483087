package inbound_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/koukan/koukan/engine/gateway/inbound"
	"github.com/koukan/koukan/engine/rest/resttest"
)

// An MX service in front of a router (here the REST test receiver, which
// answers 250 to everything): an SMTP client's message becomes a
// transaction upstream.
func Example() {
	router := resttest.NewReceiver(resttest.Options{})
	defer router.Close()

	srv, err := inbound.New(inbound.Options{
		Endpoint: router.URL(), // + /senders/ingress/transactions
		Sender:   "ingress",
		Tag:      "smtp-mx",
		Hostname: "mx.example.com",
		Log:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()

	c, _ := smtp.Dial(ln.Addr().String())
	defer c.Close()
	c.Mail("alice@example.com", nil)
	c.Rcpt("bob@example.com", nil)
	w, _ := c.Data()
	fmt.Fprint(w, "Subject: hi\r\n\r\nhello\r\n")
	resp, err := w.CloseWithResponse()
	fmt.Println(resp.StatusText, err)
	c.Quit()

	got := router.Transactions()[0]
	fmt.Printf("%s %s %q\n", got.Tx.Sender.Name, got.Tx.RcptTo[0].Address, got.Body)
	// Output:
	// 2.0.0 ok <nil>
	// ingress bob@example.com "Subject: hi\r\n\r\nhello\r\n"
}
