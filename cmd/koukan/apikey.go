package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/koukan/koukan/engine/httpauth"
)

var apikeyCmd = &command{
	name:    "apikey",
	summary: "make an API key and its api_keys_file line",
	usage:   "new (--sender NAME | --admin NAME) [--trusted] [--key-out FILE]",
	help: `Makes a new API key (256 random bits) and prints the line that lets it in, for the
api_keys_file of a router's or a gateway's rest_listener (see docs/security.md):

  sender NAME sha256:<hex>     the key may use POST /senders/NAME/transactions and the
                               transactions created that way
  admin NAME sha256:<hex>      the key may use everything: /admin/, /metrics, every sender

--trusted marks a caller whose remote_host, local_host and smtp_meta are believed (the
gateway's key); other callers' are dropped.

Only the key's SHA-256 goes into the file. The key itself is printed first (or written to
--key-out, mode 0600): hand it to the client, e.g. as a rest_output's api_key_file. It is
not stored anywhere else.

Example:
  koukan apikey new --sender app --key-out app.key >> api_keys
  koukan apikey new --sender ingress --trusted --key-out gateway.key >> api_keys`,
	flags: func(fs *flag.FlagSet, out *output) func() int {
		sender := fs.String("sender", "", "the `name` of the sender the key is for")
		admin := fs.String("admin", "", "make an admin key, named `name` in the logs")
		trusted := fs.Bool("trusted", false, "believe what the caller says of a message's origin (remote_host, smtp_meta)")
		keyOut := fs.String("key-out", "", "write the key to this new `file` instead of printing it")
		return func() int {
			// "new" comes first; the flags may come before or after it.
			if fs.NArg() == 0 || fs.Arg(0) != "new" {
				fmt.Fprintln(out.stderr, "koukan apikey: usage: koukan apikey new (--sender NAME | --admin NAME) [--trusted] [--key-out FILE]")
				return 2
			}
			if err := fs.Parse(fs.Args()[1:]); err != nil {
				return 2
			}
			return out.newAPIKey(*sender, *admin, *trusted, *keyOut, fs.Args())
		}
	},
}

func (o *output) newAPIKey(sender, admin string, trusted bool, keyOut string, rest []string) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(o.stderr, "koukan apikey: "+format+"\n", args...)
		return 2
	}
	role, name := "sender", sender
	switch {
	case len(rest) > 0:
		return fail("unexpected arguments %q", rest)
	case (sender == "") == (admin == ""):
		return fail("give one of --sender NAME and --admin NAME")
	case admin != "":
		role, name = "admin", admin
	}
	if name == "" || strings.ContainsAny(name, "/?#% \t\r\n") {
		return fail("%q is not a name (no spaces or any of /?#%%)", name)
	}
	key, cred := httpauth.NewKey()
	line := role + " " + name + " " + cred
	if trusted {
		line += " trusted"
	}
	if keyOut != "" {
		f, err := os.OpenFile(keyOut, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			fmt.Fprintf(o.stderr, "koukan apikey: %v\n", err)
			return 1
		}
		_, err = fmt.Fprintln(f, key)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintf(o.stderr, "koukan apikey: %v\n", err)
			os.Remove(keyOut)
			return 1
		}
		fmt.Fprintln(o.stdout, line)
		fmt.Fprintf(o.stderr, "the key is in %s; add the line printed above to the api_keys_file\n", keyOut)
		return 0
	}
	fmt.Fprintln(o.stdout, key)
	fmt.Fprintln(o.stdout, line)
	fmt.Fprintln(o.stderr, "the first line is the key (give it to the client; it is kept nowhere else), the second the api_keys_file line")
	return 0
}
