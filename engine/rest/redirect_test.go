package rest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/rest/resttest"
	"github.com/koukan/koukan/engine/tx"
)

// cluster is two "replicas": A redirects every request to B with 308, as a
// router does for a transaction another replica holds; B is a receiver
// whose Locations name A, so that every request the client makes goes to A
// first.
type cluster struct {
	a, b       string
	rcv        *resttest.Receiver
	mu         sync.Mutex
	redirected []string // "METHOD path" of what A redirected
}

func newCluster(t *testing.T, rec *recorder) *cluster {
	cl := &cluster{}
	var bURL atomic.Value
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cl.mu.Lock()
		cl.redirected = append(cl.redirected, r.Method+" "+r.URL.Path)
		cl.mu.Unlock()
		w.Header().Set("Location", bURL.Load().(string)+r.URL.RequestURI())
		w.WriteHeader(http.StatusPermanentRedirect)
	}))
	t.Cleanup(a.Close)
	cl.a = a.URL
	cl.rcv = newReceiver(t, resttest.Options{Middleware: func(next http.Handler) http.Handler {
		return rec.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(&locationRewriter{w, bURL.Load().(string), cl.a}, r)
		}))
	}})
	cl.b = cl.rcv.URL()
	bURL.Store(cl.b)
	return cl
}

func (cl *cluster) redirects() string {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return strings.Join(cl.redirected, ", ")
}

// locationRewriter moves a Location header from one server to another.
type locationRewriter struct {
	http.ResponseWriter
	from, to string
}

func (w *locationRewriter) WriteHeader(code int) {
	if loc, ok := strings.CutPrefix(w.Header().Get("Location"), w.from); ok {
		w.Header().Set("Location", w.to+loc)
	}
	w.ResponseWriter.WriteHeader(code)
}

// Every kind of request follows a 308 with its method, headers and body.
func TestRedirects(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	cl := newCluster(t, rec)
	c := newClient(t, Options{ChunkSize: 8})
	ctx := testCtx(t, 5*time.Second)

	up, err := c.Create(ctx, cl.a+"/senders/ingress/transactions", &tx.Tx{MailFrom: &tx.Mailbox{Address: "a@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(up.Location(), cl.a) {
		t.Fatalf("Location %s is not on A", up.Location())
	}
	if err := up.Update(ctx, &tx.Tx{RcptTo: []tx.Mailbox{{Address: "b@example.com"}}}); err != nil {
		t.Fatal(err)
	}
	if err := up.Update(ctx, nil); err != nil {
		t.Fatal(err)
	}
	bodyURI := strings.Replace(up.State().Body.(*tx.Blob).URI, cl.b, cl.a, 1)
	msg := message(20)
	if err := up.PutBlob(ctx, bodyURI, onlyReader{bytes.NewReader(msg)}, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := up.Wait(ctx, dataDone); err != nil {
		t.Fatal(err)
	}
	if err := up.Cancel(ctx); err != nil {
		t.Fatal(err)
	}

	p := "/transactions/tx1"
	want := "POST /senders/ingress/transactions, PATCH " + p + ", PATCH " + p + ", PUT " + p + "/body, GET " + p + ", POST " + p + "/cancel"
	if got := cl.redirects(); got != want {
		t.Errorf("A redirected %s, want %s (later pieces go straight to B)", got, want)
	}
	r := cl.rcv.Transactions()[0]
	if !bytes.Equal(r.Body, msg) || len(r.Tx.RcptTo) != 1 || r.Heartbeats != 1 || !r.Tx.Cancelled {
		t.Errorf("B received %+v body %q heartbeats %d", r.Tx, r.Body, r.Heartbeats)
	}
	if patch := rec.of("PATCH")[0]; patch.header.Get("If-Match") == "" || patch.header.Get("Content-Type") != "application/json" {
		t.Errorf("redirected PATCH lost its headers: %v", patch.header)
	}
}

// A one-shot PUT can follow a redirect only if it can read the blob again.
func TestRedirectOnePut(t *testing.T) {
	t.Parallel()
	cl := newCluster(t, &recorder{})
	c := newClient(t, Options{})
	ctx := testCtx(t, 5*time.Second)
	msg := message(20)
	for _, seekable := range []bool{true, false} {
		up, err := c.Create(ctx, cl.b+"/senders/x/transactions", envelope())
		if err != nil {
			t.Fatal(err)
		}
		var r = bytes.NewReader(msg)
		bodyURI := strings.Replace(up.State().Body.(*tx.Blob).URI, cl.b, cl.a, 1)
		if seekable {
			err = up.PutBlob(ctx, bodyURI, r, -1)
		} else {
			err = up.PutBlob(ctx, bodyURI, onlyReader{r}, -1)
		}
		if seekable && err != nil {
			t.Fatal(err)
		}
		if !seekable {
			if e := wantKind(t, err, KindStatus); e.Status != http.StatusPermanentRedirect {
				t.Errorf("error %v", e)
			}
		}
	}
	if got := cl.rcv.Transactions(); !bytes.Equal(got[0].Body, msg) || len(got[1].Body) != 0 {
		t.Errorf("bodies %q and %q", got[0].Body, got[1].Body)
	}
}
