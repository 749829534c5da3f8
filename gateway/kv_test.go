package gateway_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

func keys(r *gateway.GetResponse) []string {
	out := make([]string, len(r.Kvs))
	for i, kv := range r.Kvs {
		out[i] = string(kv.Key)
	}
	return out
}

func eqStrings(t testing.TB, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

func isErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want one matching %v", err, want)
	}
	var ge *gateway.Error
	var ce *gateway.CompactedError
	if !errors.As(err, &ge) && !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *gateway.Error", err, err)
	}
}

func TestKV(t *testing.T) {
	cl := etcdtest.Single(t)
	c := tu.Client(t, cl.Endpoints())
	ctx := tu.Ctx(t)

	t.Run("PutGet", func(t *testing.T) {
		p := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "kv/a", "1"))
		if p.Header.Revision == 0 || p.Header.ClusterID == 0 || p.Header.MemberID == 0 {
			t.Fatalf("header not decoded: %+v", p.Header)
		}
		r := tu.Must[*gateway.GetResponse](t)(c.Get(ctx, "kv/a"))
		tu.Eq(t, "count", r.Count, 1)
		kv := r.Kvs[0]
		tu.Eq(t, "value", string(kv.Value), "1")
		tu.Eq(t, "create revision", kv.CreateRevision, p.Header.Revision)
		tu.Eq(t, "mod revision", kv.ModRevision, p.Header.Revision)
		tu.Eq(t, "version", kv.Version, 1)
		p2 := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "kv/a", "2", gateway.WithPrevKV()))
		if p2.PrevKv == nil || string(p2.PrevKv.Value) != "1" {
			t.Fatalf("prev kv = %+v", p2.PrevKv)
		}
		kv2 := tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, "kv/a"))
		tu.Eq(t, "version", kv2.Version, 2)
		tu.Eq(t, "create revision kept", kv2.CreateRevision, kv.CreateRevision)
		// Reading at the old revision sees the old value.
		old := tu.Must[*gateway.GetResponse](t)(c.Get(ctx, "kv/a", gateway.WithRev(p.Header.Revision)))
		tu.Eq(t, "old value", string(old.Kvs[0].Value), "1")
	})

	t.Run("MissingKey", func(t *testing.T) {
		r := tu.Must[*gateway.GetResponse](t)(c.Get(ctx, "kv/missing"))
		tu.Eq(t, "kvs", len(r.Kvs), 0)
		tu.Eq(t, "count", r.Count, 0)
		_, err := c.GetOne(ctx, "kv/missing")
		isErr(t, err, gateway.ErrKeyNotFound)
	})

	t.Run("BinaryKeysAndEmptyValue", func(t *testing.T) {
		key := "bin/\x00\xff\xfe\x80key"
		val := "\x00\x01\xff\xc3\x28 not utf-8"
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, key, val))
		kv := tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, key))
		if !bytes.Equal(kv.Key, []byte(key)) || !bytes.Equal(kv.Value, []byte(val)) {
			t.Fatalf("binary round trip: key %q value %q", kv.Key, kv.Value)
		}
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "bin/empty", ""))
		kv = tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, "bin/empty"))
		tu.Eq(t, "empty value length", len(kv.Value), 0)
		tu.Eq(t, "version", kv.Version, 1)
	})

	t.Run("EmptyKeyRefused", func(t *testing.T) {
		_, err := c.Put(ctx, "", "x")
		isErr(t, err, gateway.ErrEmptyKey)
		_, err = c.Get(ctx, "")
		isErr(t, err, gateway.ErrEmptyKey)
		_, err = c.Delete(ctx, "")
		isErr(t, err, gateway.ErrEmptyKey)
		// The server says the same when asked directly.
		err = c.Do(ctx, "/kv/put", map[string]string{"key": "", "value": "eA=="}, nil)
		isErr(t, err, gateway.ErrEmptyKey)
		var ge *gateway.Error
		errors.As(err, &ge)
		tu.Eq(t, "status", ge.Status, 400)
		tu.Eq(t, "code", ge.Code, gateway.CodeInvalidArgument)
	})

	t.Run("RangesAndOptions", func(t *testing.T) {
		for i := 0; i < 5; i++ {
			tu.Must[*gateway.PutResponse](t)(c.Put(ctx, fmt.Sprintf("r/%d", i), fmt.Sprintf("v%d", 4-i)))
		}
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "r0", "outside"))
		r := tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/"))
		eqStrings(t, "prefix", keys(r), "r/0", "r/1", "r/2", "r/3", "r/4")
		r = tu.Must[*gateway.GetResponse](t)(c.Get(ctx, "r/1", gateway.WithRange("r/3")))
		eqStrings(t, "range", keys(r), "r/1", "r/2")
		r = tu.Must[*gateway.GetResponse](t)(c.Get(ctx, "r/3", gateway.WithFromKey()))
		eqStrings(t, "from key", keys(r)[:3], "r/3", "r/4", "r0")
		r = tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithLimit(2)))
		eqStrings(t, "limit", keys(r), "r/0", "r/1")
		tu.Eq(t, "more", r.More, true)
		tu.Eq(t, "count with limit", r.Count, 5)
		r = tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithSort(gateway.SortByKey, gateway.SortDescend)))
		eqStrings(t, "descend", keys(r), "r/4", "r/3", "r/2", "r/1", "r/0")
		r = tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithSort(gateway.SortByValue, gateway.SortAscend)))
		eqStrings(t, "by value", keys(r), "r/4", "r/3", "r/2", "r/1", "r/0")
		r = tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithSort(gateway.SortByCreateRevision, gateway.SortDescend)))
		eqStrings(t, "by create", keys(r), "r/4", "r/3", "r/2", "r/1", "r/0")
		r = tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithSort(gateway.SortByModRevision, gateway.SortAscend)))
		eqStrings(t, "by mod", keys(r), "r/0", "r/1", "r/2", "r/3", "r/4")
		r = tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithSort(gateway.SortByVersion, gateway.SortAscend)))
		tu.Eq(t, "by version count", len(r.Kvs), 5)
		r = tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithKeysOnly()))
		tu.Eq(t, "keys only value", len(r.Kvs[0].Value), 0)
		tu.Eq(t, "keys only key", string(r.Kvs[0].Key), "r/0")
		r = tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithCountOnly()))
		tu.Eq(t, "count only kvs", len(r.Kvs), 0)
		tu.Eq(t, "count only", r.Count, 5)
		r = tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithSerializable()))
		tu.Eq(t, "serializable", len(r.Kvs), 5)

		all := tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/"))
		mid := all.Kvs[2].ModRevision
		r = tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithMinModRev(mid)))
		eqStrings(t, "min mod", keys(r), "r/2", "r/3", "r/4")
		r = tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithMaxModRev(mid)))
		eqStrings(t, "max mod", keys(r), "r/0", "r/1", "r/2")
		r = tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithMinCreateRev(mid)))
		eqStrings(t, "min create", keys(r), "r/2", "r/3", "r/4")
		r = tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithMaxCreateRev(mid)))
		eqStrings(t, "max create", keys(r), "r/0", "r/1", "r/2")
	})

	t.Run("PrefixWithTrailingFF", func(t *testing.T) {
		// Keys under "p\xff": a naive prefix end ("p\x00" after overflow) would
		// match nothing or everything.
		for _, k := range []string{"p\xff", "p\xff\x00", "p\xff\xff", "p\xff\xffz"} {
			tu.Must[*gateway.PutResponse](t)(c.Put(ctx, k, "v"))
		}
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "q", "outside"))
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "p\xfe", "outside"))
		r := tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "p\xff"))
		eqStrings(t, "prefix p\\xff", keys(r), "p\xff", "p\xff\x00", "p\xff\xff", "p\xff\xffz")
		r = tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "p\xff\xff"))
		eqStrings(t, "prefix p\\xff\\xff", keys(r), "p\xff\xff", "p\xff\xffz")
		// An all-0xff prefix covers everything from it to the end.
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "\xff\xff\x01", "v"))
		r = tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "\xff\xff"))
		eqStrings(t, "prefix \\xff\\xff", keys(r), "\xff\xff\x01")
	})

	t.Run("GetAllAndDeletes", func(t *testing.T) {
		all := tu.Must[*gateway.GetResponse](t)(c.GetAll(ctx))
		if all.Count < 10 {
			t.Fatalf("GetAll count = %d", all.Count)
		}
		for i := 1; i < len(all.Kvs); i++ {
			if bytes.Compare(all.Kvs[i-1].Key, all.Kvs[i].Key) >= 0 {
				t.Fatalf("GetAll not in key order at %d", i)
			}
		}
		d := tu.Must[*gateway.DeleteResponse](t)(c.Delete(ctx, "kv/a", gateway.WithPrevKV()))
		tu.Eq(t, "deleted", d.Deleted, 1)
		tu.Eq(t, "prev kv", string(d.PrevKvs[0].Value), "2")
		d = tu.Must[*gateway.DeleteResponse](t)(c.Delete(ctx, "kv/a"))
		tu.Eq(t, "deleted again", d.Deleted, 0)
		d = tu.Must[*gateway.DeleteResponse](t)(c.DeleteRange(ctx, "r/0", "r/2"))
		tu.Eq(t, "delete range", d.Deleted, 2)
		d = tu.Must[*gateway.DeleteResponse](t)(c.DeletePrefix(ctx, "r/"))
		tu.Eq(t, "delete prefix", d.Deleted, 3)
		d = tu.Must[*gateway.DeleteResponse](t)(c.DeletePrefix(ctx, ""))
		tu.Eq(t, "delete everything", d.Deleted, all.Count-1-5)
		tu.Eq(t, "empty store", tu.Must[*gateway.GetResponse](t)(c.GetAll(ctx)).Count, 0)
	})

	t.Run("CreateReplace", func(t *testing.T) {
		ok := tu.Must[bool](t)(c.Create(ctx, "cr/x", "1"))
		tu.Eq(t, "first create", ok, true)
		ok = tu.Must[bool](t)(c.Create(ctx, "cr/x", "2"))
		tu.Eq(t, "second create", ok, false)
		tu.Eq(t, "value after creates", string(tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, "cr/x")).Value), "1")
		ok = tu.Must[bool](t)(c.Replace(ctx, "cr/x", "wrong", "3"))
		tu.Eq(t, "replace with wrong old value", ok, false)
		ok = tu.Must[bool](t)(c.Replace(ctx, "cr/x", "1", "3"))
		tu.Eq(t, "replace", ok, true)
		tu.Eq(t, "value after replace", string(tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, "cr/x")).Value), "3")
		ok = tu.Must[bool](t)(c.Replace(ctx, "cr/missing", "", "x"))
		tu.Eq(t, "replace of a missing key", ok, false)
		lease := tu.Must[*gateway.LeaseGrantResponse](t)(c.Grant(ctx, 60))
		ok = tu.Must[bool](t)(c.Create(ctx, "cr/leased", "v", gateway.WithLease(lease.ID)))
		tu.Eq(t, "create with lease", ok, true)
		tu.Eq(t, "lease attached", tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, "cr/leased")).Lease, lease.ID)
	})

	t.Run("PutLeaseOptions", func(t *testing.T) {
		l1 := tu.Must[*gateway.LeaseGrantResponse](t)(c.Grant(ctx, 60))
		l2 := tu.Must[*gateway.LeaseGrantResponse](t)(c.Grant(ctx, 60))
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "pl/k", "v1", gateway.WithLease(l1.ID)))
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "pl/k", "", gateway.WithLease(l2.ID), gateway.WithIgnoreValue()))
		kv := tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, "pl/k"))
		tu.Eq(t, "value kept", string(kv.Value), "v1")
		tu.Eq(t, "lease changed", kv.Lease, l2.ID)
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "pl/k", "v2", gateway.WithIgnoreLease()))
		kv = tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, "pl/k"))
		tu.Eq(t, "value changed", string(kv.Value), "v2")
		tu.Eq(t, "lease kept", kv.Lease, l2.ID)
		_, err := c.Put(ctx, "pl/k", "v", gateway.WithLease(0x7fff0000))
		isErr(t, err, gateway.ErrLeaseNotFound)
	})

	t.Run("CompactAndRevisions", func(t *testing.T) {
		p1 := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "cmp/k", "1"))
		p2 := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "cmp/k", "2"))
		_, err := c.Get(ctx, "cmp/k", gateway.WithRev(p2.Header.Revision+1000))
		isErr(t, err, gateway.ErrFutureRevision)
		tu.Must[*gateway.CompactResponse](t)(c.Compact(ctx, p2.Header.Revision, gateway.WithPhysical()))
		_, err = c.Get(ctx, "cmp/k", gateway.WithRev(p1.Header.Revision))
		isErr(t, err, gateway.ErrCompacted)
		_, err = c.Compact(ctx, p1.Header.Revision)
		isErr(t, err, gateway.ErrCompacted)
		r := tu.Must[*gateway.GetResponse](t)(c.Get(ctx, "cmp/k", gateway.WithRev(p2.Header.Revision)))
		tu.Eq(t, "value at compact revision", string(r.Kvs[0].Value), "2")
	})
}

