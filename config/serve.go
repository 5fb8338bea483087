package config

import "gopkg.in/yaml.v3"

// Serve is a validated all-in-one file for `koukan serve`: a router and a gateway in one
// process. Both sections are required and have exactly the formats of router.yaml and
// gateway.yaml; in addition, no two listeners of the process may share an address.
type Serve struct {
	Router  *Router
	Gateway *Gateway
}

func (d *decoder) serve(p path, n *yaml.Node) *Serve {
	s := &Serve{}
	d.fields(p, n,
		sub("router", func(d *decoder, p path, n *yaml.Node) { s.Router = d.router(p, n) }).must(),
		sub("gateway", func(d *decoder, p path, n *yaml.Node) { s.Gateway = d.gateway(p, n) }).must(),
	)
	return s
}
