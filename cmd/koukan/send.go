package main

import "flag"

var sendCmd = &command{
	name:    "send",
	summary: "send a message through the REST API and print each recipient's result",
	usage:   "--from ADDR --to ADDR [--subject S] [--text T] [--attach FILE]...",
	help: `Builds a message, uploads its attachments once, creates one transaction per recipient
and waits for the remote servers' replies, which it prints per recipient.`,
	flags: func(fs *flag.FlagSet, out *output) func() int {
		fs.String("router", "http://127.0.0.1:8000", "router base `url`")
		fs.String("from", "", "envelope and header sender `address`")
		fs.String("to", "", "recipient `address`")
		return out.notBuilt("send", "it needs the router's REST API (issue 8)")
	},
}
