// Package httpauth decides who may call a REST listener (the router's, the gateway's) so that
// it can face a network without a proxy in front: bearer API keys per sender, client
// certificates (mutual TLS), and the TLS settings of the listeners.
//
// The middleware sorts every request by what it touches before the API sees it:
//
//	/healthz, /readyz                 open (orchestrators probe them)
//	/senders/{sender}/...             a caller of that sender (else 403)
//	/transactions/{tx}[/...]          a caller of the sender the transaction was created
//	                                  under; any other caller gets the 404 of an unknown
//	                                  transaction, so ids do not leak
//	/openapi.json                     any caller
//	everything else (/metrics, /admin/..., routes added later)
//	                                  an admin caller (else 403)
//
// A request with no credential, or a wrong one, gets 401 with WWW-Authenticate: Bearer.
// The caller rides in the request's context: handlers ask MayUse and Trusted. A request that
// never went through the middleware (no api_keys_file) may do anything, as before keys.
package httpauth

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	"github.com/koukan/koukan/engine/httpapi"
)

// Caller is who made a request, as its key or certificate says.
type Caller struct {
	// Name is the first line it matched, for the log: "sender app", "admin ops".
	Name    string
	admin   bool
	trusted bool
	senders map[string]bool
}

// with adds what e grants; c may be nil.
func (c *Caller) with(e entry) *Caller {
	if c == nil {
		c = &Caller{senders: map[string]bool{}}
		c.Name = "sender " + e.name
		if e.admin {
			c.Name = "admin " + e.name
		}
	}
	if e.admin {
		c.admin = true
	} else {
		c.senders[e.name] = true
	}
	c.trusted = c.trusted || e.trusted
	return c
}

// MayUse reports whether the caller may use sender and its transactions.
func (c *Caller) MayUse(sender string) bool { return c.admin || c.senders[sender] }

// Admin reports whether the caller may use everything.
func (c *Caller) Admin() bool { return c.admin }

// Trusted reports whether the caller may say where a transaction came from.
func (c *Caller) Trusted() bool { return c.trusted }

type callerKey struct{}

// CallerOf is the caller the middleware found for a request, or nil when the request did
// not go through it (no api_keys_file).
func CallerOf(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// MayUse reports whether the request's caller may use sender: always without keys.
func MayUse(ctx context.Context, sender string) bool {
	c := CallerOf(ctx)
	return c == nil || c.MayUse(sender)
}

// Trusted reports whether the request's caller may state remote_host, local_host and
// smtp_meta: always without keys, where anyone who can connect is trusted.
func Trusted(ctx context.Context) bool {
	c := CallerOf(ctx)
	return c == nil || c.trusted
}

// Options configure the middleware.
type Options struct {
	// Keys are the callers, as they are at each request; required.
	Keys KeySource
	// TxSender finds the sender a transaction was created under; found is false when
	// there is no such transaction. Required.
	TxSender func(ctx context.Context, id string) (sender string, found bool, err error)
	// Log gets refused credentials (with the client's address, never a key) and lookup
	// failures. Zero: slog.Default().
	Log *slog.Logger
}

// Middleware checks every request to next against o.Keys.
func Middleware(o Options) func(next http.Handler) http.Handler {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return func(next http.Handler) http.Handler {
		a := &auth{o: o, next: next}
		// A mux of our own sorts requests the way the API's mux will route them: the same
		// path cleaning, the same unescaping of path segments.
		mux := http.NewServeMux()
		mux.Handle("/healthz", next)
		mux.Handle("/readyz", next)
		mux.HandleFunc("/senders/{sender}/", a.sender)
		mux.HandleFunc("/transactions/{tx}", a.transaction)
		mux.HandleFunc("/transactions/{tx}/", a.transaction)
		mux.HandleFunc("/openapi.json", a.anyCaller)
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			if c := a.caller(w, r); c != nil {
				if !c.admin {
					a.forbidden(w, r, c, "this needs an admin key")
					return
				}
				a.pass(w, r, c)
			}
		})
		return mux
	}
}

type auth struct {
	o    Options
	next http.Handler
}

// caller authenticates r; when it cannot, it answers 401 and returns nil.
func (a *auth) caller(w http.ResponseWriter, r *http.Request) *Caller {
	h := r.Header.Get("Authorization")
	if h != "" {
		scheme, key, _ := strings.Cut(h, " ")
		key = strings.TrimSpace(key)
		if strings.EqualFold(scheme, "Bearer") && key != "" {
			if c := a.o.Keys.Current().byKey(key); c != nil {
				return c
			}
		}
		a.o.Log.Info("api: refused a wrong key", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
		unauthorized(w, `Bearer realm="koukan", error="invalid_token"`, "the API key is not valid")
		return nil
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		if c := a.o.Keys.Current().byCert(r.TLS.VerifiedChains[0][0]); c != nil {
			return c
		}
	}
	unauthorized(w, `Bearer realm="koukan"`, "this API needs a key: send Authorization: Bearer <key>")
	return nil
}

func (a *auth) anyCaller(w http.ResponseWriter, r *http.Request) {
	if c := a.caller(w, r); c != nil {
		a.pass(w, r, c)
	}
}

func (a *auth) sender(w http.ResponseWriter, r *http.Request) {
	c := a.caller(w, r)
	if c == nil {
		return
	}
	if sender := r.PathValue("sender"); !c.MayUse(sender) {
		a.forbidden(w, r, c, "this key is not for sender "+quote(sender))
		return
	}
	a.pass(w, r, c)
}

func (a *auth) transaction(w http.ResponseWriter, r *http.Request) {
	c := a.caller(w, r)
	if c == nil {
		return
	}
	if !c.admin {
		sender, found, err := a.o.TxSender(r.Context(), r.PathValue("tx"))
		switch {
		case err != nil && r.Context().Err() != nil:
			return // the client went away
		case err != nil:
			ref := httpapi.ErrorRef()
			a.o.Log.Error("api: finding a transaction's sender", "ref", ref, "err", err)
			httpapi.WriteProblem(w, httpapi.Problem(http.StatusInternalServerError, "internal_error", "internal error (reference %s)", ref))
			return
		case !found || !c.MayUse(sender):
			// As the API answers an unknown transaction: nothing tells one that exists.
			httpapi.WriteProblem(w, httpapi.Problem(http.StatusNotFound, "unknown_transaction", "unknown transaction"))
			return
		}
	}
	a.pass(w, r, c)
}

func (a *auth) pass(w http.ResponseWriter, r *http.Request, c *Caller) {
	a.next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
}

func (a *auth) forbidden(w http.ResponseWriter, r *http.Request, c *Caller, why string) {
	a.o.Log.Info("api: refused", "caller", c.Name, "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
	httpapi.WriteProblem(w, httpapi.Problem(http.StatusForbidden, "forbidden", "%s", why))
}

func unauthorized(w http.ResponseWriter, challenge, message string) {
	w.Header().Set("WWW-Authenticate", challenge)
	httpapi.WriteProblem(w, httpapi.Problem(http.StatusUnauthorized, "unauthorized", "%s", message))
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
