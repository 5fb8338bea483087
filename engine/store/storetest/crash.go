package storetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/store"
)

// Opener opens a replica on the database at location (a file path or a DSN).
type Opener func(ctx context.Context, location string, opts store.Options) (store.Store, error)

const crashChildEnv = "KOUKAN_STORETEST_CRASH_CHILD"

// MaybeCrashChild turns the test binary into the crash test's writer when the parent asked
// for one; call it first thing in TestMain. The writer never returns: it writes until killed.
func MaybeCrashChild(open Opener) {
	location := os.Getenv(crashChildEnv)
	if location == "" {
		return
	}
	ctx := context.Background()
	s, err := open(ctx, location, store.Options{SessionURI: "http://crash-child", ChunkSize: 16 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child: open:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	for range 8 {
		go func() {
			for {
				id := randomID()
				size := 512 + mrand.IntN(200<<10)
				body := make([]byte, size)
				_, _ = rand.Read(body)
				sum := sha256.Sum256(body)
				doc, _ := json.Marshal(map[string]string{"sha": hex.EncodeToString(sum[:])})
				if _, err := s.Create(ctx, store.NewTx{RestID: id, JSON: doc, Leased: true, Retry: true,
					Blobs: []store.NewBlob{{ID: store.TxBodyBlob}}}); err != nil {
					fmt.Fprintln(os.Stderr, "crash child: create:", err)
					os.Exit(3)
				}
				if _, err := s.AppendBlob(ctx, id, store.TxBodyBlob, store.Append{Total: -1, FinalizeAtEOF: true},
					bytes.NewReader(body)); err != nil {
					fmt.Fprintln(os.Stderr, "crash child: append:", err)
					os.Exit(3)
				}
				// Acknowledge only what has committed, as a server replying 250 would.
				mu.Lock()
				fmt.Fprintf(out, "ACK %s %d %x\n", id, size, sum)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	select {}
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RunCrash starts a child writer on location, kills it with SIGKILL while writes are in
// flight, reopens the database and checks that every acknowledged transaction and blob is
// intact. The backend's TestMain must call MaybeCrashChild.
func RunCrash(t *testing.T, location string, open Opener) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+location)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type ack struct {
		id   string
		size int
		sum  string
	}
	acks := make(chan ack, 1<<16)
	readDone := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 4 || f[0] != "ACK" {
				continue // a line cut by the kill
			}
			var size int
			fmt.Sscan(f[2], &size)
			acks <- ack{f[1], size, f[3]}
		}
		close(acks)
		readDone <- sc.Err()
	}()
	// Let the writer get well into its stream, then kill it mid-write.
	deadline := time.After(20 * time.Second)
	var got []ack
wait:
	for len(got) < 300 {
		select {
		case a, ok := <-acks:
			if !ok {
				_ = cmd.Wait()
				t.Fatalf("child exited early: %s", stderr.String())
			}
			got = append(got, a)
		case <-deadline:
			break wait
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for a := range acks {
		got = append(got, a)
	}
	<-readDone
	_ = cmd.Wait()
	if len(got) == 0 {
		t.Fatalf("child acknowledged nothing before the kill: %s", stderr.String())
	}

	ctx := context.Background()
	s, err := open(ctx, location, store.Options{SessionURI: "http://after-crash"})
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer s.Close()
	var bytesChecked int64
	for _, a := range got {
		tx, err := s.Get(ctx, a.id)
		if err != nil {
			t.Errorf("acknowledged %s lost: %v", a.id, err)
			continue
		}
		if !strings.Contains(string(tx.JSON), a.sum) || !tx.InputDone {
			t.Errorf("acknowledged %s damaged: json %s input_done %v", a.id, tx.JSON, tx.InputDone)
		}
		r, st, err := s.OpenBlob(ctx, a.id, store.TxBodyBlob)
		if err != nil {
			t.Errorf("blob of %s lost: %v", a.id, err)
			continue
		}
		h := sha256.New()
		n, err := io.Copy(h, r)
		r.Close()
		if err != nil || n != int64(a.size) || !st.Finalized() || hex.EncodeToString(h.Sum(nil)) != a.sum {
			t.Errorf("blob of %s damaged: %d of %d bytes, finalized %v, err %v", a.id, n, a.size, st.Finalized(), err)
		}
		bytesChecked += n
	}
	// The dead writer's session still holds leases; another replica reaps it.
	if _, err := s.ReapSessions(ctx, 0); err != nil {
		t.Errorf("reaping the dead session: %v", err)
	}
	t.Logf("killed the writer after %d acknowledged transactions (%d body bytes); all intact after reopening", len(got), bytesChecked)
}
