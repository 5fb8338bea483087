package store

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Location
	}{
		{"sqlite:///router.db", Location{Backend: SQLite, Path: "router.db"}},
		{"sqlite:///data/router.db", Location{Backend: SQLite, Path: "data/router.db"}},
		{"sqlite:////var/lib/koukan/router.db", Location{Backend: SQLite, Path: "/var/lib/koukan/router.db"}},
		{"sqlite:/abs.db", Location{Backend: SQLite, Path: "/abs.db"}},
		{"sqlite:///router.db?timeout=5", Location{Backend: SQLite, Path: "router.db"}},
		{"postgres://u@db:5432/koukan", Location{Backend: Postgres, DSN: "postgres://u@db:5432/koukan"}},
		{"postgresql://u@db/koukan?sslmode=disable", Location{Backend: Postgres, DSN: "postgres://u@db/koukan?sslmode=disable"}},
		{"postgresql+psycopg://postgres@localhost/test", Location{Backend: Postgres, DSN: "postgres://postgres@localhost/test"}},
		{"postgresql+psycopg2://u:p@h/db", Location{Backend: Postgres, DSN: "postgres://u:p@h/db"}},
	} {
		got, err := ParseURL(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"router.db", "no scheme"},
		{"mysql://x/y", `unsupported database "mysql"`},
		{"postgresql+mysqldb://x/y", `unknown postgresql driver "mysqldb"`},
		{"sqlite://host/x.db", "take no host"},
		{"sqlite://", "needs a database file"},
		{"sqlite:///:memory:", "would lose acknowledged mail"},
	} {
		_, err := ParseURL(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseURL(%q) error = %v, want it to mention %q", tc.in, err, tc.want)
		}
	}
}
