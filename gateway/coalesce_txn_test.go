package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

// unique returns a key prefix no other run of the test has used: the tests
// look at what keys held before them.
func unique(name string) string {
	return fmt.Sprintf("%s/%d/", name, time.Now().UnixNano())
}

// cas is a coalescable compare-and-swap: it sets key to val if key holds from
// ("" for absent), and else reads key. It stores the reply in *into.
func cas(c *gateway.Client, key, from, val string, into **gateway.TxnResponse) func(context.Context) error {
	return func(ctx context.Context) (err error) {
		cmp := gateway.CmpValue(key, gateway.Equal, from)
		if from == "" {
			cmp = gateway.CmpVersion(key, gateway.Equal, 0)
		}
		*into, err = c.Txn().If(cmp).Then(gateway.OpPut(key, val)).Else(gateway.OpGet(key)).Coalesce().Commit(ctx)
		return err
	}
}

// TestCoalesceTxn: transactions marked Coalesce go out with other calls, and
// each gets its own outcome, with a header whose revision tells what it did: the
// batch's, where it wrote; the one before, where it only read.
func TestCoalesceTxn(t *testing.T) {
	c, w := wireClient(t, endpoints)
	ctx := tu.Ctx(t)
	p := unique("coalesce-txn")
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, p+"b", "old"))
	before := len(w.txns())
	var swapped, kept *gateway.TxnResponse
	var wrote *gateway.PutResponse
	var read *gateway.GetResponse
	errs := joined(t, c, w,
		cas(c, p+"a", "", "1", &swapped),
		cas(c, p+"b", "not-old", "2", &kept),
		func(ctx context.Context) (err error) { wrote, err = c.Put(ctx, p+"c", "3"); return err },
		func(ctx context.Context) (err error) { read, err = c.Get(ctx, p+"b"); return err },
	)
	for _, err := range errs {
		tu.NoErr(t, err)
	}
	bodies := w.txns()[before:]
	if len(bodies) != 1 || strings.Count(bodies[0], "request_txn") != 2 {
		t.Fatalf("want one batch holding both transactions, sent %q", bodies)
	}
	tu.Eq(t, "swapped", swapped.Succeeded, true)
	tu.Eq(t, "kept", kept.Succeeded, false)
	tu.Eq(t, "kept's read", string(kept.Responses[0].Get.Kvs[0].Value), "old")
	rev := wrote.Header.Revision
	tu.Eq(t, "the swap's revision", swapped.Header.Revision, rev)
	tu.Eq(t, "the failed swap's revision (it only read)", kept.Header.Revision, rev-1)
	tu.Eq(t, "the get's revision", read.Header.Revision, rev-1)
	if swapped.Header.MemberID == 0 || kept.Header.ClusterID == 0 {
		t.Fatalf("headers: %+v, %+v", swapped.Header, kept.Header)
	}
	a := tu.Must[*gateway.GetResponse](t)(c.Get(ctx, p+"a"))
	tu.Eq(t, "a", string(a.Kvs[0].Value), "1")
	tu.Eq(t, "a's revision", a.Kvs[0].ModRevision, rev)
}

// TestCoalesceTxnConflicts: a transaction never shares a batch with a write
// that would change what it compares or reads, or that writes what it writes.
// The batches that result may reach the server in either order (both calls
// wait at once, so either order is theirs), but each reply is one the calls
// could have had one after the other.
func TestCoalesceTxnConflicts(t *testing.T) {
	c, w := wireClient(t, endpoints)
	ctx := tu.Ctx(t)
	// apart runs calls joined, and checks that they went out in two requests
	// and that the server refused none.
	apart := func(t *testing.T, calls ...func(context.Context) error) {
		t.Helper()
		sent, refused := w.kvRequests()
		for _, err := range joined(t, c, w, calls...) {
			tu.NoErr(t, err)
		}
		s, r := w.kvRequests()
		if r != refused {
			t.Fatalf("%d requests refused (etcd refuses two writes to one key in a txn)", r-refused)
		}
		tu.Eq(t, "requests (with the two reads that fill the slots)", s-sent, 4)
	}
	t.Run("it compares a key an earlier put writes", func(t *testing.T) {
		k := unique("conflict-cmp") + "k"
		var r *gateway.TxnResponse
		apart(t, put(c, k, "1"), cas(c, k, "1", "2", &r))
		// Together, its comparison would have seen the state before the put,
		// and its Else branch the put.
		if !r.Succeeded && r.Responses[0].Get.Count > 0 {
			t.Fatalf("the swap from 1 failed, and read %q", r.Responses[0].Get.Kvs[0].Value)
		}
	})
	t.Run("a later put writes a key it compares", func(t *testing.T) {
		p := unique("conflict-later")
		var r *gateway.TxnResponse
		var wrote *gateway.PutResponse
		apart(t,
			func(ctx context.Context) (err error) {
				r, err = c.Txn().If(gateway.CmpVersion(p+"k", gateway.Equal, 0)).Then(gateway.OpPut(p+"j", "x")).Coalesce().Commit(ctx)
				return err
			},
			func(ctx context.Context) (err error) { wrote, err = c.Put(ctx, p+"k", "1"); return err },
		)
		// Together, the key it saw absent would have been written at the
		// revision it reports.
		if before := r.Header.Revision < wrote.Header.Revision; r.Succeeded != before {
			t.Fatalf("the txn swapped: %v, at revision %d; the put of the key it compared came at %d",
				r.Succeeded, r.Header.Revision, wrote.Header.Revision)
		}
	})
	t.Run("it reads a range an earlier delete covers", func(t *testing.T) {
		p := unique("conflict-del")
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, p+"k", "1"))
		var r *gateway.TxnResponse
		var del *gateway.DeleteResponse
		apart(t,
			func(ctx context.Context) (err error) { del, err = c.Delete(ctx, p, gateway.WithPrefix()); return err },
			func(ctx context.Context) (err error) {
				r, err = c.Txn().Then(gateway.OpGet(p + "k")).Coalesce().Commit(ctx)
				return err
			},
		)
		tu.Eq(t, "deleted", del.Deleted, int64(1))
		// Together, it would have read after the delete and reported the
		// revision before it.
		if shows := r.Responses[0].Get.Count == 0; shows != (r.Header.Revision >= del.Header.Revision) {
			t.Fatalf("the read shows the delete: %v, and reports revision %d; the delete came at %d",
				shows, r.Header.Revision, del.Header.Revision)
		}
	})
	t.Run("it writes a key an earlier put writes", func(t *testing.T) {
		p := unique("conflict-dup")
		apart(t, put(c, p+"k", "1"),
			func(ctx context.Context) error {
				_, err := c.Txn().Then(gateway.OpPut(p+"k", "2")).Coalesce().Commit(ctx)
				return err
			})
	})
}

