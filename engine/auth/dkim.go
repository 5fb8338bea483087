// Package auth implements the message authentication the MTA does itself:
// DKIM signing and verification (RFC 6376) and SPF checks (RFC 7208). It
// wraps go-msgauth and blitiri.com.ar/go/spf, adding what the Lua filters
// (dkim_sign, dkim_check, spf_check) need on top: key files, RFC 8601 result
// words and DNS through the engine's own resolver.
package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/koukan/koukan/engine/addr"
)

// defaultSignedFields are signed when SignOptions.HeaderKeys is nil: the
// RFC 6376 §5.4.1 recommendations plus the MIME and List-* fields, which
// carry meaning a forger could change.
var defaultSignedFields = []string{
	"From", "Reply-To", "Subject", "Date", "To", "Cc",
	"Resent-Date", "Resent-From", "Resent-Sender", "Resent-To", "Resent-Cc",
	"In-Reply-To", "References", "Message-ID", "Sender",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-ID", "Content-Description",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Subscribe",
	"List-Post", "List-Owner", "List-Archive",
}

// copyBuffers hold the pieces SignAll feeds the signers.
var copyBuffers = sync.Pool{New: func() any {
	b := make([]byte, 64<<10)
	return &b
}}

// maxSignatures bounds the work one message can cause: each signature costs
// a DNS query and a pass over the body. Further signatures are reported as
// neutral, unverified.
const maxSignatures = 10

// SignOptions configures DKIM signing.
type SignOptions struct {
	// Domain (d=) and Selector (s=) name the key record
	// <Selector>._domainkey.<Domain>. An IDN Domain is converted to
	// A-labels.
	Domain, Selector string
	// Key is an *rsa.PrivateKey (at least 1024 bits) or an
	// ed25519.PrivateKey.
	Key crypto.Signer
	// HeaderKeys lists the header fields to sign. nil signs those of
	// defaultSignedFields the message has, plus one more From so that a
	// From added later breaks the signature. Fields a mailing list adds
	// (List-*) are thus only signed when already present.
	HeaderKeys []string
	// Expiration sets x= that long after signing; 0 means no expiry.
	Expiration time.Duration
	// Now is the clock for x= (nil = time.Now). go-msgauth stamps t= from
	// time.Now itself, so tests that need a fixed t= run in a
	// testing/synctest bubble.
	Now func() time.Time
	// Canonicalization is c=: "header/body", each "relaxed" or "simple".
	// A single word names the header canonicalization, the body's being
	// simple, as RFC 6376 §3.5 reads c=. "" means relaxed/relaxed.
	Canonicalization string
}

// Signer signs messages with fixed options; NewSigner validates them once
// so that a bad configuration shows up when it is loaded rather than on
// the first message.
type Signer struct {
	o                      SignOptions
	headerCanon, bodyCanon dkim.Canonicalization
}

