package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/koukan/koukan/engine/admin"
	"github.com/koukan/koukan/engine/rest"
	"github.com/koukan/koukan/engine/tx"
)

var queueCmd = &command{
	name:    "queue",
	summary: "list, inspect, retry and cancel queued mail; suspend and resume destination domains",
	usage:   queueUsage,
	help:    queueHelp,
	flags: func(fs *flag.FlagSet, out *output) func() int {
		return func() int { return out.queue(fs.Args()) }
	},
}

const queueUsage = "ls|show|retry|cancel|suspend|resume|domains [arguments] [--router URL] [--api-key-file FILE] [--json]"

const queueHelp = `Operates on a running router's queue through its admin API (/admin/, see docs/admin.md).

  koukan queue ls [--state S] [--sender NAME] [--domain D] [--since 1h|TIME] [--limit N] [--cursor C]
      Lists transactions, newest first, one per line: id, state, sender, recipient, attempts,
      when the next attempt is due, when it last changed, and the last reply. States:
      in_flight, due, deferred, held (its domain is suspended), delivered, failed,
      cancelled. When there are more than --limit, the cursor of the next page is printed.
  koukan queue show ID
      One transaction with the replies of every attempt.
  koukan queue retry ID...
      Makes queued transactions (due, deferred or held) due now. A held one still waits for
      its domain to be resumed; a final one cannot be retried.
  koukan queue cancel ID...
      Cancels transactions; the router stops delivering them (a final one stays as it is).
  koukan queue suspend DOMAIN...
      Holds mail to these domains: no attempt starts (new mail included) until resume. Mail
      is not lost: it stays queued, held, and its retry deadline still runs.
  koukan queue resume DOMAIN...
      Lets held mail to these domains go at once.
  koukan queue domains
      Lists the suspended domains and how much mail each holds.

Flags may come before or after the arguments.
A router whose rest_listener has an api_keys_file (docs/security.md) wants an admin key:
--api-key-file names the file holding it (koukan apikey new --admin NAME --key-out FILE makes
one). Without the flag, the file named by $KOUKAN_API_KEY_FILE is used.
With --json, the router's JSON answer is printed as it is (one per argument).

Exit status: 0 success; 1 the router refused a request (its message is printed) or could
not be reached; 2 a usage error.

Examples:
  koukan queue ls --state deferred --domain example.com
  koukan queue suspend example.com
  koukan queue retry Pn-hUc18pBrkUFVlyndYYQ --router http://router.example.com:8000`

// queueOptions are koukan queue's flags.
type queueOptions struct {
	router, state, sender, domain, since, cursor string
	apiKeyFile                                   string
	limit                                        int
	json                                         bool
}

// queueActions are the subcommands: each runs on its arguments and tells whether it takes
// any (the list flags are ls's only).
var queueActions = map[string]struct {
	args    string // what it takes: "" nothing, "one" or "some" of noun
	noun    string
	listing bool
	run     func(*queueClient, []string) error
}{
	"ls":      {"", "", true, (*queueClient).ls},
	"show":    {"one", "transaction id", false, (*queueClient).show},
	"retry":   {"some", "transaction id", false, (*queueClient).retry},
	"cancel":  {"some", "transaction id", false, (*queueClient).cancel},
	"suspend": {"some", "domain", false, (*queueClient).suspend},
	"resume":  {"some", "domain", false, (*queueClient).resume},
	"domains": {"", "", false, (*queueClient).domains},
}

