package httpauth

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Keys are the callers an api_keys_file names. The file holds one caller per line:
//
//	# role  name        credential                trusted?
//	sender  app         sha256:9f86d081884c7d65…
//	sender  ingress     sha256:2c26b46b68ffc68f…  trusted
//	sender  submission  cn:gateway.internal       trusted
//	admin   ops         sha256:fcde2b2edba56bf4…
//
// A sender line lets its credential use that sender; an admin line (named for the log)
// lets it use everything. A credential is the hex SHA-256 of a bearer key, or cn:<name>, a
// client certificate (verified against the listener's client_ca) whose subject common name
// or a DNS name is <name>. trusted lets the caller state where a transaction came from
// (remote_host, local_host, smtp_meta). A credential on several lines gets all of them.
//
// Only hashes are stored: a key is 256 random bits, so a fast hash is as safe as a slow one
// (nobody can search 2^256 keys) and costs no CPU per request.
type Keys struct {
	entries []entry
}

type entry struct {
	admin   bool
	name    string
	sum     []byte // the key's SHA-256; nil for a certificate
	cn      string // the certificate name; "" for a key
	trusted bool
}

// LoadKeys reads an api_keys_file; errors say file:line:column.
func LoadKeys(path string) (*Keys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("api keys: %w", err)
	}
	return ParseKeys(path, data)
}

// ParseKeys reads the lines of an api_keys_file named file.
func ParseKeys(file string, data []byte) (*Keys, error) {
	k := &Keys{}
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := fieldsAt(line)
		if len(fields) == 0 {
			continue
		}
		e, col, err := parseEntry(fields)
		if err != nil {
			errs = append(errs, &KeyError{File: file, Line: n, Col: col, Msg: err.Error()})
			continue
		}
		k.entries = append(k.entries, e)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, &KeyError{File: file, Msg: err.Error()})
	}
	if len(errs) == 0 && len(k.entries) == 0 {
		errs = append(errs, &KeyError{File: file, Msg: "no keys: every request but health probes would be refused"})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return k, nil
}

// KeyError is a problem at one place of a keys file (Line 0: the whole file); ParseKeys
// returns them joined, so that koukan check can list each at its position.
type KeyError struct {
	File      string
	Line, Col int
	Msg       string
}

func (e *KeyError) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// field is a word of a line and its column (from 1).
type field struct {
	text string
	col  int
}

func fieldsAt(line string) []field {
	var out []field
	start := -1
	for i := 0; i <= len(line); i++ {
		space := i == len(line) || line[i] == ' ' || line[i] == '\t' || line[i] == '\r'
		switch {
		case space && start >= 0:
			out = append(out, field{line[start:i], start + 1})
			start = -1
		case !space && start < 0:
			start = i
		}
	}
	return out
}

const shaPrefix, cnPrefix = "sha256:", "cn:"

func parseEntry(f []field) (entry, int, error) {
	var e entry
	switch f[0].text {
	case "sender":
	case "admin":
		e.admin = true
	default:
		return e, f[0].col, fmt.Errorf("a line starts with sender or admin, not %q", f[0].text)
	}
	if len(f) < 3 {
		return e, f[0].col, errors.New("want: sender|admin <name> sha256:<hex>|cn:<name> [trusted]")
	}
	e.name = f[1].text
	if strings.ContainsAny(e.name, "/?#%") {
		return e, f[1].col, fmt.Errorf("%q is not a sender name", e.name)
	}
	cred := f[2].text
	switch {
	case strings.HasPrefix(cred, shaPrefix):
		sum, err := hex.DecodeString(cred[len(shaPrefix):])
		if err != nil || len(sum) != sha256.Size {
			return e, f[2].col, errors.New("sha256: needs the 64 hex digits of the key's SHA-256 (koukan apikey new prints them)")
		}
		e.sum = sum
	case strings.HasPrefix(cred, cnPrefix) && len(cred) > len(cnPrefix):
		e.cn = cred[len(cnPrefix):]
	default:
		return e, f[2].col, fmt.Errorf("a credential is sha256:<hex> or cn:<certificate name>, not %q", cred)
	}
	for _, x := range f[3:] {
		if x.text != "trusted" {
			return e, x.col, fmt.Errorf("unknown flag %q (the only one is trusted)", x.text)
		}
		e.trusted = true
	}
	return e, 0, nil
}

// byKey is the caller a bearer key stands for, or nil. Every entry is compared, in
// constant time, so that the time taken says nothing about the key.
func (k *Keys) byKey(key string) *Caller {
	sum := sha256.Sum256([]byte(key))
	var c *Caller
	for _, e := range k.entries {
		if e.sum != nil && subtle.ConstantTimeCompare(sum[:], e.sum) == 1 {
			c = c.with(e)
		}
	}
	return c
}

// byCert is the caller a verified client certificate stands for, or nil.
func (k *Keys) byCert(cert *x509.Certificate) *Caller {
	var c *Caller
	for _, e := range k.entries {
		if e.cn != "" && (cert.Subject.CommonName == e.cn || slices.Contains(cert.DNSNames, e.cn)) {
			c = c.with(e)
		}
	}
	return c
}

// keyPrefix marks Koukan API keys, so that secret scanners and people recognize them.
const keyPrefix = "koukan_"

// NewKey makes a key of 256 random bits and the credential of an api_keys_file line for it.
func NewKey() (key, credential string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	key = keyPrefix + base64.RawURLEncoding.EncodeToString(b)
	return key, Credential(key)
}

// Credential is the sha256: credential of key, as an api_keys_file line names it.
func Credential(key string) string {
	sum := sha256.Sum256([]byte(key))
	return shaPrefix + hex.EncodeToString(sum[:])
}