// NewSigner checks o and returns a Signer using it.
func NewSigner(o SignOptions) (*Signer, error) {
	if o.Selector == "" {
		return nil, errors.New("dkim: no selector")
	}
	if o.Domain == "" {
		return nil, errors.New("dkim: no domain")
	}
	d, err := addr.Mailbox{Domain: o.Domain}.ASCIIDomain()
	if err != nil || strings.HasPrefix(d, "[") {
		return nil, fmt.Errorf("dkim: invalid signing domain %q", o.Domain)
	}
	o.Domain = d
	switch k := o.Key.(type) {
	case nil:
		return nil, errors.New("dkim: no key")
	case *rsa.PrivateKey:
		// RFC 8301 §3.2: verifiers reject shorter keys.
		if n := k.N.BitLen(); n < 1024 {
			return nil, fmt.Errorf("dkim: RSA key too short: %d < 1024 bits", n)
		}
	case ed25519.PrivateKey:
	default:
		return nil, fmt.Errorf("dkim: unsupported key type %T", o.Key)
	}
	if o.HeaderKeys != nil && !hasFrom(o.HeaderKeys) {
		return nil, errors.New("dkim: HeaderKeys must include From")
	}
	if o.Expiration < 0 {
		return nil, fmt.Errorf("dkim: negative expiration %v", o.Expiration)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	hc, bc, err := parseCanonicalization(o.Canonicalization)
	if err != nil {
		return nil, err
	}
	return &Signer{o: o, headerCanon: hc, bodyCanon: bc}, nil
}

// parseCanonicalization reads a c= value; "" is relaxed/relaxed, which
// survives the whitespace and folding changes relays commonly make.
func parseCanonicalization(c string) (header, body dkim.Canonicalization, err error) {
	if c == "" {
		return dkim.CanonicalizationRelaxed, dkim.CanonicalizationRelaxed, nil
	}
	h, b, found := strings.Cut(strings.ToLower(strings.TrimSpace(c)), "/")
	if !found {
		b = string(dkim.CanonicalizationSimple)
	}
	for _, v := range []string{h, b} {
		if v != string(dkim.CanonicalizationSimple) && v != string(dkim.CanonicalizationRelaxed) {
			return "", "", fmt.Errorf("dkim: canonicalization %q: want relaxed or simple, as in \"relaxed/simple\"", c)
		}
	}
	return dkim.Canonicalization(h), dkim.Canonicalization(b), nil
}

func hasFrom(keys []string) bool {
	for _, k := range keys {
		if strings.EqualFold(k, "From") {
			return true
		}
	}
	return false
}

// Sign reads the message r (RFC 5322, CRLF line endings) and returns the
// complete, folded "DKIM-Signature: ...\r\n" header field to prepend.
// It is a shorthand for NewSigner(o) and Signer.Sign.
func Sign(r io.Reader, o SignOptions) (string, error) {
	s, err := NewSigner(o)
	if err != nil {
		return "", err
	}
	return s.Sign(r)
}

// Sign reads the message r and returns the DKIM-Signature header field for
// it. Only the header section is held in memory; the body is streamed
// through the hash.
func (s *Signer) Sign(r io.Reader) (string, error) {
	sigs, err := SignAll(r, s)
	if err != nil {
		return "", err
	}
	return sigs[0], nil
}

// SignAll reads the message r once and signs it with each of signers (for
// example an RSA and an Ed25519 key, or the keys of several domains). It
// returns the DKIM-Signature fields in the order of signers; each covers
// the message as r has it, none the others, so they may be prepended in
// any order.
func SignAll(r io.Reader, signers ...*Signer) ([]string, error) {
	if len(signers) == 0 {
		return nil, errors.New("dkim: no signers")
	}
	br := bufio.NewReader(r)
	head, fields, err := readHeader(br)
	if err != nil {
		return nil, fmt.Errorf("dkim: reading header: %w", err)
	}
	var defaults []string
	dss := make([]*dkim.Signer, 0, len(signers))
	closeAll := func() {
		for _, ds := range dss {
			ds.Close()
		}
	}
	for _, s := range signers {
		keys := s.o.HeaderKeys
		if keys == nil {
			if defaults == nil {
				if defaults = defaultKeys(fields); defaults == nil {
					closeAll()
					return nil, errors.New("dkim: message has no From field")
				}
			}
			keys = defaults
		}
		opts := &dkim.SignOptions{
			Domain:                 s.o.Domain,
			Selector:               s.o.Selector,
			Signer:                 s.o.Key,
			HeaderCanonicalization: s.headerCanon,
			BodyCanonicalization:   s.bodyCanon,
			HeaderKeys:             keys,
		}
		if s.o.Expiration > 0 {
			opts.Expiration = s.o.Now().Add(s.o.Expiration)
		}
		ds, err := dkim.NewSigner(opts)
		if err != nil {
			closeAll()
			return nil, err
		}
		dss = append(dss, ds)
	}
	var w io.Writer = dss[0]
	if len(dss) > 1 {
		ws := make([]io.Writer, len(dss))
		for i, ds := range dss {
			ws[i] = ds
		}
		w = io.MultiWriter(ws...)
	}
	// The header, then the body in large pieces: go-msgauth hashes behind
	// an io.Pipe, where every write is a hand-over between goroutines.
	_, err = w.Write(head)
	if err == nil {
		buf := copyBuffers.Get().(*[]byte)
		_, err = io.CopyBuffer(w, struct{ io.Reader }{br}, *buf)
		copyBuffers.Put(buf)
	}
	if err != nil {
		closeAll()
		return nil, err
	}
	sigs := make([]string, len(dss))
	var errs []error
	for i, ds := range dss {
		if err := ds.Close(); err != nil {
			errs = append(errs, err)
			continue
		}
		sigs[i] = ds.Signature()
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return sigs, nil
}

// defaultKeys returns the h= list for a message with these fields: each
// default field once per occurrence, From once more. nil means the message
// has no From.
func defaultKeys(fields []headerField) []string {
	count := make(map[string]int)
	for _, f := range fields {
		count[strings.ToLower(f.name)]++
	}
	if count["from"] == 0 {
		return nil
	}
	count["from"]++
	var keys []string
	for _, k := range defaultSignedFields {
		for range count[strings.ToLower(k)] {
			keys = append(keys, k)
		}
	}
	return keys
}

// DKIMResult is the outcome for one DKIM-Signature field, in the terms of
// an RFC 8601 Authentication-Results "dkim" method.
type DKIMResult struct {
	// Domain (d=), Selector (s=), Identifier (i=, defaulting to "@"+d=)
	// and Algorithm (a=) come from the signature, as far as it could be
	// parsed.
	Domain, Selector, Identifier string
	// Result is "pass", "fail", "neutral", "temperror" or "permerror".
	Result string
	// Reason explains a result other than pass, for the reason= property
	// and logs.
	Reason    string
	Algorithm string
}

// Verify reads the message r and checks its DKIM signatures, returning one
// result per DKIM-Signature field in header order (an empty slice when
// there are none). lookupTXT is called for the key records; errors other
// than "not found" count as temporary. The error return is for failures to
// read the message, not for bad signatures.
func Verify(ctx context.Context, r io.Reader, lookupTXT func(ctx context.Context, name string) ([]string, error)) ([]DKIMResult, error) {
	results, _, err := VerifyTags(ctx, r, lookupTXT)
	return results, err
}

// VerifyTags is Verify that also returns the tags of each signature, for
// the results' details (t=, x=, h=, c=, ...): by tag name, with whitespace
// removed from the values, without b= and bh=.
func VerifyTags(ctx context.Context, r io.Reader, lookupTXT func(ctx context.Context, name string) ([]string, error)) ([]DKIMResult, []map[string]string, error) {
	br := bufio.NewReader(r)
	head, fields, err := readHeader(br)
	if err != nil {
		return nil, nil, fmt.Errorf("dkim: reading header: %w", err)
	}
	results := []DKIMResult{}
	var allTags []map[string]string
	for _, f := range fields {
		if strings.EqualFold(f.name, "DKIM-Signature") {
			tags := parseTags(f.value)
			delete(tags, "b")
			delete(tags, "bh")
			allTags = append(allTags, tags)
			results = append(results, DKIMResult{
				Domain:     tags["d"],
				Selector:   tags["s"],
				Identifier: tags["i"],
				Algorithm:  tags["a"],
			})
		}
	}
	if len(results) == 0 {
		// Spare reading the body when there is nothing to check.
		return results, allTags, nil
	}
	opts := &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			txts, err := lookupTXT(ctx, name)
			return txts, dnsError(name, err)
		},
		MaxVerifications: maxSignatures,
	}
	verifs, err := dkim.VerifyWithOptions(io.MultiReader(bytes.NewReader(head), br), opts)
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		return nil, nil, err
	}
	for i := range results {
		res := &results[i]
		if i >= len(verifs) {
			res.Result = "neutral"
			res.Reason = fmt.Sprintf("not verified: more than %d signatures", maxSignatures)
			continue
		}
		v := verifs[i]
		if v.Domain != "" {
			res.Domain = v.Domain
		}
		if v.Identifier != "" {
			res.Identifier = v.Identifier
		}
		res.Result, res.Reason = dkimResult(v.Err)
	}
	return results, allTags, nil
}

