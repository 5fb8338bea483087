package main

import "flag"

var serveCmd = &command{
	name:    "serve",
	summary: "run router and gateway in one process (a working MTA with one command)",
	usage:   "[--config all.yaml]",
	help: `Runs the router and the gateway in one process. Without --config it uses a built-in
configuration: SQLite under ./koukan-data, the REST API on 127.0.0.1:8000, SMTP on
127.0.0.1:2525 (MX) and 127.0.0.1:2587 (submission). An all-in-one config file has a
router: and a gateway: section in the formats of router.yaml and gateway.yaml.`,
	flags: func(fs *flag.FlagSet, out *output) func() int {
		fs.String("config", "", "all-in-one config `file` (router: and gateway: sections)")
		return out.notBuilt("serve", "it needs the router and gateway (issue 8)")
	},
}
