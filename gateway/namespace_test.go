package gateway_test

import (
	"testing"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

// TestNamespace: a view puts every key under its namespace and takes it off
// what comes back, in reads, writes, deletes, transactions and watches; whole-
// keyspace ranges stay inside the namespace; two views never meet.
func TestNamespace(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	raw := tu.Client(t, cl.Endpoints())
	a, b := raw.WithNamespace("tenant-a/"), raw.WithNamespace("tenant-b/")
	tu.Eq(t, "namespace", a.Namespace(), "tenant-a/")
	tu.Eq(t, "nested", a.WithNamespace("x/").Namespace(), "tenant-a/x/")

	tu.Must[*gateway.PutResponse](t)(raw.Put(ctx, "outside", "o"))
	tu.Must[*gateway.PutResponse](t)(a.Put(ctx, "k1", "a1"))
	tu.Must[*gateway.PutResponse](t)(a.Put(ctx, "k2", "a2"))
	tu.Must[*gateway.PutResponse](t)(b.Put(ctx, "k1", "b1"))
	tu.Eq(t, "raw key", string(tu.Must[*gateway.KeyValue](t)(raw.GetOne(ctx, "tenant-a/k1")).Value), "a1")
	kv := tu.Must[*gateway.KeyValue](t)(a.GetOne(ctx, "k1"))
	tu.Eq(t, "key as the view sees it", string(kv.Key), "k1")
	eqStrings(t, "a's whole keyspace", keys(tu.Must[*gateway.GetResponse](t)(a.GetAll(ctx))), "k1", "k2")
	eqStrings(t, "b's whole keyspace", keys(tu.Must[*gateway.GetResponse](t)(b.GetAll(ctx))), "k1")
	eqStrings(t, "from a key to the end of a's namespace", keys(tu.Must[*gateway.GetResponse](t)(a.Get(ctx, "k2", gateway.WithFromKey()))), "k2")
	eqStrings(t, "a prefix", keys(tu.Must[*gateway.GetResponse](t)(a.GetPrefix(ctx, "k"))), "k1", "k2")
	prev := tu.Must[*gateway.PutResponse](t)(a.Put(ctx, "k1", "a1'", gateway.WithPrevKV())).PrevKv
	tu.Eq(t, "previous value's key", string(prev.Key), "k1")

	// Transactions: compares and operations in the namespace, results out of it.
	r := tu.Must[*gateway.TxnResponse](t)(a.Txn().
		If(gateway.CmpValue("k2", gateway.Equal, "a2")).
		Then(gateway.OpGet("k", gateway.WithPrefix()), gateway.OpTxn(nil, []gateway.Op{gateway.OpGet("k2")}, nil)).
		Commit(ctx))
	tu.Eq(t, "compare in the namespace", r.Succeeded, true)
	eqStrings(t, "txn read", keys(r.Responses[0].Get), "k1", "k2")
	eqStrings(t, "nested txn read", keys(r.Responses[1].Txn.Responses[0].Get), "k2")

	// Watches see their namespace alone, with its keys.
	w := tu.Must[*gateway.Watch](t)(a.WatchPrefix(ctx, ""))
	tu.Must[*gateway.PutResponse](t)(b.Put(ctx, "k3", "b3"))
	tu.Must[*gateway.PutResponse](t)(raw.Put(ctx, "outside", "o2"))
	tu.Must[*gateway.PutResponse](t)(a.Put(ctx, "k3", "a3"))
	ev := next(t, ctx, w).Events[0]
	tu.Eq(t, "watched key", string(ev.Kv.Key), "k3")
	tu.Eq(t, "watched value", string(ev.Kv.Value), "a3")
	w.Stop()

	// Deleting a's whole keyspace leaves b's and the rest.
	tu.Eq(t, "deleted", tu.Must[*gateway.DeleteResponse](t)(a.DeletePrefix(ctx, "")).Deleted, int64(3))
	eqStrings(t, "b after a's delete", keys(tu.Must[*gateway.GetResponse](t)(b.GetAll(ctx))), "k1", "k3")
	tu.Eq(t, "outside after a's delete", string(tu.Must[*gateway.KeyValue](t)(raw.GetOne(ctx, "outside")).Value), "o2")

	// A lease's keys come back as the view sees them.
	l := tu.Must[*gateway.LeaseGrantResponse](t)(a.Grant(ctx, 30))
	tu.Must[*gateway.PutResponse](t)(a.Put(ctx, "leased", "x", gateway.WithLease(l.ID)))
	ttl := tu.Must[*gateway.LeaseTimeToLiveResponse](t)(a.TimeToLive(ctx, l.ID, gateway.WithAttachedKeys()))
	tu.Eq(t, "lease's key", string(ttl.Keys[0]), "leased")
}
