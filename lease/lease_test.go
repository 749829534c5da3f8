package lease_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
	"github.com/etcdgw/etcdgw/lease"
)

// endpoints are the client URLs of the member the examples talk to; TestMain
// starts it. In your program they are your etcd members' client URLs.
var endpoints []string

func TestMain(m *testing.M) { goleak.VerifyTestMain(tu.WithServer(m, &endpoints)) }

// alive fails t if l ends within d.
func alive(t *testing.T, l *lease.Lease, d time.Duration) {
	t.Helper()
	select {
	case <-l.Done():
		t.Fatalf("lease ended: %v", l.Err())
	case <-time.After(d):
	}
}

func TestKeepsAliveAndCloses(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	l := tu.Must[*lease.Lease](t)(lease.New(ctx, c, lease.WithTTL(2)))
	tu.Eq(t, "TTL", l.TTL(), 2*time.Second)
	for _, ttl := range []int64{0, -1} {
		_, err := lease.New(ctx, c, lease.WithTTL(ttl))
		tu.Is(t, err, lease.ErrInvalidArgument)
	}
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "k", "v", gateway.WithLease(l.ID())))
	before := l.Deadline()
	alive(t, l, 3*l.TTL()) // three TTLs: without renewals it would be gone
	if !l.Deadline().After(before) {
		t.Fatalf("deadline %v did not move past %v", l.Deadline(), before)
	}
	tu.Eq(t, "keys on the lease", len(tu.Must[*gateway.GetResponse](t)(c.Get(ctx, "k")).Kvs), 1)
	tu.NoErr(t, l.Err())

	tu.NoErr(t, l.Close(ctx))
	tu.Is(t, l.Err(), lease.ErrClosed)
	<-l.Done()
	if !l.Deadline().IsZero() {
		t.Fatal("an ended lease has a deadline")
	}
	_, err := c.TimeToLive(ctx, l.ID())
	tu.Is(t, err, gateway.ErrLeaseNotFound)
	tu.Eq(t, "keys after Close", len(tu.Must[*gateway.GetResponse](t)(c.Get(ctx, "k")).Kvs), 0)
	tu.NoErr(t, l.Close(ctx)) // again: nothing to do
}

func TestRevokedElsewhere(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	l := tu.Must[*lease.Lease](t)(lease.New(ctx, c, lease.WithTTL(3)))
	defer l.Close(ctx)
	revoked := time.Now()
	tu.Must[*gateway.LeaseRevokeResponse](t)(c.Revoke(ctx, l.ID()))
	select {
	case <-l.Done():
	case <-ctx.Done():
		t.Fatal("lease not reported lost")
	}
	// The next renewal finds out: within a third of the TTL.
	if d := time.Since(revoked); d > l.TTL()/3+time.Second {
		t.Fatalf("loss noticed after %v", d)
	}
	tu.Is(t, l.Err(), lease.ErrLost, gateway.ErrLeaseNotFound)
	tu.Is(t, context.Cause(l.Context()), lease.ErrLost)
	var lost *lease.LostError
	if !errors.As(l.Err(), &lost) || lost.ID != l.ID() {
		t.Fatalf("Err = %#v, want a *LostError for %x", l.Err(), l.ID())
	}
}

// TestCheck: Check asks the server at once. A lease revoked elsewhere ends on
// the Check, long before its next renewal (TTL 30: renewed every 10 s); a Check
// that cannot ask leaves the lease as it was.
func TestCheck(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	l := tu.Must[*lease.Lease](t)(lease.New(ctx, c, lease.WithTTL(30)))
	defer l.Close(ctx)
	tu.NoErr(t, l.Check(ctx))

	ended, cancel := context.WithCancel(ctx)
	cancel()
	tu.Is(t, l.Check(ended), context.Canceled)
	tu.NoErr(t, l.Err())

	tu.Must[*gateway.LeaseRevokeResponse](t)(c.Revoke(ctx, l.ID()))
	err := l.Check(ctx)
	tu.Is(t, err, lease.ErrLost, gateway.ErrLeaseNotFound)
	select {
	case <-l.Done():
	default:
		t.Fatal("Check found the lease gone but Done is open")
	}
	tu.Is(t, l.Err(), lease.ErrLost, gateway.ErrLeaseNotFound)
	tu.Is(t, l.Check(ctx), lease.ErrLost) // ended: no need to ask again

	closed := tu.Must[*lease.Lease](t)(lease.New(ctx, c, lease.WithTTL(30)))
	tu.NoErr(t, closed.Close(ctx))
	tu.Is(t, closed.Check(ctx), lease.ErrClosed)
}

