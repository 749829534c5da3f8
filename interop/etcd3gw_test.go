package interop_test

import (
	"bufio"
	"context"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
	"github.com/etcdgw/etcdgw/mutex"
)

// debianPython is the Python that Debian's python3-etcd3gw installs for; `make
// test` installs the package (the machine's own python3 may be another one).
const debianPython = "/usr/bin/python3"

// pyHolder is a Python process holding etcd3gw locks (testdata/etcd3gw_lock.py),
// driven line by line.
type pyHolder struct {
	t   *testing.T
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startPython(t *testing.T, endpoint string) *pyHolder {
	t.Helper()
	if err := exec.Command(debianPython, "-c", "import etcd3gw").Run(); err != nil {
		t.Fatalf("%s cannot import etcd3gw (%v): install Debian's python3-etcd3gw (make test does)", debianPython, err)
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(debianPython, "testdata/etcd3gw_lock.py", u.Hostname(), u.Port())
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &pyHolder{t: t, cmd: cmd, in: in, out: bufio.NewScanner(out)}
	t.Cleanup(p.stop)
	return p
}

// do sends one command and returns its answer.
func (p *pyHolder) do(command string) string {
	p.t.Helper()
	if _, err := io.WriteString(p.in, command+"\n"); err != nil {
		p.t.Fatal(err)
	}
	if !p.out.Scan() {
		p.t.Fatalf("%s: no answer (%v)", command, p.out.Err())
	}
	return p.out.Text()
}

// stop ends the process without releasing anything (it dies holding).
func (p *pyHolder) stop() {
	if p.in != nil {
		p.in.Close()
		p.in = nil
		_ = p.cmd.Wait()
	}
}

// TestEtcd3gwLockInterop: our KeyLock and the Python client etcd3gw's Lock,
// on the same name, exclude each other in both directions; a Go waiter gets
// the lock when the Python holder releases it, or dies and its lease expires.
func TestEtcd3gwLockInterop(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	py := startPython(t, cl.Endpoints()[0])

	// A Go holder excludes a Python acquire.
	g := mutex.NewEtcd3gwLock(tu.Lease(t, ctx, c, 30), "shared")
	tu.NoErr(t, g.Lock(ctx))
	tu.Eq(t, "Python acquire while Go holds", py.do("acquire shared 30"), "False")
	tu.NoErr(t, g.Unlock(ctx))
	tu.Eq(t, "Python acquire once Go released", py.do("acquire shared 30"), "True")
	tu.Eq(t, "Python holds", py.do("held"), "True")

	// A Python holder makes a Go waiter wait, until it releases.
	w := mutex.NewEtcd3gwLock(tu.Lease(t, ctx, c, 30), "shared")
	tu.Is(t, w.TryLock(ctx), mutex.ErrLocked)
	waiting := tu.Async(ctx, w.Lock)
	tu.Pending(t, "Go Lock while Python holds", waiting, 300*time.Millisecond)
	tu.Eq(t, "Python release", py.do("release"), "True")
	tu.NoErr(t, <-waiting)
	tu.Eq(t, "Python acquire while the Go waiter holds", py.do("acquire shared 30"), "False")
	// The Python side's release compares its own uuid: it cannot free ours.
	tu.Eq(t, "Python release of a lock it does not hold", py.do("release"), "False")
	tu.Eq(t, "Go still holds", tu.Must[bool](t)(w.Held(ctx)), true)
	tu.NoErr(t, w.Unlock(ctx))

	// A Python holder that dies: the Go waiter gets the lock when its lease
	// (2 s) expires.
	tu.Eq(t, "Python acquire, short lease", py.do("acquire shared 2"), "True")
	py.stop()
	start := time.Now()
	lockCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tu.NoErr(t, w.Lock(lockCtx))
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("the Go waiter got the lock %v after the Python holder died: before its lease could expire", waited)
	}
	kv := tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, "/locks/shared"))
	tu.Eq(t, "the key holds the Go token", string(kv.Value), w.Value())
	if !strings.HasPrefix(w.Key(), "/locks/") {
		t.Fatalf("key %s", w.Key())
	}
	tu.NoErr(t, w.Unlock(ctx))
}
