package interop

import (
	"context"
	"syscall"
	"testing"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/etcdgw/etcdgw/election"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

// TestElectionInterop: this package's Election, clientv3's
// concurrency.Election and `etcdctl elect` take part in one election, in the
// order they campaigned, and our Observe follows all of them.
func TestElectionInterop(t *testing.T) {
	ctx := tu.Ctx(t)
	p := newParties(t, ctx)
	eps, gw := p.endpoints, p.gw
	ours := election.New(p.lease, "mixed")
	theirs := concurrency.NewElection(p.session, "mixed")

	octx, stop := context.WithCancel(ctx)
	obs := election.Observe(octx, gw, "mixed")
	defer func() {
		stop()
		for range obs {
		}
	}()
	next := func() string {
		t.Helper()
		select {
		case s := <-obs:
			if s.Leader == nil {
				return "<none>"
			}
			return string(s.Leader.Value)
		case <-ctx.Done():
			t.Fatal("no leadership change observed")
		}
		return ""
	}
	tu.Eq(t, "observed", next(), "<none>")

	tu.NoErr(t, ours.Campaign(ctx, "ours"))
	tu.Eq(t, "observed", next(), "ours")
	v3done := make(chan error, 1)
	go func() { v3done <- theirs.Campaign(ctx, "clientv3") }()
	tu.WaitKeys(t, ctx, gw, "mixed/", 2)
	ctl := startCtl(t, eps, "elect", "mixed", "etcdctl")
	tu.WaitKeys(t, ctx, gw, "mixed/", 3)

	// clientv3 sees us lead.
	r, err := theirs.Leader(ctx)
	tu.NoErr(t, err)
	tu.Eq(t, "leader as clientv3 sees it", string(r.Kvs[0].Value), "ours")

	tu.NoErr(t, ours.Resign(ctx))
	tu.NoErr(t, <-v3done)
	tu.Eq(t, "observed", next(), "clientv3")
	got, err := ours.Leader(ctx)
	tu.NoErr(t, err)
	tu.Eq(t, "leader as we see it", string(got.Value), "clientv3")

	tu.NoErr(t, theirs.Resign(ctx))
	ctl.expect(t, ctx, "etcdctl") // etcdctl prints the key and value it won with
	tu.Eq(t, "observed", next(), "etcdctl")

	// We campaign again; etcdctl, interrupted, resigns; we lead.
	oursDone := make(chan error, 1)
	go func() { oursDone <- ours.Campaign(ctx, "ours again") }()
	tu.WaitKeys(t, ctx, gw, "mixed/", 2)
	tu.NoErr(t, ctl.cmd.Process.Signal(syscall.SIGINT))
	tu.NoErr(t, <-oursDone)
	tu.Eq(t, "observed", next(), "ours again")
	tu.NoErr(t, ours.Resign(ctx))
	tu.Eq(t, "observed", next(), "<none>")
}
