package main

import (
	"bytes"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDemo runs `make demo` in its short form and checks its summary: every
// job acked exactly once, none lost, no stale write accepted, the failover in
// time; and that it leaves no process or folder behind.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	s, err := demo(tu.Ctx(t), &out, options{jobs: 90, ttl: 2, work: 100 * time.Millisecond, replicas: []string{"a", "b", "c"}})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	s.print(&out)
	if !s.ok() {
		t.Fatalf("the demo's checks failed:\n%s", out.String())
	}
	if len(s.pids) != 6 {
		t.Fatalf("%d processes recorded, want 3 members and 3 replicas", len(s.pids))
	}
	for _, pid := range s.pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d is still there (%v)", pid, err)
		}
	}
	if _, err := os.Stat(s.tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is still there (%v)", s.tmp, err)
	}
}
