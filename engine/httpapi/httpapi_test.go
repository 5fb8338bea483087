package httpapi

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync/atomic"
	"testing"
)

// The problem body is byte for byte what clients of all the APIs have always got: the field
// only when there is one, HTML characters escaped as json.Marshal does.
func TestWriteProblem(t *testing.T) {
	cases := []struct {
		err  *Error
		want string
	}{
		{Problem(http.StatusNotFound, "unknown_transaction", "unknown transaction"),
			`{"error":{"code":"unknown_transaction","message":"unknown transaction"}}`},
		{&Error{Status: http.StatusBadRequest, Code: "invalid_field", Message: `rcpt_to: "<x>" & more`, Field: "rcpt_to"},
			`{"error":{"code":"invalid_field","message":"rcpt_to: \"\u003cx\u003e\" \u0026 more","field":"rcpt_to"}}`},
		{Problem(http.StatusRequestEntityTooLarge, "too_large", "over %d bytes", 10),
			`{"error":{"code":"too_large","message":"over 10 bytes"}}`},
	}
	for _, tc := range cases {
		w := httptest.NewRecorder()
		WriteProblem(w, tc.err)
		if w.Code != tc.err.Status || w.Body.String() != tc.want || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%v: %d %q %s, want %d %s", tc.err, w.Code, w.Header().Get("Content-Type"), w.Body, tc.err.Status, tc.want)
		}
		if tc.err.Error() != tc.err.Message {
			t.Errorf("Error() = %q, want the message", tc.err.Error())
		}
	}
}

func TestWriteJSON(t *testing.T) {
	v := map[string]string{"status": "ok"}
	w := httptest.NewRecorder()
	WriteJSON(w, http.StatusAccepted, v)
	if w.Code != http.StatusAccepted || w.Body.String() != `{"status":"ok"}` {
		t.Errorf("WriteJSON: %d %q", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	WriteJSONLine(w, http.StatusOK, v)
	if w.Body.String() != "{\"status\":\"ok\"}\n" || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("WriteJSONLine: %q %q", w.Header().Get("Content-Type"), w.Body)
	}
	w = httptest.NewRecorder()
	WriteJSONLine(w, http.StatusOK, Problem(http.StatusConflict, "conflict", "no"))
	if w.Body.String() != "{\"error\":{\"code\":\"conflict\",\"message\":\"no\"}}\n" {
		t.Errorf("WriteJSONLine of a problem: %q", w.Body)
	}
	// What cannot be encoded is a 500 problem, not a half-written body.
	w = httptest.NewRecorder()
	WriteJSON(w, http.StatusOK, map[string]any{"f": func() {}})
	if w.Code != http.StatusInternalServerError || w.Body.String() != `{"error":{"code":"internal_error","message":"internal error"}}` {
		t.Errorf("WriteJSON of a func: %d %s", w.Code, w.Body)
	}
	// WriteBody does not touch what it is given.
	w = httptest.NewRecorder()
	WriteBody(w, http.StatusOK, []byte("{\n  \"a\": 1\n}\n"))
	if w.Body.String() != "{\n  \"a\": 1\n}\n" || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("WriteBody: %q", w.Body)
	}
}

func TestErrorRef(t *testing.T) {
	a, b := ErrorRef(), ErrorRef()
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(a) || a == b {
		t.Errorf("refs %q and %q", a, b)
	}
}

// api is an API with a route table, whose fail writes the problem and counts its calls.
type api struct{ fails atomic.Int32 }

var testRoutes = []Route[*api]{
	{Method: "GET", Pattern: "/things/{id}", Handle: (*api).get},
	{Method: "PUT", Pattern: "/things/{id}", Handle: (*api).put},
	{Method: "POST", Pattern: "/things", Handle: (*api).put},
}

func (a *api) get(w http.ResponseWriter, r *http.Request) error {
	WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	return nil
}

func (a *api) put(http.ResponseWriter, *http.Request) error {
	return errors.New("a bug")
}

func (a *api) fail(w http.ResponseWriter, _ *http.Request, err error) {
	a.fails.Add(1)
	var e *Error
	if !errors.As(err, &e) {
		e = Problem(http.StatusInternalServerError, "internal_error", "internal error")
	}
	WriteProblem(w, e)
}

func TestNewMux(t *testing.T) {
	a := &api{}
	srv := httptest.NewServer(NewMux(a, testRoutes, a.fail, Unrouted{NotFound: "no_such_route", MethodNotAllowed: "wrong_method"}))
	defer srv.Close()
	cases := []struct {
		method, path string
		status       int
		allow, body  string
	}{
		{"GET", "/things/7", 200, "", `{"id":"7"}`},
		{"PUT", "/things/7", 500, "", `{"error":{"code":"internal_error","message":"internal error"}}`},
		{"DELETE", "/things/7", 405, "GET, PUT", `{"error":{"code":"wrong_method","message":"DELETE is not allowed on /things/7"}}`},
		{"GET", "/things", 405, "POST", `{"error":{"code":"wrong_method","message":"GET is not allowed on /things"}}`},
		{"GET", "/things/7/parts", 404, "", `{"error":{"code":"no_such_route","message":"no route GET /things/7/parts"}}`},
		{"POST", "/", 404, "", `{"error":{"code":"no_such_route","message":"no route POST /"}}`},
	}
	for _, tc := range cases {
		req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != tc.status || res.Header.Get("Allow") != tc.allow || string(body) != tc.body {
			t.Errorf("%s %s: %d Allow %q %s, want %d Allow %q %s", tc.method, tc.path, res.StatusCode, res.Header.Get("Allow"), body, tc.status, tc.allow, tc.body)
		}
	}
	if n := a.fails.Load(); n != 5 {
		t.Errorf("fail was called %d times, want 5", n)
	}
}