func (o *output) queue(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(o.stderr, "koukan queue: name an action: ls, show, retry, cancel, suspend, resume or domains (koukan queue --help)")
		return 2
	}
	name := args[0]
	action, ok := queueActions[name]
	if !ok {
		fmt.Fprintf(o.stderr, "koukan queue: unknown action %q: ls, show, retry, cancel, suspend, resume or domains\n", name)
		return 2
	}
	fs := flag.NewFlagSet("koukan queue "+name, flag.ContinueOnError)
	fs.SetOutput(o.stderr)
	opts := &queueOptions{}
	fs.StringVar(&opts.router, "router", "http://127.0.0.1:8000", "the router's base `URL`")
	fs.BoolVar(&opts.json, "json", false, "print the router's JSON answers as they are")
	apiKeyFileFlag(fs, &opts.apiKeyFile)
	if action.listing {
		fs.StringVar(&opts.state, "state", "", "only transactions in this `state`: in_flight, due, deferred, held, delivered, failed or cancelled")
		fs.StringVar(&opts.sender, "sender", "", "only transactions of this sender `name`")
		fs.StringVar(&opts.domain, "domain", "", "only transactions to this recipient `domain`")
		fs.StringVar(&opts.since, "since", "", "only transactions that changed since this `time`: a duration back from now (90m, 24h) or RFC 3339")
		fs.IntVar(&opts.limit, "limit", 0, "at most this many `transactions` (the router's default: 50; at most 1000)")
		fs.StringVar(&opts.cursor, "cursor", "", "the `cursor` of the next page, as the previous page printed it")
	}
	printHelp := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: koukan queue %s\n\n%s\n\nFlags of koukan queue %s:\n", queueUsage, queueHelp, name)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(o.stderr)
	}
	fs.Usage = func() { printHelp(o.stderr) }
	args, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if err == flag.ErrHelp {
			printHelp(o.stdout)
			return 0
		}
		return 2
	}
	switch {
	case action.args == "" && len(args) > 0:
		fmt.Fprintf(o.stderr, "koukan queue %s: unexpected argument %q\n", name, args[0])
		return 2
	case action.args == "one" && len(args) != 1:
		fmt.Fprintf(o.stderr, "koukan queue %s: name one %s\n", name, action.noun)
		return 2
	case action.args == "some" && len(args) == 0:
		fmt.Fprintf(o.stderr, "koukan queue %s: name at least one %s\n", name, action.noun)
		return 2
	}
	base, err := url.Parse(strings.TrimSuffix(opts.router, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		fmt.Fprintf(o.stderr, "koukan queue: --router %q: want an http:// or https:// URL\n", opts.router)
		return 2
	}
	// rest's client, for its API key on every request (redirects to another replica too).
	hc, err := rest.NewHTTPClient(rest.Options{APIKeyFile: opts.apiKeyFile})
	if err != nil {
		fmt.Fprintf(o.stderr, "koukan queue %s: %v\n", name, err)
		return 1
	}
	hc.Timeout = 30 * time.Second
	c := &queueClient{out: o, opts: opts, base: base.String(), http: hc}
	if err := action.run(c, args); err != nil {
		fmt.Fprintf(o.stderr, "koukan queue %s: %v\n", name, err)
		return 1
	}
	return 0
}

// parseInterspersed parses the flags of fs wherever they come among args and returns the
// other arguments, in order. Only fs's flags (and -h, -help) are flags: transaction ids are
// base64url and may start with "-". Arguments after "--" are never flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		help := name == "h" || name == "help"
		f := fs.Lookup(name)
		if !strings.HasPrefix(a, "-") || f == nil && !help {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		if help || hasValue {
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !(ok && b.IsBoolFlag()) && i+1 < len(args) {
			i++
			flags = append(flags, args[i]) // the flag's value
		}
	}
	return rest, fs.Parse(flags)
}

// queueClient calls the admin API and prints its answers.
type queueClient struct {
	out  *output
	opts *queueOptions
	base string
	http *http.Client
}

