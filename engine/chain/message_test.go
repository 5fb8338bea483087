package chain_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/koukan/koukan/engine/chain"
)

func readAll(t *testing.T, m *chain.Message) string {
	t.Helper()
	r, err := m.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func names(fs []chain.Field) string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name+"="+f.Value())
	}
	return strings.Join(out, "|")
}

func TestMessageHeaderEdits(t *testing.T) {
	ctx := context.Background()
	stored := "Received: from a\r\n  by b\r\nX-Spam: yes\r\nSubject: hi\r\nx-spam: again\r\n\r\nbody\r\nX-Spam: not a field\r\n"
	m := message(stored)
	m.Prepend("X-Spam: prepended\r\n")
	m.Prepend("Authentication-Results: mx; none\r\n")
	h, err := m.Header(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(h), "Authentication-Results=mx; none|X-Spam=prepended|Received=from a  by b|X-Spam=yes|Subject=hi|x-spam=again"; got != want {
		t.Errorf("header\n got %s\nwant %s", got, want)
	}
	fork := m.Fork()
	// The second X-Spam from the top is the stored message's first.
	if n, err := m.Delete(ctx, "x-SPAM", 2); n != 1 || err != nil {
		t.Fatalf("delete 2nd: %d %v", n, err)
	}
	want := "Authentication-Results: mx; none\r\nX-Spam: prepended\r\nReceived: from a\r\n  by b\r\nSubject: hi\r\nx-spam: again\r\n\r\nbody\r\nX-Spam: not a field\r\n"
	if got := readAll(t, m); got != want || m.Size() != int64(len(want)) {
		t.Errorf("after deleting one:\n%q (size %d)", got, m.Size())
	}
	if n, _ := m.Delete(ctx, "X-Spam", 0); n != 2 {
		t.Errorf("deleted %d of the rest, want 2", n)
	}
	want = "Authentication-Results: mx; none\r\nReceived: from a\r\n  by b\r\nSubject: hi\r\n\r\nbody\r\nX-Spam: not a field\r\n"
	if got := readAll(t, m); got != want || m.Size() != int64(len(want)) {
		t.Errorf("after deleting all:\n%q (size %d)", got, m.Size())
	}
	// The fork kept the edits from before it, and none since.
	if got := readAll(t, fork); !strings.HasPrefix(got, "Authentication-Results: mx; none\r\nX-Spam: prepended\r\nReceived") ||
		!strings.Contains(got, "X-Spam: yes\r\n") {
		t.Errorf("fork: %q", got)
	}
}

func TestMessageHeaderEdgeCases(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ stored, fields string }{
		{"Subject: only header, no body\r\n", "Subject=only header, no body"},
		{"Subject: bare LF\n\nbody\n", "Subject=bare LF"},
		{"no header at all\r\n", ""},
		{"", ""},
		{"Subject: a\r\nnot a field line\r\nTo: b\r\n\r\n", "Subject=a"},
	} {
		m := message(c.stored)
		h, err := m.Header(ctx)
		if err != nil || names(h) != c.fields {
			t.Errorf("%q: got %s, %v; want %s", c.stored, names(h), err, c.fields)
		}
		m.Delete(ctx, "Subject", 0)
		if got := readAll(t, m); int64(len(got)) != m.Size() {
			t.Errorf("%q: size %d but %d streamed", c.stored, m.Size(), len(got))
		}
	}
	huge := message(fmt.Sprintf("X-Big: %s\r\n\r\n", strings.Repeat("a", chain.MaxHeaderSize)))
	if _, err := huge.Header(ctx); !errors.Is(err, chain.ErrHeaderTooLarge) {
		t.Errorf("huge header: %v", err)
	}
}
