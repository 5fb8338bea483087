package rest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// Options configures a Client. The zero value is a client that verifies
// certificates against the system's roots and sends each blob in one PUT.
type Options struct {
	// ChunkSize is the most bytes one blob PUT carries. Zero sends every
	// blob in one PUT. A positive size sends a blob longer than it, or of
	// unknown length, in pieces with Content-Range, holding one piece in
	// memory so that it can be sent again after a redirect or a 416.
	ChunkSize int
	// CAFile is a PEM bundle of the authorities that sign upstream
	// certificates, replacing the system's (rest_output's verify: <path>).
	CAFile string
	// InsecureSkipVerify accepts any upstream certificate (rest_output's
	// verify: false).
	InsecureSkipVerify bool
	// APIKeyFile holds the key sent as "Authorization: Bearer <key>" on
	// every request, redirects to other replicas included (net/http would
	// drop the header on a redirect to another host).
	APIKeyFile string
	// CertFile and KeyFile are the certificate presented to upstreams that
	// ask for one (mutual TLS).
	CertFile, KeyFile string
}

// Client makes transaction API requests. It shares one connection pool
// across all the transactions it starts, and is safe for concurrent use.
type Client struct {
	http      *http.Client
	chunkSize int
}

// idleConnsPerHost is far above net/http's default of 2 because a router
// talks to few upstreams (a gateway, a handful of receivers) with many
// transactions in flight to each, and each hanging GET holds a connection.
const idleConnsPerHost = 64

// maxResponse bounds the response bodies a Client reads. A transaction's
// read form is small; this only guards against a broken upstream.
const maxResponse = 4 << 20

// NewClient builds a Client; it fails only if a file of opts cannot be used.
func NewClient(opts Options) (*Client, error) {
	if opts.ChunkSize < 0 {
		return nil, fmt.Errorf("rest: negative chunk size %d", opts.ChunkSize)
	}
	hc, err := NewHTTPClient(opts)
	if err != nil {
		return nil, err
	}
	return &Client{http: hc, chunkSize: opts.ChunkSize}, nil
}

// NewHTTPClient is the HTTP client a Client sends with, for Koukan's other APIs (the admin
// API that koukan queue calls), so that they authenticate and verify upstreams the same way.
// It ignores ChunkSize.
func NewHTTPClient(opts Options) (*http.Client, error) {
	tlsConf := &tls.Config{InsecureSkipVerify: opts.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("rest: reading CA file: %w", err)
		}
		tlsConf.RootCAs = x509.NewCertPool()
		if !tlsConf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("rest: no PEM certificates in %s", opts.CAFile)
		}
	}
	if opts.CertFile != "" || opts.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(opts.CertFile, opts.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("rest: client certificate: %w", err)
		}
		tlsConf.Certificates = []tls.Certificate{cert}
	}
	// The default transport's settings (proxy from the environment, dial
	// and TLS handshake timeouts, HTTP/2 over TLS) are the ones we want.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	tr.MaxIdleConnsPerHost = idleConnsPerHost
	tr.ForceAttemptHTTP2 = true
	// No client-wide timeout: every request is bounded by its context,
	// and hanging GETs legitimately take up to 30 s. The default redirect
	// policy follows 308 for every method, re-sending bodies through
	// Request.GetBody.
	var rt http.RoundTripper = localTransport{tr}
	if opts.APIKeyFile != "" {
		key, err := os.ReadFile(opts.APIKeyFile)
		if err != nil {
			return nil, fmt.Errorf("rest: reading API key: %w", err)
		}
		k := strings.TrimSpace(string(key))
		if k == "" || strings.ContainsAny(k, " \t\r\n") {
			return nil, fmt.Errorf("rest: %s should hold one API key on one line", opts.APIKeyFile)
		}
		rt = bearer{rt, "Bearer " + k}
	}
	return &http.Client{Transport: rt}, nil
}

// bearer authenticates every request the client sends, redirected ones too.
type bearer struct {
	next   http.RoundTripper
	header string
}

func (b bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context()) // a RoundTripper must not change the request it is given
	req.Header.Set("Authorization", b.header)
	return b.next.RoundTrip(req)
}

// response is an upstream's answer with its body read.
type response struct {
	status int
	header http.Header
	body   []byte
	// url is where the request went in the end, after redirects; relative
	// URIs in the answer are relative to it.
	url *url.URL
}

// newRequest builds a request whose body, if any, is in memory, so the
// client can send it again to a redirect's target.
func newRequest(ctx context.Context, op, method, uri string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, uri, rd)
	if err != nil {
		return nil, &Error{Op: op, Kind: KindLocal, Err: err}
	}
	return req, nil
}

// do sends req and reads the answer.
func (c *Client) do(op string, req *http.Request) (*response, error) {
	ctx := req.Context()
	res, err := c.http.Do(req)
	if err != nil {
		return nil, failure(ctx, op, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxResponse+1))
	if err != nil {
		return nil, failure(ctx, op, err)
	}
	if len(body) > maxResponse {
		return nil, protocolError(op, fmt.Errorf("%s %s: response body over %d bytes", req.Method, res.Request.URL, maxResponse))
	}
	return &response{status: res.StatusCode, header: res.Header, body: body, url: res.Request.URL}, nil
}

// statusError is the error for an answer with a status op does not accept.
// The problem code comes from Koukan's error body,
// {"error": {"code": "...", "message": "..."}}, when there is one.
func statusError(op string, res *response) *Error {
	var p struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(res.body, &p)
	e := &Error{Op: op, Kind: KindStatus, Status: res.status, Problem: problemCode(p.Error.Code)}
	e.Err = fmt.Errorf("%s answered %d", res.url, res.status)
	if p.Error.Message != "" {
		e.Err = fmt.Errorf("%w: %s", e.Err, p.Error.Message)
	}
	return e
}

// resolve makes a URI from an answer absolute.
func resolve(base *url.URL, ref string) (*url.URL, error) {
	u, err := url.Parse(ref)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("not an http(s) URI")
	}
	return base.ResolveReference(u), nil
}
