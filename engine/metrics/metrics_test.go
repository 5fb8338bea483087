package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Requests are counted by the pattern the mux matched and the status written, and /metrics
// shows them.
func TestCountRequests(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	mux.Handle("GET /metrics", Handler())
	srv := httptest.NewServer(CountRequests(mux))
	defer srv.Close()
	for _, path := range []string{"/things/1", "/things/2", "/nowhere"} {
		res, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	res, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`koukan_http_requests_total{route="GET /things/{id}",status="418"} 2`,
		`koukan_http_requests_total{route="unmatched",status="404"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if Class(250) != "2xx" || Class(451) != "4xx" {
		t.Errorf("classes %s %s", Class(250), Class(451))
	}
}
