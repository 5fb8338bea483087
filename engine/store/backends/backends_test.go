package backends

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/store/storetest"
)

func TestOpenByURL(t *testing.T) {
	urls := []string{"sqlite:///" + filepath.Join(t.TempDir(), "sub", "router.db")}
	if os.Getenv(storetest.PostgresEnv) != "" {
		urls = append(urls, storetest.PostgresDSN(t))
	}
	for _, u := range urls {
		loc, err := store.ParseURL(u)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(context.Background(), loc, store.Options{SessionURI: "http://test"})
		if err != nil {
			t.Fatalf("Open(%s): %v", u, err)
		}
		if s.SessionID() == 0 || s.SessionURI() != "http://test" {
			t.Errorf("%s: session %d %q", u, s.SessionID(), s.SessionURI())
		}
		if err := s.Close(); err != nil {
			t.Errorf("%s: close: %v", u, err)
		}
	}
}
