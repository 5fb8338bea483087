package rest

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// noNetwork fails every request that would leave the process.
type noNetwork struct{}

func (noNetwork) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("went to the network")
}

func localClient() *http.Client { return &http.Client{Transport: localTransport{noNetwork{}}} }

func TestLocalRequestReachesTheHandlerAsOverTheWire(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /transactions/{tx}/body", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("ETag", "7")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, r.PathValue("tx")+" "+r.Host+" "+r.RequestURI+" "+r.Header.Get("Content-Length")+" "+r.Header.Get("X-Test")+" "+string(b))
	})
	defer ServeLocally("127.0.0.1:1", mux)()
	req, _ := http.NewRequest("PUT", "http://127.0.0.1:1/transactions/abc/body?x=1", strings.NewReader("hello"))
	req.Header.Set("X-Test", "yes")
	res, err := localClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 201 || res.Header.Get("ETag") != "7" || string(b) != "abc 127.0.0.1:1 /transactions/abc/body?x=1 5 yes hello" {
		t.Fatalf("%d %v %q", res.StatusCode, res.Header, b)
	}
}

func TestLocalResponseStreamsWhileTheHandlerRuns(t *testing.T) {
	release := make(chan struct{})
	ended := make(chan error, 1)
	defer ServeLocally("127.0.0.1:2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
			io.WriteString(w, "second\n")
		case <-r.Context().Done():
		}
		ended <- r.Context().Err()
	}))()
	res, err := localClient().Get("http://127.0.0.1:2/")
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	// The client going away ends the handler's request, as a closed connection would.
	res.Body.Close()
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("the handler's context was not cancelled by the client closing the body")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not end after the client closed the body")
	}
}

func TestLocalHandlerPanicFailsTheRequest(t *testing.T) {
	defer ServeLocally("127.0.0.1:3", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))()
	if _, err := localClient().Get("http://127.0.0.1:3/"); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("err = %v", err)
	}
}

func TestLocalOnlyForRegisteredPlainHTTPAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "network") }))
	defer srv.Close()
	unregister := ServeLocally(strings.TrimPrefix(srv.URL, "http://"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "local")
	}))
	c := &http.Client{Transport: localTransport{http.DefaultTransport}}
	get := func() string {
		res, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	if got := get(); got != "local" {
		t.Fatalf("registered address answered %q", got)
	}
	unregister()
	if got := get(); got != "network" {
		t.Fatalf("after unregistering: %q", got)
	}
	if _, err := localClient().Get("https://127.0.0.1:3/"); err == nil || !strings.Contains(err.Error(), "network") {
		t.Fatalf("https went local: %v", err)
	}
}