// call sends a request and decodes a 2xx answer into v (and prints it with --json); any
// other answer is an error with the router's message.
func (c *queueClient) call(method, path string, v any) error {
	req, err := http.NewRequest(method, c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("the router at %s did not answer: %w", c.base, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the router's answer: %w", err)
	}
	if res.StatusCode/100 != 2 {
		var p struct {
			Error struct{ Message string }
		}
		if json.Unmarshal(body, &p) == nil && p.Error.Message != "" {
			return errors.New(p.Error.Message)
		}
		return fmt.Errorf("the router answered %s", res.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("the router's answer is not what koukan queue expects (%v): is %s a Koukan router?", err, c.base)
	}
	if c.opts.json {
		c.out.stdout.Write(append(bytes.TrimSpace(body), '\n'))
	}
	return nil
}

func (c *queueClient) ls([]string) error {
	q := url.Values{}
	for name, v := range map[string]string{"state": c.opts.state, "sender": c.opts.sender, "rcpt_domain": c.opts.domain,
		"since": c.opts.since, "cursor": c.opts.cursor} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if c.opts.limit != 0 {
		q.Set("limit", strconv.Itoa(c.opts.limit))
	}
	path := "/admin/transactions"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var l admin.ListView
	if err := c.call("GET", path, &l); err != nil || c.opts.json {
		return err
	}
	if len(l.Transactions) == 0 {
		fmt.Fprintln(c.out.stdout, "no transactions")
		return nil
	}
	now := time.Now()
	w := tabwriter.NewWriter(c.out.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tSTATE\tSENDER\tTO\tATTEMPTS\tNEXT\tUPDATED\tLAST REPLY")
	for _, t := range l.Transactions {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", t.ID, t.State, orDash(t.Sender), orDash(strings.Join(t.RcptTo, ",")),
			t.Attempts, orDash(t.Next(now)), admin.Relative(t.LastUpdate.Sub(now)), clip(reply(t.LastReply), 60))
	}
	w.Flush()
	if l.NextCursor != "" {
		fmt.Fprintf(c.out.stdout, "more: koukan queue ls --cursor %s (with the same filters)\n", l.NextCursor)
	}
	return nil
}

func (c *queueClient) show(args []string) error {
	var d admin.DetailView
	if err := c.call("GET", "/admin/transactions/"+url.PathEscape(args[0]), &d); err != nil || c.opts.json {
		return err
	}
	c.printDetail(d)
	return nil
}

func (c *queueClient) printDetail(d admin.DetailView) {
	now := time.Now()
	w := tabwriter.NewWriter(c.out.stdout, 0, 4, 2, ' ', 0)
	from := d.MailFrom
	if from == "" {
		from = "<>"
	}
	fmt.Fprintf(w, "id:\t%s\nstate:\t%s\nsender:\t%s\nfrom:\t%s\nto:\t%s\nattempts:\t%d\n", d.ID, d.State, orDash(d.Sender),
		from, orDash(strings.Join(d.RcptTo, ", ")), d.Attempts)
	if d.NextAttempt != nil {
		fmt.Fprintf(w, "next attempt:\t%s\n", d.Next(now))
	}
	fmt.Fprintf(w, "created:\t%s\nlast update:\t%s (%s)\n", stamp(d.Created), stamp(d.LastUpdate), admin.Relative(d.LastUpdate.Sub(now)))
	if d.FinalAttemptReason != "" {
		fmt.Fprintf(w, "final reason:\t%s\n", d.FinalAttemptReason)
	}
	w.Flush()
	for _, a := range d.AttemptList {
		fmt.Fprintf(c.out.stdout, "attempt %d, started %s:\n", a.Attempt, stamp(a.Started))
		printed := false
		line := func(stage string, r *tx.Response) {
			if r != nil {
				fmt.Fprintf(c.out.stdout, "  %-5s %d %s\n", stage, r.Code, r.Message)
				printed = true
			}
		}
		line("mail", a.MailResponse)
		for i := range a.RcptResponse {
			line("rcpt", &a.RcptResponse[i])
		}
		line("data", a.DataResponse)
		if !printed {
			fmt.Fprintln(c.out.stdout, "  no reply yet")
		}
	}
}

// each runs f on every argument, printing what fails, and fails if any did.
func (c *queueClient) each(args []string, f func(string) error) error {
	failed := 0
	for _, a := range args {
		if err := f(a); err != nil {
			if len(args) == 1 {
				return err
			}
			fmt.Fprintf(c.out.stderr, "%s: %v\n", a, err)
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d failed", failed, len(args))
	}
	return nil
}

func (c *queueClient) retry(ids []string) error { return c.txAction(ids, "retry") }

func (c *queueClient) cancel(ids []string) error { return c.txAction(ids, "cancel") }

// txAction posts action for each transaction and prints the state it is in after.
func (c *queueClient) txAction(ids []string, action string) error {
	return c.each(ids, func(id string) error {
		var d admin.DetailView
		if err := c.call("POST", "/admin/transactions/"+url.PathEscape(id)+"/"+action, &d); err != nil || c.opts.json {
			return err
		}
		fmt.Fprintf(c.out.stdout, "%s: %s\n", d.ID, d.State)
		return nil
	})
}

func (c *queueClient) suspend(domains []string) error {
	return c.each(domains, func(d string) error {
		var v admin.DomainView
		if err := c.call("POST", "/admin/domains/"+url.PathEscape(d)+"/suspend", &v); err != nil || c.opts.json {
			return err
		}
		fmt.Fprintf(c.out.stdout, "%s: suspended since %s, holding %d\n", v.Domain, stamp(v.SuspendedSince), v.Held)
		return nil
	})
}

func (c *queueClient) resume(domains []string) error {
	return c.each(domains, func(d string) error {
		var v admin.ResumedView
		if err := c.call("POST", "/admin/domains/"+url.PathEscape(d)+"/resume", &v); err != nil || c.opts.json {
			return err
		}
		fmt.Fprintf(c.out.stdout, "%s: resumed\n", v.Domain)
		return nil
	})
}

func (c *queueClient) domains([]string) error {
	var l admin.DomainsView
	if err := c.call("GET", "/admin/domains", &l); err != nil || c.opts.json {
		return err
	}
	if len(l.Domains) == 0 {
		fmt.Fprintln(c.out.stdout, "no domain is suspended")
		return nil
	}
	w := tabwriter.NewWriter(c.out.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DOMAIN\tSUSPENDED SINCE\tHELD")
	for _, d := range l.Domains {
		fmt.Fprintf(w, "%s\t%s\t%d\n", d.Domain, stamp(d.SuspendedSince), d.Held)
	}
	return w.Flush()
}

func reply(r *admin.Reply) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%d %s (%s)", r.Code, r.Message, r.Stage)
}

func stamp(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 MST") }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clip shortens s to n runes for a table column.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
