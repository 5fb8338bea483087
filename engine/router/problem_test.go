package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/koukan/koukan/engine/store"
)

// problemJSON decodes a problem body.
type problemJSON struct {
	Error struct{ Code, Message, Field string }
}

// A store that is away or full tells the client to come back later, 503 or 507 with a
// problem body, never a 500 or the driver's words; the store's Classify is what tells.
func TestStorageProblems(t *testing.T) {
	driver := errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	s := &Service{log: testLogger(), classify: func(err error) error {
		if errors.Is(err, driver) {
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
		return err
	}}
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("create: %w", driver), http.StatusServiceUnavailable, "storage_unavailable"},
		{fmt.Errorf("append: %w", store.ErrFull), http.StatusInsufficientStorage, "storage_full"},
		{errors.New("a bug"), http.StatusInternalServerError, "internal_error"},
	}
	for _, tc := range cases {
		w := httptest.NewRecorder()
		s.fail(w, httptest.NewRequest("POST", "/senders/x/transactions", nil), tc.err)
		var p problemJSON
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || w.Code != tc.status || p.Error.Code != tc.code {
			t.Errorf("%v: %d %s, want %d %s", tc.err, w.Code, w.Body, tc.status, tc.code)
		}
		if strings.Contains(w.Body.String(), "tcp") {
			t.Errorf("%v: the client sees the cause: %s", tc.err, w.Body)
		}
	}
}
