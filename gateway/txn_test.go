package gateway_test

import (
	"testing"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

func TestTxn(t *testing.T) {
	cl := etcdtest.Single(t)
	c := tu.Client(t, cl.Endpoints())
	ctx := tu.Ctx(t)
	lease := tu.Must[*gateway.LeaseGrantResponse](t)(c.Grant(ctx, 60))
	p := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "t/a", "1", gateway.WithLease(lease.ID)))
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "t/a", "2", gateway.WithIgnoreLease()))
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "t/b", "x"))
	a := tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, "t/a"))

	cases := []struct {
		name string
		cmp  gateway.Cmp
		want bool
	}{
		{"value equal", gateway.CmpValue("t/a", gateway.Equal, "2"), true},
		{"value not equal", gateway.CmpValue("t/a", gateway.NotEqual, "2"), false},
		{"value greater", gateway.CmpValue("t/a", gateway.Greater, "1"), true},
		{"value less", gateway.CmpValue("t/a", gateway.Less, "1"), false},
		{"value of missing key", gateway.CmpValue("t/none", gateway.Equal, ""), false},
		{"version", gateway.CmpVersion("t/a", gateway.Equal, 2), true},
		{"version greater", gateway.CmpVersion("t/a", gateway.Greater, 2), false},
		{"version of missing key is 0", gateway.CmpVersion("t/none", gateway.Equal, 0), true},
		{"create revision", gateway.CmpCreateRevision("t/a", gateway.Equal, p.Header.Revision), true},
		{"absent: create revision 0", gateway.CmpCreateRevision("t/none", gateway.Equal, 0), true},
		{"present: create revision not 0", gateway.CmpCreateRevision("t/a", gateway.Equal, 0), false},
		{"mod revision", gateway.CmpModRevision("t/a", gateway.Equal, a.ModRevision), true},
		{"mod revision less", gateway.CmpModRevision("t/a", gateway.Less, a.ModRevision), false},
		{"mod revision not equal", gateway.CmpModRevision("t/a", gateway.NotEqual, a.ModRevision), false},
		{"lease", gateway.CmpLease("t/a", gateway.Equal, lease.ID), true},
		{"no lease", gateway.CmpLease("t/b", gateway.Equal, 0), true},
		{"prefix: every key has version > 0", gateway.CmpVersion("t/", gateway.Greater, 0).WithPrefix(), true},
		{"range: every key's version is 1", gateway.CmpVersion("t/a", gateway.Equal, 1).WithRange("t/c"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tu.Must[*gateway.TxnResponse](t)(c.Txn().If(tc.cmp).
				Then(gateway.OpGet("t/a")).Else(gateway.OpGet("t/b")).Commit(ctx))
			tu.Eq(t, "succeeded", r.Succeeded, tc.want)
			tu.Eq(t, "responses", len(r.Responses), 1)
			want := "2"
			if !tc.want {
				want = "x"
			}
			tu.Eq(t, "branch read", string(r.Responses[0].Get.Kvs[0].Value), want)
		})
	}

	t.Run("AllOpsAndNested", func(t *testing.T) {
		r := tu.Must[*gateway.TxnResponse](t)(c.Txn().
			If(gateway.CmpValue("t/a", gateway.Equal, "2"), gateway.CmpVersion("t/b", gateway.Equal, 1)).
			Then(
				gateway.OpPut("t/c", "3", gateway.WithPrevKV()),
				gateway.OpDelete("t/b", gateway.WithPrevKV()),
				gateway.OpGet("t/", gateway.WithPrefix(), gateway.WithCountOnly()),
				gateway.OpTxn(
					[]gateway.Cmp{gateway.CmpCreateRevision("t/d", gateway.Equal, 0)},
					[]gateway.Op{gateway.OpPut("t/d", "4")},
					[]gateway.Op{gateway.OpGet("t/d")}),
			).Commit(ctx))
		tu.Eq(t, "succeeded", r.Succeeded, true)
		tu.Eq(t, "responses", len(r.Responses), 4)
		if r.Responses[0].Put == nil || r.Responses[0].Put.PrevKv != nil {
			t.Fatalf("put response: %+v", r.Responses[0])
		}
		tu.Eq(t, "deleted", r.Responses[1].Delete.Deleted, 1)
		tu.Eq(t, "deleted prev", string(r.Responses[1].Delete.PrevKvs[0].Value), "x")
		// The range sees the txn's own writes: t/a, t/c (t/b deleted; t/d not yet).
		tu.Eq(t, "count", r.Responses[2].Get.Count, 2)
		nested := r.Responses[3].Txn
		if nested == nil || !nested.Succeeded || nested.Responses[0].Put == nil {
			t.Fatalf("nested txn: %+v", r.Responses[3])
		}
		tu.Eq(t, "t/d", string(tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, "t/d")).Value), "4")
		// One revision for the whole transaction.
		kvc := tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, "t/c"))
		kvd := tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, "t/d"))
		tu.Eq(t, "same revision", kvc.ModRevision, kvd.ModRevision)
		tu.Eq(t, "header revision", r.Header.Revision, kvc.ModRevision)
	})

	t.Run("EmptyTxn", func(t *testing.T) {
		r := tu.Must[*gateway.TxnResponse](t)(c.Txn().Commit(ctx))
		tu.Eq(t, "empty txn succeeds", r.Succeeded, true)
	})

	t.Run("ServerRefusals", func(t *testing.T) {
		_, err := c.Txn().Then(gateway.OpPut("t/dup", "1"), gateway.OpPut("t/dup", "2")).Commit(ctx)
		isErr(t, err, gateway.ErrDuplicateKey)
		ops := make([]gateway.Op, 129)
		for i := range ops {
			ops[i] = gateway.OpGet("t/a")
		}
		_, err = c.Txn().Then(ops...).Commit(ctx)
		isErr(t, err, gateway.ErrTooManyOps)
		_, err = c.Txn().If(gateway.CmpValue("", gateway.Equal, "")).Commit(ctx)
		isErr(t, err, gateway.ErrEmptyKey)
		_, err = c.Txn().Then(gateway.OpPut("", "v")).Commit(ctx)
		isErr(t, err, gateway.ErrEmptyKey)
	})
}
