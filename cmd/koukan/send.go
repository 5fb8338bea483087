package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/koukan/koukan/engine/addr"
	"github.com/koukan/koukan/engine/rest"
	"github.com/koukan/koukan/engine/tx"
)

var sendCmd = &command{
	name:    "send",
	summary: "send a message through the router's REST API and report each recipient's result",
	usage: `--from ADDR --to ADDR[,ADDR...] [--subject S] [--text T|@FILE] [--html H|@FILE] [--attach FILE]... [--wait] [--json]
       koukan send --from ADDR --to ADDR[,ADDR...] --raw FILE.eml [--wait] [--json]`,
	help: `Sends a message through the router's REST API, the way an application does: one
transaction per recipient, created under --sender (a sender of router.yaml). The message is
either built by the router from --subject, --text, --html and --attach (a message_builder
body, with From, To, Date and Message-ID filled in), or sent as it is from an RFC 5322 file
with --raw. Its bytes are uploaded once, with the first recipient's transaction; the other
recipients' transactions reuse them. Attachments are streamed from disk, with a progress bar
on a terminal for large ones.

Without --wait, koukan send prints each transaction's URL and exits once the router has
accepted them all: delivery goes on in the router, and the URL can be polled later. With
--wait it follows every transaction (hanging GETs) until the router is done with it and
prints the reply of the server the message went to, per recipient. With retries
configured, a temporary failure is retried by the router before it counts as final; bound
the wait with --timeout.

A router whose rest_listener has an api_keys_file (docs/security.md) wants a key for
--sender: --api-key-file names the file holding it (koukan apikey new --sender NAME
--key-out FILE makes one). Without the flag, the file named by $KOUKAN_API_KEY_FILE is used.

Examples:
  koukan send --from alice@example.com --to bob@example.com --subject hi --text 'Hello Bob'
  koukan send --from 'Alice <alice@example.com>' --to bob@example.com,carol@example.com \
      --subject 'Q3 report' --text @body.txt --html @body.html --attach report.pdf --wait
  koukan send --router http://router.example.com:8000 --sender app \
      --from alice@example.com --to bob@example.com --raw message.eml --wait --json

With --json, each transaction is one line of JSON:
  {"to": "bob@example.com", "url": "http://.../transactions/Pn-h...", "status": "delivered",
   "attempt_count": 1, "mail_response": {"code": 250, "message": "ok"},
   "rcpt_response": {...}, "data_response": {...},
   "final_attempt_reason": "upstream response success"}
where status is queued (without --wait), delivered, failed, pending (--timeout passed) or
error (the transaction could not be created or followed; "error" says why).

Exit status: 0 every transaction was created (with --wait: and delivered); 1 something
failed: the router could not be reached or refused a request, a file could not be read, a
recipient was not delivered; 2 a usage error.`,
	flags: func(fs *flag.FlagSet, out *output) func() int {
		o := &sendOptions{}
		fs.StringVar(&o.router, "router", "http://127.0.0.1:8000", "the router's base `URL` (its rest_listener.session_uri), e.g. https://router.example.com:8000")
		fs.StringVar(&o.sender, "sender", "submission", "the `name` of the sender in router.yaml to send as; it picks the output chain, e.g. --sender newsletters")
		fs.StringVar(&o.tag, "tag", "", "a `tag` of the sender, for a variant of its chain, e.g. --tag bulk (default: none)")
		fs.StringVar(&o.from, "from", "", "the sender's `address`, for the envelope and the From: header (required), e.g. alice@example.com or 'Alice <alice@example.com>'")
		fs.Var(&o.to, "to", "a recipient `address`; repeat the flag or separate with commas, e.g. --to bob@example.com,'Carol <carol@example.com>' (required)")
		fs.StringVar(&o.subject, "subject", "", "the Subject: `text`, e.g. --subject 'Your report'")
		fs.StringVar(&o.text, "text", "", "the plain-text body: the `text` itself, or @FILE to read it from a UTF-8 file, e.g. --text @body.txt")
		fs.StringVar(&o.html, "html", "", "the HTML body: the `html` itself or @FILE, e.g. --html @body.html; with --text too, mail readers pick one of the two")
		fs.Var(&o.attach, "attach", "attach a `file`, repeatable, e.g. --attach report.pdf --attach logo.png; its type comes from its extension (or its first bytes)")
		fs.StringVar(&o.raw, "raw", "", "send this RFC 5322 message `file` as it is instead of building one (- reads standard input), e.g. --raw message.eml")
		fs.BoolVar(&o.wait, "wait", false, "wait until the router is done with every transaction, print each recipient's reply from upstream, and exit 1 if any was not delivered")
		fs.DurationVar(&o.timeout, "timeout", 0, "with --wait, stop waiting after this `duration` and report what is still pending, e.g. --timeout 10m (default: no limit)")
		fs.BoolVar(&o.json, "json", false, "print one JSON object per transaction, one per line, for scripts (see above)")
		apiKeyFileFlag(fs, &o.apiKeyFile)
		return func() int {
			if fs.NArg() > 0 {
				fmt.Fprintf(out.stderr, "koukan send: unexpected argument %q (every option is a flag; see koukan send --help)\n", fs.Arg(0))
				return 2
			}
			return out.send(o)
		}
	},
}

