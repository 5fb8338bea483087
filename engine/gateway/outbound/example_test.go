package outbound_test

import (
	"context"
	"net/http"
	"time"

	"github.com/koukan/koukan/engine/gateway/outbound"
)

// Wiring a gateway's REST listener: transactions whose sender tag is "outbound" go out over
// SMTP with opportunistic STARTTLS; rest_output's endpoint is this server's URL. On the way
// down, the HTTP server stops first, so that no upload is left streaming into a closed
// gateway.
func Example() {
	gw := outbound.New(outbound.Options{
		Hosts: map[string]outbound.Host{
			"outbound": {EHLOHost: "mx-out.example.com", EnableBDAT: true},
			"mailbox":  {EHLOHost: "mx-out.example.com", LMTP: true, Timeout: 10 * time.Second},
		},
		SessionURI: "http://gateway.internal:8001",
	})
	ctx, stop := context.WithCancel(context.Background())
	go gw.Run(ctx) // garbage collection of finished and idle transactions
	srv := &http.Server{Addr: "127.0.0.1:8001", Handler: gw.Handler()}
	go srv.ListenAndServe()

	// ... and on shutdown:
	_ = srv.Shutdown(context.Background())
	stop()
	gw.Close()
}
