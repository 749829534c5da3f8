package interop

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/goleak"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
	"github.com/etcdgw/etcdgw/lease"
	"github.com/etcdgw/etcdgw/mutex"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// clientv3's gRPC connections leave these behind for a moment after Close.
		goleak.IgnoreTopFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
		goleak.IgnoreTopFunction("google.golang.org/grpc/internal/transport.(*controlBuffer).get"),
	)
}

// v3client returns a clientv3 client for endpoints, closed in t.Cleanup.
func v3client(t testing.TB, endpoints []string, opts ...func(*clientv3.Config)) *clientv3.Client {
	t.Helper()
	cfg := clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: nil}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// etcdctl returns the path of the pinned etcdctl built by `make etcd`.
func etcdctl(t testing.TB) string {
	t.Helper()
	root, err := etcdtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	v, err := etcdtest.Pinned("ETCD_DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, ".bin", "etcdctl-"+v)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%v: run `make etcd` to build etcdctl", err)
	}
	return path
}

// ctlHolder is an `etcdctl lock` (or `etcdctl elect`) process. For lock, it
// runs a shell that says "held" and then waits until the test opens and closes
// a FIFO (etcdctl does not pass its stdin on).
type ctlHolder struct {
	cmd   *exec.Cmd
	fifo  string
	lines chan string
	done  chan struct{} // closed when the process has ended; err is then set
	err   error
}

// holdArgs are the exec-command arguments of `etcdctl lock` that hold the lock
// until h.release.
func holdArgs(fifo string) []string {
	return []string{"--", "sh", "-c", "echo held; cat " + fifo + " >/dev/null"}
}

func startCtl(t *testing.T, endpoints []string, args ...string) *ctlHolder {
	t.Helper()
	fifo := filepath.Join(t.TempDir(), "release")
	tu.NoErr(t, syscall.Mkfifo(fifo, 0o600))
	argv := append([]string{"--endpoints=" + strings.Join(endpoints, ",")}, args...)
	if args[0] == "lock" {
		argv = append(argv, holdArgs(fifo)...)
	}
	cmd := exec.Command(etcdctl(t), argv...)
	// Its own process group, so that cleanup ends the shell it runs too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	tu.NoErr(t, err)
	cmd.Stderr = os.Stderr
	tu.NoErr(t, cmd.Start())
	h := &ctlHolder{cmd: cmd, fifo: fifo, lines: make(chan string, 16), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
		h.err = cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		for range h.lines {
		}
		<-h.done
	})
	return h
}

// expect waits for a line from the process containing want.
func (h *ctlHolder) expect(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	for {
		select {
		case l, ok := <-h.lines:
			if !ok {
				<-h.done
				t.Fatalf("etcdctl ended before printing %q: %v", want, h.err)
			}
			if strings.Contains(l, want) {
				return
			}
		case <-ctx.Done():
			t.Fatalf("etcdctl did not print %q", want)
		}
	}
}

// quiet fails t if the process prints a line containing what within d.
func (h *ctlHolder) quiet(t *testing.T, what string, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-h.lines:
			if !ok || strings.Contains(l, what) {
				t.Fatalf("etcdctl printed %q (or ended) while it should wait", l)
			}
		case <-timer.C:
			return
		}
	}
}

// release ends the shell etcdctl runs; etcdctl then unlocks and exits.
func (h *ctlHolder) release(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(h.fifo, os.O_WRONLY, 0)
	tu.NoErr(t, err)
	tu.NoErr(t, f.Close())
	for range h.lines {
	}
	<-h.done
	tu.NoErr(t, h.err)
}

// parties are the two clients of one server that the interop tests set side
// by side: ours with a lease, clientv3 with a session, both closed in
// t.Cleanup.
type parties struct {
	endpoints []string
	gw        *gateway.Client
	lease     *lease.Lease
	v3        *clientv3.Client
	session   *concurrency.Session
}

func newParties(t *testing.T, ctx context.Context) parties {
	t.Helper()
	cl := etcdtest.Single(t)
	p := parties{endpoints: cl.Endpoints()}
	p.gw = tu.Client(t, p.endpoints)
	p.v3 = v3client(t, p.endpoints)
	p.lease = tu.Lease(t, ctx, p.gw, 10)
	sess, err := concurrency.NewSession(p.v3, concurrency.WithTTL(10))
	tu.NoErr(t, err)
	t.Cleanup(func() { sess.Close() })
	p.session = sess
	return p
}

// TestMutexInterop: this package's Mutex, clientv3's concurrency.Mutex and
// `etcdctl lock` on one name exclude each other and queue in one order.
func TestMutexInterop(t *testing.T) {
	ctx := tu.Ctx(t)
	p := newParties(t, ctx)
	eps, gw, v3, l := p.endpoints, p.gw, p.v3, p.lease
	ours := mutex.New(l, "shared")
	theirs := concurrency.NewMutex(p.session, "shared")

	// Same key layout.
	tu.Eq(t, "our key", ours.Key(), fmt.Sprintf("shared/%x", l.ID()))

	// 1. We hold: clientv3 cannot, and queues; etcdctl queues behind it.
	tu.NoErr(t, ours.Lock(ctx))
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := theirs.TryLock(tctx); !errors.Is(err, concurrency.ErrLocked) {
		t.Fatalf("clientv3 TryLock while we hold: %v, want ErrLocked", err)
	}
	cancel()
	v3done := make(chan error, 1)
	go func() { v3done <- theirs.Lock(ctx) }()
	tu.WaitKeys(t, ctx, gw, "shared/", 2)
	ctl := startCtl(t, eps, "lock", "--ttl=10", "shared")
	tu.WaitKeys(t, ctx, gw, "shared/", 3)

	// 2. We unlock: clientv3 (first in line) gets it, etcdctl still waits.
	tu.NoErr(t, ours.Unlock(ctx))
	tu.NoErr(t, <-v3done)
	ctl.quiet(t, "held", 300*time.Millisecond)
	tu.Is(t, ours.TryLock(ctx), mutex.ErrLocked)

	// 3. clientv3 unlocks: etcdctl gets it; neither we nor clientv3 can.
	tu.NoErr(t, theirs.Unlock(ctx))
	ctl.expect(t, ctx, "held")
	tu.Is(t, ours.TryLock(ctx), mutex.ErrLocked)
	tctx, cancel = context.WithTimeout(ctx, 5*time.Second)
	if err := theirs.TryLock(tctx); !errors.Is(err, concurrency.ErrLocked) {
		t.Fatalf("clientv3 TryLock while etcdctl holds: %v, want ErrLocked", err)
	}
	cancel()

	// 4. We wait; etcdctl releases; we get it.
	oursDone := make(chan error, 1)
	go func() { oursDone <- ours.Lock(ctx) }()
	tu.WaitKeys(t, ctx, gw, "shared/", 2)
	ctl.release(t)
	tu.NoErr(t, <-oursDone)
	// A guarded write with our compare, then clientv3's IsOwner compare on its
	// own key fails: it does not hold.
	r, err := v3.Txn(ctx).If(theirs.IsOwner()).Then(clientv3.OpPut("shared-data", "v3")).Commit()
	tu.NoErr(t, err)
	tu.Eq(t, "clientv3's guarded write while we hold", r.Succeeded, false)
	tu.NoErr(t, ours.Unlock(ctx))
}
