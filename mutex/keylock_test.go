package mutex_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
	"github.com/etcdgw/etcdgw/lease"
	"github.com/etcdgw/etcdgw/mutex"
)

// etcd3gwAcquire and etcd3gwRelease send the transactions etcd3gw's Lock
// sends (the real Python client is in interop/): create the key if absent,
// under a lease, holding a uuid; delete it if it still holds that uuid.
func etcd3gwAcquire(t *testing.T, ctx context.Context, c *gateway.Client, key, token string, leaseID int64) bool {
	t.Helper()
	r := tu.Must[*gateway.TxnResponse](t)(c.Txn().
		If(gateway.CmpCreateRevision(key, gateway.Equal, 0)).
		Then(gateway.OpPut(key, token, gateway.WithLease(leaseID))).
		Else(gateway.OpGet(key)).
		Commit(ctx))
	return r.Succeeded
}

func etcd3gwRelease(t *testing.T, ctx context.Context, c *gateway.Client, key, token string) bool {
	t.Helper()
	r := tu.Must[*gateway.TxnResponse](t)(c.Txn().
		If(gateway.CmpValue(key, gateway.Equal, token)).
		Then(gateway.OpDelete(key)).
		Commit(ctx))
	return r.Succeeded
}

// TestKeyLock: a KeyLock and the other side of etcd3gw's layout exclude each
// other; a waiter gets the lock when the key goes (released, or its lease
// expired); its own create found again is its hold; a lost key ends Context;
// the release is fenced.
func TestKeyLock(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())

	a := mutex.NewEtcd3gwLock(tu.Lease(t, ctx, c, 30), "kl")
	tu.Eq(t, "key", a.Key(), "/locks/kl")
	tu.NoErr(t, a.Lock(ctx))
	// The Python side cannot take it while we hold it.
	py := tu.Must[*gateway.LeaseGrantResponse](t)(c.Grant(ctx, 30))
	pyToken := uuid.NewString()
	tu.Eq(t, "etcd3gw acquire while held", etcd3gwAcquire(t, ctx, c, "/locks/kl", pyToken, py.ID), false)
	kv := tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, "/locks/kl"))
	tu.Eq(t, "the value etcd3gw compares", string(kv.Value), a.Value())
	tu.Eq(t, "token", a.Token(), kv.CreateRevision)
	tu.NoErr(t, a.Unlock(ctx))

	// The Python side holds it: a Go waiter waits, and gets it on release.
	tu.Eq(t, "etcd3gw acquire when free", etcd3gwAcquire(t, ctx, c, "/locks/kl", pyToken, py.ID), true)
	b := mutex.NewEtcd3gwLock(tu.Lease(t, ctx, c, 30), "kl")
	tu.Is(t, b.TryLock(ctx), mutex.ErrLocked)
	waiting := tu.Async(ctx, b.Lock)
	tu.Pending(t, "Lock while etcd3gw holds", waiting, 200*1e6)
	tu.Eq(t, "etcd3gw release", etcd3gwRelease(t, ctx, c, "/locks/kl", pyToken), true)
	tu.NoErr(t, <-waiting)
	tu.Eq(t, "held", tu.Must[bool](t)(b.Held(ctx)), true)
	// etcd3gw's release with its own token cannot take our lock away.
	tu.Eq(t, "a stale etcd3gw release", etcd3gwRelease(t, ctx, c, "/locks/kl", pyToken), false)
	tu.NoErr(t, b.Unlock(ctx))

	// The Python holder dies: the waiter gets the lock when its lease expires.
	short := tu.Must[*gateway.LeaseGrantResponse](t)(c.Grant(ctx, 2))
	tu.Eq(t, "etcd3gw acquire", etcd3gwAcquire(t, ctx, c, "/locks/kl", uuid.NewString(), short.ID), true)
	tu.NoErr(t, b.Lock(ctx))
	tu.NoErr(t, b.Unlock(ctx))

	// A lock whose key is deleted under it loses it, and says so.
	tu.NoErr(t, b.Lock(ctx))
	done := b.Done()
	tu.Must[*gateway.DeleteResponse](t)(c.Delete(ctx, "/locks/kl"))
	<-done
	tu.Is(t, context.Cause(b.Context()), mutex.ErrLost)
	tu.Is(t, b.Unlock(ctx), mutex.ErrLost)

	// tooz's layout: another key, and the two layouts do not meet.
	tz := mutex.NewToozLock(tu.Lease(t, ctx, c, 30), "kl")
	tu.Eq(t, "tooz key", tz.Key(), "/tooz/lockskl")
	tu.NoErr(t, tz.Lock(ctx))
	tu.Eq(t, "tooz value", len(tz.Value()), 16)
	tz2 := mutex.NewToozLock(tu.Lease(t, ctx, c, 30), "kl")
	tu.Is(t, tz2.TryLock(ctx), mutex.ErrLocked)
	tu.NoErr(t, tz.Unlock(ctx))
	tu.NoErr(t, tz2.TryLock(ctx))
	tu.NoErr(t, tz2.Unlock(ctx))
}

// TestKeyLockLeaseEnds: a waiter whose lease ends stops waiting with ErrLost.
func TestKeyLockLeaseEnds(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	holder := mutex.NewEtcd3gwLock(tu.Lease(t, ctx, c, 30), "kl-end")
	tu.NoErr(t, holder.Lock(ctx))
	l := tu.Must[*lease.Lease](t)(lease.New(ctx, c, lease.WithTTL(30)))
	w := mutex.NewEtcd3gwLock(l, "kl-end")
	waiting := tu.Async(ctx, w.Lock)
	tu.Pending(t, "waiter", waiting, 100*1e6)
	tu.NoErr(t, l.Close(ctx))
	tu.Is(t, <-waiting, mutex.ErrLost)
	tu.NoErr(t, holder.Unlock(ctx))
}