// TestLostBeforeServerExpiry cuts a lease holder off from the cluster by
// pausing the only member it talks to. The holder must declare the lease lost
// before the rest of the cluster expires it (seen as the deletion of a key
// attached to it).
func TestLostBeforeServerExpiry(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Size: 3})
	ctx := tu.Ctx(t)
	f := tu.Follower(t, ctx, cl)
	others := tu.Except(cl, f)
	holderClient := tu.Client(t, []string{f.ClientURL}, func(cfg *gateway.Config) {
		cfg.RequestTimeout = 500 * time.Millisecond
	})
	observer := tu.Client(t, others)
	l := tu.Must[*lease.Lease](t)(lease.New(ctx, holderClient, lease.WithTTL(3)))
	defer l.Close(ctx)
	put := tu.Must[*gateway.PutResponse](t)(observer.Put(ctx, "held", "x", gateway.WithLease(l.ID())))
	w := tu.Must[*gateway.Watch](t)(observer.Watch(ctx, "held", gateway.WithRev(put.Header.Revision+1), gateway.WithFilterPut()))
	defer w.Stop()

	tu.NoErr(t, f.Pause())
	defer f.Resume()
	paused := time.Now()
	var lost, expired time.Time
	for lost.IsZero() || expired.IsZero() {
		select {
		case <-l.Done():
			if lost.IsZero() {
				lost = time.Now()
			}
		case r, ok := <-w.Events():
			if !ok {
				t.Fatalf("watch ended: %v", w.Err())
			}
			if len(r.Events) > 0 {
				expired = time.Now()
				if lost.IsZero() {
					t.Fatalf("the server expired the lease %v after the pause; the holder still believed it held it", expired.Sub(paused))
				}
			}
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	tu.Is(t, l.Err(), lease.ErrLost, lease.ErrExpired)
	t.Logf("pause at 0; holder declared the lease lost at %v; the server expired it at %v (%v later)",
		lost.Sub(paused).Round(time.Millisecond), expired.Sub(paused).Round(time.Millisecond), expired.Sub(lost).Round(time.Millisecond))
}

func TestOrphanAndAdopt(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	l := tu.Must[*lease.Lease](t)(lease.New(ctx, c, lease.WithTTL(30)))
	l.Orphan()
	tu.Is(t, l.Err(), lease.ErrClosed)
	ttl := tu.Must[*gateway.LeaseTimeToLiveResponse](t)(c.TimeToLive(ctx, l.ID()))
	if ttl.TTL <= 0 {
		t.Fatalf("orphaned lease has TTL %d: it was revoked", ttl.TTL)
	}
	// A successor process adopts it.
	l2 := tu.Must[*lease.Lease](t)(lease.New(ctx, c, lease.WithID(l.ID())))
	tu.Eq(t, "adopted ID", l2.ID(), l.ID())
	tu.Eq(t, "adopted TTL", l2.TTL(), 30*time.Second)
	tu.NoErr(t, l2.Close(ctx))
	_, err := lease.New(ctx, c, lease.WithID(l.ID()))
	tu.Is(t, err, gateway.ErrLeaseNotFound)
	_, err = lease.New(ctx, c, lease.WithTTL(-1))
	if err == nil {
		t.Fatal("a negative TTL was accepted")
	}
}

// TestSurvivesMemberKill: renewals move to another member when the one in use
// dies.
func TestSurvivesMemberKill(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Size: 3})
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	l := tu.Must[*lease.Lease](t)(lease.New(ctx, c, lease.WithTTL(2)))
	defer l.Close(ctx)
	tu.Leader(t, ctx, cl).Kill()
	alive(t, l, 3*l.TTL())
	tu.Must[*gateway.LeaseTimeToLiveResponse](t)(c.TimeToLive(ctx, l.ID()))
}