// sendOptions are koukan send's flags.
type sendOptions struct {
	router, sender, tag string
	apiKeyFile          string
	from, subject       string
	text, html, raw     string
	to, attach          listFlag
	wait, json          bool
	timeout             time.Duration
}

// Uploads of at least progressMin bytes get a progress bar when stderr is a terminal (or
// always, with progressAlways: tests).
var (
	progressMin    int64 = 1 << 20
	progressAlways       = false
)

// apiKeyFileEnv names the API key file of koukan send, queue and bench rest when
// --api-key-file is not given: a key is a secret, better kept out of command lines and shell
// history, and one variable serves every command.
const apiKeyFileEnv = "KOUKAN_API_KEY_FILE"

// apiKeyFileFlag declares --api-key-file, which defaults to $KOUKAN_API_KEY_FILE.
func apiKeyFileFlag(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "api-key-file", os.Getenv(apiKeyFileEnv), "a `file` holding the API key to send as Authorization: Bearer, "+
		"for a router with an api_keys_file (default: $"+apiKeyFileEnv+", else no key)")
}

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// mailAddress is an address from --from or --to: the envelope address and the display name
// for the header.
type mailAddress struct {
	name, address string
}

// attachment is one --attach file, open until it is uploaded.
type attachment struct {
	path, contentType string
	blobID            string
	size              int64
	file              *os.File
}

// sendJob is one run of koukan send.
type sendJob struct {
	out        *output
	opts       *sendOptions
	client     *rest.Client
	create     string // the URL transactions are created at
	from       mailAddress
	fromDomain string // in A-labels, for the Message-ID
	to         []mailAddress
	// For a built message: its spec, and the --attach files it uploads.
	spec    *tx.MessageSpec
	attachs []*attachment
	// For --raw: the message file.
	raw     io.Reader
	rawName string
	rawSize int64 // -1: unknown (standard input)
}

// sendResult is what became of one recipient's transaction.
type sendResult struct {
	to    mailAddress
	tx    *rest.Tx
	state *tx.Tx
	err   error // the transaction could not be created, or followed
	// status is queued, delivered, failed, pending or error.
	status string
}

func (o *output) send(opts *sendOptions) int {
	j := &sendJob{out: o, opts: opts}
	if msg := j.parseArgs(); msg != "" {
		fmt.Fprintf(o.stderr, "koukan send: %s\n", msg)
		return 2
	}
	if err := j.prepare(); err != nil {
		fmt.Fprintf(o.stderr, "koukan send: %v\n", err)
		j.closeFiles()
		return 1
	}
	defer j.closeFiles()
	client, err := rest.NewClient(rest.Options{APIKeyFile: opts.apiKeyFile})
	if err != nil {
		fmt.Fprintf(o.stderr, "koukan send: %v\n", err)
		return 1
	}
	j.client = client
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	results := make([]*sendResult, len(j.to))
	first, err := j.createFirst(ctx)
	if err != nil {
		fmt.Fprintf(o.stderr, "koukan send: %s; nothing was sent\n", j.describe(err))
		return 1
	}
	results[0] = &sendResult{to: j.to[0], tx: first, status: "queued"}
	j.printQueued(results[0])
	for i, rcpt := range j.to[1:] {
		r := &sendResult{to: rcpt, status: "queued"}
		r.tx, r.err = j.createReusing(ctx, rcpt, first)
		if r.err != nil {
			r.status = "error"
		}
		results[i+1] = r
		j.printQueued(r)
	}

	if opts.wait {
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if opts.timeout > 0 {
			wctx, cancel = context.WithTimeout(ctx, opts.timeout)
		}
		for _, r := range results {
			if r.tx != nil {
				j.waitFor(wctx, r)
			}
		}
		cancel()
	}
	status := 0
	for _, r := range results {
		if r.tx != nil && r.state == nil {
			r.state = r.tx.State()
		}
		j.printResult(r)
		if r.status != "queued" && r.status != "delivered" {
			status = 1
		}
	}
	return status
}

