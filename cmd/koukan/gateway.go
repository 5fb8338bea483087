package main

import "flag"

var gatewayCmd = &command{
	name:    "gateway",
	summary: "run the SMTP gateway: inbound SMTP to the router, router to outbound SMTP/LMTP",
	usage:   "--config gateway.yaml",
	help: `Runs the stateless SMTP gateway: SMTP listeners (MX on 25, submission on 587 and 465)
that hand each transaction to the router's REST API, and a REST listener through which the
router sends mail out over SMTP or LMTP.`,
	flags: func(fs *flag.FlagSet, out *output) func() int {
		fs.String("config", "gateway.yaml", "gateway config `file`")
		return out.notBuilt("gateway", "the SMTP gateway is being built (issue 7)")
	},
}