func TestRequestSize(t *testing.T) {
	cl := etcdtest.Single(t)
	c := tu.Client(t, cl.Endpoints())
	ctx := tu.Ctx(t)
	rev := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "size/marker", "x")).Header.Revision

	// Over the limit: refused before sending, nothing written.
	big := strings.Repeat("v", gateway.DefaultMaxRequestBytes)
	_, err := c.Put(ctx, "size/big", big)
	isErr(t, err, gateway.ErrRequestTooLarge)
	var ge *gateway.Error
	errors.As(err, &ge)
	tu.Eq(t, "endpoint of a request never sent", ge.Endpoint, "")
	_, err = c.Txn().Then(gateway.OpPut("size/a", big[:gateway.DefaultMaxRequestBytes/2]),
		gateway.OpPut("size/b", big[:gateway.DefaultMaxRequestBytes/2])).Commit(ctx)
	isErr(t, err, gateway.ErrRequestTooLarge)
	now := tu.Must[*gateway.GetResponse](t)(c.Get(ctx, "size/marker")).Header.Revision
	tu.Eq(t, "revision after refused requests", now, rev)

	// Just under the limit: the server takes it, so the check is not too strict.
	fits := big[:gateway.DefaultMaxRequestBytes-4096]
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "size/fits", fits))
	tu.Eq(t, "stored length", len(tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, "size/fits")).Value), len(fits))

	// With the check off, the server's own refusal comes back typed.
	c2 := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) { cfg.MaxRequestBytes = -1 })
	_, err = c2.Put(ctx, "size/big", big)
	isErr(t, err, gateway.ErrRequestTooLarge)
	errors.As(err, &ge)
	if ge.Endpoint == "" || ge.Status != 400 {
		t.Fatalf("server refusal: %+v", ge)
	}
}