// parseArgs checks the flags and returns what is wrong with them, or "".
func (j *sendJob) parseArgs() string {
	o := j.opts
	u, err := url.Parse(o.router)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("--router %q: expected a URL such as http://127.0.0.1:8000", o.router)
	}
	if o.sender == "" || strings.ContainsAny(o.sender, "/?#") {
		return fmt.Sprintf("--sender %q: expected the name of a sender of router.yaml", o.sender)
	}
	j.create = strings.TrimSuffix(o.router, "/") + "/senders/" + url.PathEscape(o.sender) + "/transactions"
	if o.from == "" {
		return "--from is required: the sender's address, e.g. --from alice@example.com"
	}
	from, err := addr.ParseHeaderAddressList(o.from)
	if err != nil || len(from) != 1 {
		return fmt.Sprintf("--from %q: expected one address, such as alice@example.com or 'Alice <alice@example.com>'", o.from)
	}
	j.from = mailAddress{from[0].Name, from[0].Mailbox.String()}
	if j.fromDomain, err = from[0].Mailbox.ASCIIDomain(); err != nil {
		return fmt.Sprintf("--from %q: %v", o.from, err)
	}
	if len(o.to) == 0 {
		return "--to is required: at least one recipient, e.g. --to bob@example.com"
	}
	for _, v := range o.to {
		list, err := addr.ParseHeaderAddressList(v)
		if err != nil {
			return fmt.Sprintf("--to %q: %v", v, err)
		}
		for _, a := range list {
			j.to = append(j.to, mailAddress{a.Name, a.Mailbox.String()})
		}
	}
	built := o.subject != "" || o.text != "" || o.html != "" || len(o.attach) > 0
	switch {
	case o.raw != "" && built:
		return "--raw sends a message as it is: it cannot be combined with --subject, --text, --html or --attach"
	case o.raw == "" && o.text == "" && o.html == "" && len(o.attach) == 0:
		return "nothing to send: give --text, --html or --attach to build a message, or --raw FILE.eml"
	case o.timeout < 0:
		return "--timeout must not be negative"
	case o.timeout > 0 && !o.wait:
		return "--timeout limits --wait; give --wait too"
	}
	return ""
}

// prepare reads what the message is made of, so that a file that cannot be read stops the
// command before anything is sent.
func (j *sendJob) prepare() error {
	o := j.opts
	if o.raw != "" {
		if o.raw == "-" {
			j.raw, j.rawName, j.rawSize = os.Stdin, "standard input", -1
			return nil
		}
		f, size, err := openFile(o.raw)
		if err != nil {
			return err
		}
		j.raw, j.rawName, j.rawSize = f, o.raw, size
		return nil
	}
	spec := &tx.MessageSpec{}
	header := func(name string, v any) {
		b, _ := json.Marshal(v)
		spec.Headers = append(spec.Headers, tx.Header{Name: name, Value: b})
	}
	type specAddress struct {
		Address     string `json:"address"`
		DisplayName string `json:"display_name,omitempty"`
	}
	header("From", []specAddress{{j.from.address, j.from.name}})
	var to []specAddress
	for _, a := range j.to {
		to = append(to, specAddress{a.address, a.name})
	}
	header("To", to)
	if o.subject != "" {
		header("Subject", o.subject)
	}
	now := time.Now()
	_, offset := now.Zone()
	header("Date", map[string]int64{"unix_secs": now.Unix(), "tz_offset": int64(offset)})
	header("Message-ID", []string{strings.ToLower(rand.Text()) + "@" + j.fromDomain})

	html, err := textArg("--html", o.html)
	if err != nil {
		return err
	}
	text, err := textArg("--text", o.text)
	if err != nil {
		return err
	}
	// The first part is the primary body: HTML when there is some, with the plain text as
	// its alternative.
	if o.html != "" {
		spec.TextBody = append(spec.TextBody, tx.Part{ContentType: "text/html", Content: tx.Content{Kind: tx.ContentInline, Value: html}})
	}
	if o.text != "" || o.html == "" {
		spec.TextBody = append(spec.TextBody, tx.Part{ContentType: "text/plain", Content: tx.Content{Kind: tx.ContentInline, Value: text}})
	}
	for i, path := range o.attach {
		f, size, err := openFile(path)
		if err != nil {
			return err
		}
		a := &attachment{path: path, blobID: "attachment" + strconv.Itoa(i+1), size: size, file: f}
		j.attachs = append(j.attachs, a)
		if a.contentType, err = contentType(f); err != nil {
			return fmt.Errorf("cannot read %s: %w", path, plainIOError(err))
		}
		spec.FileAttachments = append(spec.FileAttachments, tx.Part{ContentType: a.contentType,
			Content: tx.Content{Kind: tx.ContentCreate, Value: a.blobID}, Filename: filepath.Base(path)})
	}
	j.spec = spec
	return nil
}