// TestCoalesceTxnAlone: a transaction not marked Coalesce, or too large, is
// sent as its own request at once, even while the client's slots are busy.
func TestCoalesceTxnAlone(t *testing.T) {
	c, w := wireClient(t, endpoints, func(cfg *gateway.Config) { cfg.MaxTxnOps = 8 })
	ctx := tu.Ctx(t)
	p := unique("coalesce-alone")
	var five []gateway.Op
	for i := range 5 {
		five = append(five, gateway.OpPut(fmt.Sprint(p, "big/", i), "v"))
	}
	before := len(w.txns())
	release := fill(t, c, w)
	tu.Must[*gateway.TxnResponse](t)(c.Txn().Then(gateway.OpPut(p+"t", "x")).Commit(ctx))
	tu.Must[*gateway.TxnResponse](t)(c.Txn().Then(five...).Coalesce().Commit(ctx))
	release()
	bodies := w.txns()[before:]
	tu.Eq(t, "txn requests", len(bodies), 2)
	for _, b := range bodies {
		if strings.Contains(b, "request_txn") {
			t.Fatalf("a transaction was nested: %s", b)
		}
	}
}

// TestCoalesceTxnLimits: a batch with nested transactions stays within etcd's
// --max-txn-ops as etcd counts it (a nested txn may hold the limit minus its
// parent's operations), so the server refuses none of it, and fills it that far.
func TestCoalesceTxnLimits(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Args: []string{"--max-txn-ops=8"}})
	c, w := wireClient(t, cl.Endpoints(), func(cfg *gateway.Config) { cfg.MaxTxnOps = 8 })
	ctx := tu.Ctx(t)
	p := unique("limits")
	four := func(name string) func(context.Context) error {
		return func(ctx context.Context) error {
			var ops []gateway.Op
			for i := range 4 {
				ops = append(ops, gateway.OpPut(fmt.Sprint(p, name, i), "v"))
			}
			_, err := c.Txn().Then(ops...).Coalesce().Commit(ctx)
			return err
		}
	}
	calls := []func(context.Context) error{four("t"), four("u")}
	for i := range 6 {
		calls = append(calls, put(c, fmt.Sprint(p, "p", i), "v"))
	}
	sent, refused := w.kvRequests()
	for _, err := range joined(t, c, w, calls...) {
		tu.NoErr(t, err)
	}
	s, r := w.kvRequests()
	if r != refused {
		t.Fatalf("the server refused %d of %d requests", r-refused, s-sent)
	}
	// Both transactions and two puts fill the first batch (4 + 4 nested under
	// 4 top-level operations); the other four puts make the second.
	tu.Eq(t, "requests (with the two reads that fill the slots)", s-sent, 4)
	n := tu.Must[*gateway.GetResponse](t)(c.Get(ctx, p, gateway.WithPrefix(), gateway.WithCountOnly())).Count
	tu.Eq(t, "keys written", n, int64(14))
}

// TestCoalesceTxnOutcomeUnknown: when a batch's reply is lost, a coalesced
// transaction that writes ends with ErrOutcomeUnknown; one that only reads is
// sent again and answered.
func TestCoalesceTxnOutcomeUnknown(t *testing.T) {
	c, w := wireClient(t, endpoints)
	ctx := tu.Ctx(t)
	p := unique("txn-unknown")
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, p+"r", "here"))
	w.mu.Lock()
	cutOnce := true
	w.cut = func(path, body string) bool {
		if path == "kv/txn" && strings.Contains(body, "request_txn") && cutOnce {
			cutOnce = false
			return true
		}
		return false
	}
	w.mu.Unlock()
	var wrote, read *gateway.TxnResponse
	errs := batched(t, c, w,
		cas(c, p+"w", "", "1", &wrote),
		func(ctx context.Context) (err error) {
			read, err = c.Txn().If(gateway.CmpVersion(p+"r", gateway.Greater, 0)).Then(gateway.OpGet(p + "r")).Coalesce().Commit(ctx)
			return err
		},
	)
	tu.Is(t, errs[0], gateway.ErrOutcomeUnknown)
	tu.NoErr(t, errs[1])
	tu.Eq(t, "read", string(read.Responses[0].Get.Kvs[0].Value), "here")
	tu.Eq(t, "write applied", tu.Must[*gateway.GetResponse](t)(c.Get(ctx, p+"w")).Count, int64(1))
}
