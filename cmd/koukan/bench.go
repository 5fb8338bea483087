package main

import "flag"

var benchCmd = &command{
	name:    "bench",
	summary: "load generator for SMTP and REST: messages/s and latency percentiles",
	usage:   "smtp|rest|sink [flags]",
	help: `Generates SMTP or REST load against a running Koukan (or any MTA) and prints messages/s
and latency percentiles; "bench sink" is an SMTP sink for the far end.`,
	flags: func(fs *flag.FlagSet, out *output) func() int {
		return out.notBuilt("bench", "the load generator comes with the performance work (issue 9)")
	},
}