func (j *sendJob) closeFiles() {
	for _, a := range j.attachs {
		a.file.Close()
	}
	if f, ok := j.raw.(*os.File); ok && f != os.Stdin {
		f.Close()
	}
}

// openFile opens a regular file to upload and returns its size.
func openFile(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot read %s: %w", path, plainIOError(err))
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("cannot read %s: %w", path, plainIOError(err))
	}
	return f, st.Size(), nil
}

// plainIOError drops the operation and path that *PathError repeats.
func plainIOError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// textArg is the value of --text or --html: the text itself, or a file's if it starts
// with @.
func textArg(flagName, v string) (string, error) {
	text := v
	if name, ok := strings.CutPrefix(v, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return "", fmt.Errorf("%s: cannot read %s: %w", flagName, name, plainIOError(err))
		}
		if !utf8.Valid(b) {
			return "", fmt.Errorf("%s: %s is not UTF-8 text", flagName, name)
		}
		return string(b), nil
	}
	if !utf8.Valid([]byte(text)) {
		return "", fmt.Errorf("%s: the text is not UTF-8", flagName)
	}
	return text, nil
}

// contentType is an attachment's media type, without parameters: by its extension, else
// by its first bytes. Text that is not UTF-8 goes as application/octet-stream, since the
// router sends text parts as UTF-8. f is left at its start.
func contentType(f *os.File) (string, error) {
	ct := mime.TypeByExtension(filepath.Ext(f.Name()))
	if ct == "" {
		head := make([]byte, 512)
		n, err := io.ReadFull(f, head)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return "", err
		}
		ct = http.DetectContentType(head[:n])
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = "application/octet-stream"
	}
	if strings.HasPrefix(mt, "text/") {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		ok, err := isUTF8(f)
		if err != nil {
			return "", err
		}
		if !ok {
			mt = "application/octet-stream"
		}
	}
	_, err = f.Seek(0, io.SeekStart)
	return mt, err
}

// isUTF8 reads r to its end and reports whether it is valid UTF-8.
func isUTF8(r io.Reader) (bool, error) {
	buf := make([]byte, 64<<10)
	var carry []byte
	for {
		n, err := r.Read(buf[len(carry):])
		chunk := buf[:len(carry)+n]
		// Keep an incomplete rune at the end for the next read.
		cut := len(chunk)
		for i := 1; i < utf8.UTFMax && i <= len(chunk); i++ {
			if utf8.RuneStart(chunk[len(chunk)-i]) {
				if !utf8.FullRune(chunk[len(chunk)-i:]) {
					cut = len(chunk) - i
				}
				break
			}
		}
		if err == io.EOF {
			return utf8.Valid(chunk), nil
		}
		if err != nil {
			return false, err
		}
		if !utf8.Valid(chunk[:cut]) {
			return false, nil
		}
		carry = append(carry[:0], chunk[cut:]...)
		copy(buf, carry)
	}
}