// dkimResult maps a go-msgauth verification error to an RFC 8601 result
// and reason. go-msgauth reports errors it cannot classify through
// VerifyWithOptions' own error, so what is left unclassified here is a
// signature that did not verify.
func dkimResult(err error) (result, reason string) {
	if err == nil {
		return "pass", ""
	}
	reason = strings.TrimPrefix(err.Error(), "dkim: ")
	switch {
	case dkim.IsTempFail(err):
		return "temperror", reason
	case dkim.IsPermFail(err):
		return "permerror", reason
	}
	return "fail", reason
}

// parseTags splits a DKIM tag-list (RFC 6376 §3.2) leniently: it only
// serves to label results, go-msgauth does the strict parsing.
func parseTags(s string) map[string]string {
	tags := make(map[string]string)
	for spec := range strings.SplitSeq(s, ";") {
		name, value, ok := strings.Cut(spec, "=")
		name = strings.TrimSpace(name)
		if _, dup := tags[name]; ok && !dup {
			tags[name] = strings.Join(strings.Fields(value), "")
		}
	}
	return tags
}

type headerField struct {
	name  string
	value string // unfolded, line breaks removed
}

// readHeader reads the header section from br and returns its raw bytes,
// to be replayed to go-msgauth, and the unfolded fields. Lines and field
// names are split the way go-msgauth does (net/textproto lines, name cut
// at the first ':' of the whole folded field) so both count the same
// DKIM-Signature fields. A message that ends inside the header gets the
// missing line end and empty line, since RFC 5322 allows a message
// without a body.
func readHeader(br *bufio.Reader) ([]byte, []headerField, error) {
	var raw []byte
	var folded []string // fields with their line breaks
	for {
		line, err := br.ReadBytes('\n')
		raw = append(raw, line...)
		if err == io.EOF {
			if len(line) > 0 {
				raw = append(raw, "\r\n"...)
			}
			raw = append(raw, "\r\n"...)
		} else if err != nil {
			return nil, nil, err
		}
		s := strings.TrimSuffix(string(line), "\n")
		s = strings.TrimSuffix(s, "\r")
		switch {
		case s == "":
		case len(folded) > 0 && (s[0] == ' ' || s[0] == '\t'):
			folded[len(folded)-1] += "\r\n" + s
		default:
			folded = append(folded, s)
		}
		if s == "" || err == io.EOF {
			break
		}
	}
	fields := make([]headerField, len(folded))
	for i, f := range folded {
		name, value, _ := strings.Cut(f, ":")
		fields[i] = headerField{name: strings.TrimSpace(name), value: strings.ReplaceAll(value, "\r\n", "")}
	}
	return raw, fields, nil
}
