// Command koukan is the whole Koukan mail transport stack in one binary: the router, the SMTP
// gateway, both together, and the tools around them. Each subcommand lives in a file of its
// own; this file only dispatches.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one subcommand. run gets the arguments after the subcommand's name and returns
// the exit status: 0 success, 1 failure, 2 usage error or not built yet.
type command struct {
	name    string
	summary string
	usage   string // argument synopsis after "koukan <name>"
	help    string // what it does, for "koukan <name> --help"
	// flags declares the command's flags and returns what runs once they are parsed.
	flags func(fs *flag.FlagSet, out *output) func() int
}

// output is where a command writes; tests capture it.
type output struct{ stdout, stderr io.Writer }

var commands = []*command{
	routerCmd, gatewayCmd, serveCmd, checkCmd, sendCmd, benchCmd, queueCmd, apikeyCmd, versionCmd,
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			if c := lookup(args[1]); c != nil {
				c.printHelp(stdout, nil)
				return 0
			}
		}
		usage(stdout)
		return 0
	case "-version", "--version":
		args = []string{"version"}
	}
	c := lookup(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "koukan: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	fs := flag.NewFlagSet("koukan "+c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	runFn := c.flags(fs, &output{stdout, stderr})
	fs.Usage = func() { c.printHelp(stderr, fs) }
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			c.printHelp(stdout, fs)
			return 0
		}
		return 2
	}
	return runFn()
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Koukan is a mail transport agent for applications: a REST API to send and receive mail
with the remote server's real reply in-band, durable queues on SQLite or PostgreSQL, an
SMTP gateway, and Lua policy scripts operators can edit without rebuilding.

Usage: koukan <command> [flags] [arguments]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun \"koukan <command> --help\" for a command's flags.\n")
}

func (c *command) printHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: koukan %s %s\n\n%s\n", c.name, c.usage, strings.TrimSpace(c.help))
	if fs == nil {
		fs = flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.flags(fs, &output{io.Discard, io.Discard})
	}
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprint(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}