// createFirst creates the first recipient's transaction and uploads the message's bytes
// to it. A failure after the transaction exists cancels it.
func (j *sendJob) createFirst(ctx context.Context) (*rest.Tx, error) {
	t := j.envelope(j.to[0])
	if j.spec != nil {
		t.Body = &tx.MessageBuilder{Spec: *j.spec}
	}
	up, err := j.client.Create(ctx, j.create, t)
	if err != nil {
		return nil, err
	}
	err = j.upload(ctx, up)
	if err != nil {
		_ = up.Cancel(context.WithoutCancel(ctx))
		return nil, err
	}
	return up, nil
}

// upload puts the raw message, or each attachment, to the blob URIs the router gave.
func (j *sendJob) upload(ctx context.Context, up *rest.Tx) error {
	state := up.State()
	if j.spec == nil {
		b, ok := state.Body.(*tx.Blob)
		if !ok || b.URI == "" {
			return fmt.Errorf("the router gave no URI to upload the message to")
		}
		return j.put(ctx, up, b.URI, j.rawName, j.raw, j.rawSize)
	}
	uris := blobURIs(state)
	for _, a := range j.attachs {
		uri, ok := uris[a.blobID]
		if !ok {
			return fmt.Errorf("the router gave no URI to upload %s to", a.path)
		}
		if err := j.put(ctx, up, uri, a.path, a.file, a.size); err != nil {
			return err
		}
	}
	return nil
}

// put uploads one blob, streamed, with a progress bar when it is large and stderr is a
// terminal.
func (j *sendJob) put(ctx context.Context, up *rest.Tx, uri, name string, r io.Reader, size int64) error {
	f, seekable := r.(*os.File)
	if !seekable || f == os.Stdin || size < progressMin || !j.stderrIsTerminal() {
		if err := up.PutBlob(ctx, uri, r, size); err != nil {
			return &uploadError{name, err}
		}
		return nil
	}
	p := &progress{r: f, w: j.out.stderr, label: filepath.Base(name), total: size}
	err := up.PutBlob(ctx, uri, p, size)
	p.finish(err == nil)
	if err != nil {
		return &uploadError{name, err}
	}
	return nil
}

