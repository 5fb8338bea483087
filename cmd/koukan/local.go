package main

import (
	"crypto/tls"
	"net"
	"net/http"

	"github.com/koukan/koukan/engine/rest"
)

// serveLocally lets this process's REST clients reach h in memory (rest.ServeLocally) at
// the address ln listens on and the one its config names, when it speaks plain HTTP (tls
// nil): in koukan serve the gateway and the router exchange every message that way. It
// returns the function that stops it, before the server shuts down.
func serveLocally(h http.Handler, tls *tls.Config, ln net.Listener, configured string) func() {
	if tls != nil {
		return func() {}
	}
	stops := []func(){rest.ServeLocally(ln.Addr().String(), h)}
	if configured != ln.Addr().String() {
		stops = append(stops, rest.ServeLocally(configured, h))
	}
	return func() {
		for _, stop := range stops {
			stop()
		}
	}
}
