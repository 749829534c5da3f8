package barrier_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/etcdgw/etcdgw/barrier"
	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
	"github.com/etcdgw/etcdgw/lease"
)

// endpoints are the client URLs of the member the examples talk to; TestMain
// starts it. In your program they are your etcd members' client URLs.
var endpoints []string

func TestMain(m *testing.M) { goleak.VerifyTestMain(tu.WithServer(m, &endpoints)) }

func TestBarrier(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	tu.NoErr(t, barrier.Wait(ctx, c, "gate")) // down: returns at once

	holder := barrier.New(tu.Lease(t, ctx, c, 30), "gate")
	tu.NoErr(t, holder.Hold(ctx))
	tu.NoErr(t, holder.Hold(ctx)) // again, same lease
	tu.Is(t, barrier.New(tu.Lease(t, ctx, c, 30), "gate").Hold(ctx), barrier.ErrHeld)
	w1 := tu.Async(ctx, holder.Wait)
	w2 := tu.Async(ctx, func(ctx context.Context) error { return barrier.Wait(ctx, c, "gate") })
	tu.Pending(t, "a waiter", w1, 100*time.Millisecond)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	tu.Is(t, barrier.Wait(short, c, "gate"), context.DeadlineExceeded)
	cancel()
	tu.NoErr(t, holder.Release(ctx))
	tu.NoErr(t, <-w1)
	tu.NoErr(t, <-w2)
	tu.NoErr(t, holder.Release(ctx)) // down already

	// A holder that crashes: its barrier goes with its lease.
	l := tu.Lease(t, ctx, c, 30)
	crashed := barrier.New(l, "gate")
	tu.NoErr(t, crashed.Hold(ctx))
	w3 := tu.Async(ctx, func(ctx context.Context) error { return barrier.Wait(ctx, c, "gate") })
	tu.Pending(t, "a waiter", w3, 100*time.Millisecond)
	tu.Must[*gateway.LeaseRevokeResponse](t)(c.Revoke(ctx, l.ID())) // what expiry does
	tu.NoErr(t, <-w3)
}

func TestDoubleBarrier(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	_, err := barrier.NewDoubleBarrier(tu.Lease(t, ctx, c, 30), "db", 0)
	tu.Is(t, err, barrier.ErrInvalidArgument)
	var ps []*barrier.DoubleBarrier
	for i := 0; i < 3; i++ {
		ps = append(ps, tu.Must[*barrier.DoubleBarrier](t)(barrier.NewDoubleBarrier(tu.Lease(t, ctx, c, 30), "db", 3)))
	}
	e0, e1 := tu.Async(ctx, ps[0].Enter), tu.Async(ctx, ps[1].Enter)
	tu.WaitKeys(t, ctx, c, "db/waiters/", 2)
	tu.Pending(t, "Enter with 2 of 3", e0, 100*time.Millisecond)
	tu.NoErr(t, ps[2].Enter(ctx))
	tu.NoErr(t, <-e0)
	tu.NoErr(t, <-e1)

	l0, l1 := tu.Async(ctx, ps[0].Leave), tu.Async(ctx, ps[1].Leave)
	tu.Pending(t, "Leave with one still in", l0, 100*time.Millisecond)
	tu.NoErr(t, ps[2].Leave(ctx))
	tu.NoErr(t, <-l0)
	tu.NoErr(t, <-l1)
	tu.Eq(t, "keys left", tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "db/", gateway.WithCountOnly())).Count, int64(0))
}

// TestDoubleBarrierCrash: a participant that never arrives leaves the others
// waiting in Enter until their ctx ends (with their keys removed); one that
// crashes after entering holds Leave up only until its lease ends.
func TestDoubleBarrierCrash(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	mk := func(l *lease.Lease) *barrier.DoubleBarrier {
		return tu.Must[*barrier.DoubleBarrier](t)(barrier.NewDoubleBarrier(l, "dbc", 3))
	}
	a, b := mk(tu.Lease(t, ctx, c, 30)), mk(tu.Lease(t, ctx, c, 30))
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	ea, eb := tu.Async(short, a.Enter), tu.Async(short, b.Enter)
	tu.Is(t, <-ea, context.DeadlineExceeded)
	tu.Is(t, <-eb, context.DeadlineExceeded)
	cancel()
	tu.Eq(t, "keys after Enter gave up", tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "dbc/", gateway.WithCountOnly())).Count, int64(0))

	cl3 := tu.Lease(t, ctx, c, 30)
	crasher := mk(cl3)
	ea, eb = tu.Async(ctx, a.Enter), tu.Async(ctx, b.Enter)
	tu.NoErr(t, crasher.Enter(ctx))
	tu.NoErr(t, <-ea)
	tu.NoErr(t, <-eb)
	la, lb := tu.Async(ctx, a.Leave), tu.Async(ctx, b.Leave)
	tu.Pending(t, "Leave while the crashed participant's lease lives", la, 100*time.Millisecond)
	tu.Must[*gateway.LeaseRevokeResponse](t)(c.Revoke(ctx, cl3.ID())) // what its expiry does
	tu.NoErr(t, <-la)
	tu.NoErr(t, <-lb)
}