func (j *sendJob) stderrIsTerminal() bool {
	if progressAlways {
		return true
	}
	f, ok := j.out.stderr.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// uploadError is a failed upload of a file.
type uploadError struct {
	name string
	err  error
}

func (e *uploadError) Error() string { return "uploading " + e.name + ": " + e.err.Error() }
func (e *uploadError) Unwrap() error { return e.err }

// blobURIs are the URIs of a message_builder transaction's part blobs, by blob id.
func blobURIs(state *tx.Tx) map[string]string {
	uris := map[string]string{}
	if mb, ok := state.Body.(*tx.MessageBuilder); ok {
		for _, b := range mb.Blobs {
			uris[b.ID] = b.URI
		}
	}
	return uris
}

// envelope is a recipient's transaction without its body.
func (j *sendJob) envelope(rcpt mailAddress) *tx.Tx {
	t := &tx.Tx{MailFrom: &tx.Mailbox{Address: j.from.address}, RcptTo: []tx.Mailbox{{Address: rcpt.address}}}
	if j.opts.tag != "" {
		t.Sender = &tx.Sender{Tag: j.opts.tag}
	}
	return t
}

// createReusing creates a later recipient's transaction, whose body reuses the bytes
// uploaded with the first one: the raw message, or every part of the built one.
func (j *sendJob) createReusing(ctx context.Context, rcpt mailAddress, first *rest.Tx) (*rest.Tx, error) {
	t := j.envelope(rcpt)
	state := first.State()
	if j.spec == nil {
		b, ok := state.Body.(*tx.Blob)
		if !ok || b.URI == "" {
			return nil, errors.New("the router gave no URI for the first transaction's message")
		}
		t.Body = &tx.ReuseBody{URI: b.URI}
	} else {
		spec := *j.spec
		uris := blobURIs(state)
		n := 0
		reuse := func(parts []tx.Part) ([]tx.Part, error) {
			out := make([]tx.Part, len(parts))
			for i, p := range parts {
				// An inline part's blob is inline<N>, N counting every part in order.
				id := "inline" + strconv.Itoa(n)
				if p.Content.Kind == tx.ContentCreate {
					id = p.Content.Value
				}
				n++
				uri, ok := uris[id]
				if !ok {
					return nil, fmt.Errorf("the router gave no URI for the first transaction's part %q", id)
				}
				p.Content = tx.Content{Kind: tx.ContentReuse, Value: uri}
				out[i] = p
			}
			return out, nil
		}
		var err error
		if spec.TextBody, err = reuse(spec.TextBody); err != nil {
			return nil, err
		}
		if spec.RelatedAttachments, err = reuse(spec.RelatedAttachments); err != nil {
			return nil, err
		}
		if spec.FileAttachments, err = reuse(spec.FileAttachments); err != nil {
			return nil, err
		}
		t.Body = &tx.MessageBuilder{Spec: spec}
	}
	return j.client.Create(ctx, j.create, t)
}

// waitFor follows a transaction until the router is done with it, or ctx ends.
func (j *sendJob) waitFor(ctx context.Context, r *sendResult) {
	st, err := r.tx.Wait(ctx, func(t *tx.Tx) bool { return t.FinalAttemptReason != "" })
	var re *rest.Error
	switch {
	case err == nil:
		r.state = st
		r.status = "failed"
		if st.FinalAttemptReason == tx.ReasonUpstreamSuccess {
			r.status = "delivered"
		}
	case errors.As(err, &re) && (re.Kind == rest.KindTimeout || re.Kind == rest.KindCanceled):
		r.state, r.status = r.tx.State(), "pending"
	default:
		r.state, r.status, r.err = r.tx.State(), "error", err
	}
}

// printQueued tells a human at once where each transaction is; with --json everything is
// printed at the end.
func (j *sendJob) printQueued(r *sendResult) {
	if j.opts.json {
		return
	}
	if r.err != nil {
		fmt.Fprintf(j.out.stdout, "%s: not sent: %s\n", r.to.address, j.describe(r.err))
		return
	}
	fmt.Fprintf(j.out.stdout, "%s: queued as %s\n", r.to.address, r.tx.Location())
}

// sendReport is the --json form of a result.
type sendReport struct {
	To                 string       `json:"to"`
	URL                string       `json:"url,omitempty"`
	Status             string       `json:"status"`
	AttemptCount       int          `json:"attempt_count,omitempty"`
	MailResponse       *tx.Response `json:"mail_response,omitempty"`
	RcptResponse       *tx.Response `json:"rcpt_response,omitempty"`
	DataResponse       *tx.Response `json:"data_response,omitempty"`
	FinalAttemptReason string       `json:"final_attempt_reason,omitempty"`
	Error              string       `json:"error,omitempty"`
}

func (j *sendJob) printResult(r *sendResult) {
	if j.opts.json {
		rep := sendReport{To: r.to.address, Status: r.status}
		if r.tx != nil {
			rep.URL = r.tx.Location()
		}
		if st := r.state; st != nil {
			rep.AttemptCount, rep.MailResponse, rep.DataResponse = st.AttemptCount, st.MailResponse, st.DataResponse
			if len(st.RcptResponse) > 0 {
				rep.RcptResponse = &st.RcptResponse[0]
			}
			rep.FinalAttemptReason = st.FinalAttemptReason
		}
		if r.err != nil {
			rep.Error = j.describe(r.err)
		}
		b, _ := json.Marshal(rep)
		fmt.Fprintf(j.out.stdout, "%s\n", b)
		return
	}
	if !j.opts.wait || r.tx == nil {
		return // said when queued
	}
	st := r.state
	switch r.status {
	case "delivered":
		fmt.Fprintf(j.out.stdout, "%s: delivered: %s\n", r.to.address, replyText(st))
	case "failed":
		fmt.Fprintf(j.out.stdout, "%s: failed: %s\n", r.to.address, replyText(st))
	case "pending":
		fmt.Fprintf(j.out.stdout, "%s: still in progress (%s); follow it at %s\n", r.to.address, replyText(st), r.tx.Location())
	default:
		fmt.Fprintf(j.out.stdout, "%s: lost track of it: %s; follow it at %s\n", r.to.address, j.describe(r.err), r.tx.Location())
	}
}

// replyText is the reply that decided the transaction's fate (the first failure, else the
// answer to the message), with the router's final reason when it adds something.
func replyText(st *tx.Tx) string {
	var reply *tx.Response
	switch {
	case st.MailResponse != nil && st.MailResponse.Err():
		reply = st.MailResponse
	case len(st.RcptResponse) > 0 && st.RcptResponse[0].Err():
		reply = &st.RcptResponse[0]
	case st.DataResponse != nil:
		reply = st.DataResponse
	case len(st.RcptResponse) > 0:
		reply = &st.RcptResponse[0]
	case st.MailResponse != nil:
		reply = st.MailResponse
	}
	var parts []string
	if reply != nil {
		parts = append(parts, reply.String())
	}
	if st.FinalAttemptReason != "" && st.FinalAttemptReason != tx.ReasonUpstreamSuccess {
		parts = append(parts, "("+st.FinalAttemptReason+")")
	}
	if st.FinalAttemptReason == "" {
		if st.AttemptCount > 0 {
			parts = append(parts, fmt.Sprintf("attempt %d", st.AttemptCount))
		} else {
			parts = append(parts, "no attempt yet")
		}
	}
	return strings.Join(parts, " ")
}

// describe says what went wrong in plain words: which file, whether the router could be
// reached, and what it answered.
func (j *sendJob) describe(err error) string {
	prefix := ""
	var ue *uploadError
	if errors.As(err, &ue) {
		prefix = "uploading " + ue.name + ": "
		err = ue.err
	}
	var re *rest.Error
	if !errors.As(err, &re) {
		return prefix + err.Error()
	}
	switch re.Kind {
	case rest.KindTransport:
		return prefix + fmt.Sprintf("cannot reach the router at %s: %s", j.opts.router, transportCause(re.Err))
	case rest.KindTimeout:
		return prefix + "timed out waiting for the router"
	case rest.KindCanceled:
		return prefix + "interrupted"
	case rest.KindStatus:
		s := fmt.Sprintf("the router answered %d %s", re.Status, http.StatusText(re.Status))
		if re.Problem != "" {
			s += " (" + re.Problem + ")"
		}
		if msg := routerMessage(re); msg != "" {
			s += ": " + msg
		}
		return prefix + s
	case rest.KindLocal:
		var pe *os.PathError
		if errors.As(re.Err, &pe) {
			return prefix + "reading the file: " + pe.Err.Error()
		}
	}
	return prefix + re.Error()
}

// routerMessage is the message of the router's problem body, which the rest client keeps
// in its error's cause as "<url> answered <status>: <message>".
func routerMessage(re *rest.Error) string {
	if re.Err == nil {
		return ""
	}
	inner := errors.Unwrap(re.Err)
	if inner == nil {
		return ""
	}
	msg, ok := strings.CutPrefix(re.Err.Error(), inner.Error()+": ")
	if !ok {
		return ""
	}
	return msg
}

// transportCause is the network error without the method and URL net/http adds.
func transportCause(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	if err == nil {
		return "no answer"
	}
	return err.Error()
}

// progress draws an upload's progress on a terminal. It passes Seek on, so that the rest
// client can replay the upload after a redirect.
type progress struct {
	r     io.ReadSeeker
	w     io.Writer
	label string
	total int64

	mu    sync.Mutex // the transport reads on a goroutine of its own
	done  int64
	drawn time.Time
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.mu.Lock()
	p.done += int64(n)
	p.draw(false)
	p.mu.Unlock()
	return n, err
}

func (p *progress) Seek(offset int64, whence int) (int64, error) {
	n, err := p.r.Seek(offset, whence)
	if err == nil {
		p.mu.Lock()
		p.done = n
		p.mu.Unlock()
	}
	return n, err
}

func (p *progress) finish(ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ok {
		p.done = p.total
	}
	p.draw(true)
	fmt.Fprintln(p.w)
}

// draw redraws the bar, at most ten times a second unless forced.
func (p *progress) draw(force bool) {
	now := time.Now()
	if !force && now.Sub(p.drawn) < 100*time.Millisecond {
		return
	}
	p.drawn = now
	const width = 30
	pct := int64(100)
	if p.total > 0 {
		pct = min(100, p.done*100/p.total)
	}
	fill := int(pct * width / 100)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3d%% %s of %s", p.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
		pct, byteSize(p.done), byteSize(p.total))
}

// byteSize formats a size for people: 512 B, 1.5 KiB, 27.0 MiB.
func byteSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}
