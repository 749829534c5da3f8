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

func eq[T comparable](t testing.TB, what string, got, want T) { t.Helper(); tu.Eq(t, what, got, want) }

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
	c := newClient(t, cl)
	ctx := ctxT(t)

	t.Run("PutGet", func(t *testing.T) {
		p := must[*gateway.PutResponse](t)(c.Put(ctx, "kv/a", "1"))
		if p.Header.Revision == 0 || p.Header.ClusterID == 0 || p.Header.MemberID == 0 {
			t.Fatalf("header not decoded: %+v", p.Header)
		}
		r := must[*gateway.GetResponse](t)(c.Get(ctx, "kv/a"))
		eq(t, "count", r.Count, 1)
		kv := r.Kvs[0]
		eq(t, "value", string(kv.Value), "1")
		eq(t, "create revision", kv.CreateRevision, p.Header.Revision)
		eq(t, "mod revision", kv.ModRevision, p.Header.Revision)
		eq(t, "version", kv.Version, 1)
		p2 := must[*gateway.PutResponse](t)(c.Put(ctx, "kv/a", "2", gateway.WithPrevKV()))
		if p2.PrevKv == nil || string(p2.PrevKv.Value) != "1" {
			t.Fatalf("prev kv = %+v", p2.PrevKv)
		}
		kv2 := must[*gateway.KeyValue](t)(c.GetOne(ctx, "kv/a"))
		eq(t, "version", kv2.Version, 2)
		eq(t, "create revision kept", kv2.CreateRevision, kv.CreateRevision)
		// Reading at the old revision sees the old value.
		old := must[*gateway.GetResponse](t)(c.Get(ctx, "kv/a", gateway.WithRev(p.Header.Revision)))
		eq(t, "old value", string(old.Kvs[0].Value), "1")
	})

	t.Run("MissingKey", func(t *testing.T) {
		r := must[*gateway.GetResponse](t)(c.Get(ctx, "kv/missing"))
		eq(t, "kvs", len(r.Kvs), 0)
		eq(t, "count", r.Count, 0)
		_, err := c.GetOne(ctx, "kv/missing")
		isErr(t, err, gateway.ErrKeyNotFound)
	})

	t.Run("BinaryKeysAndEmptyValue", func(t *testing.T) {
		key := "bin/\x00\xff\xfe\x80key"
		val := "\x00\x01\xff\xc3\x28 not utf-8"
		must[*gateway.PutResponse](t)(c.Put(ctx, key, val))
		kv := must[*gateway.KeyValue](t)(c.GetOne(ctx, key))
		if !bytes.Equal(kv.Key, []byte(key)) || !bytes.Equal(kv.Value, []byte(val)) {
			t.Fatalf("binary round trip: key %q value %q", kv.Key, kv.Value)
		}
		must[*gateway.PutResponse](t)(c.Put(ctx, "bin/empty", ""))
		kv = must[*gateway.KeyValue](t)(c.GetOne(ctx, "bin/empty"))
		eq(t, "empty value length", len(kv.Value), 0)
		eq(t, "version", kv.Version, 1)
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
		eq(t, "status", ge.Status, 400)
		eq(t, "code", ge.Code, gateway.CodeInvalidArgument)
	})

	t.Run("RangesAndOptions", func(t *testing.T) {
		for i := 0; i < 5; i++ {
			must[*gateway.PutResponse](t)(c.Put(ctx, fmt.Sprintf("r/%d", i), fmt.Sprintf("v%d", 4-i)))
		}
		must[*gateway.PutResponse](t)(c.Put(ctx, "r0", "outside"))
		r := must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/"))
		eqStrings(t, "prefix", keys(r), "r/0", "r/1", "r/2", "r/3", "r/4")
		r = must[*gateway.GetResponse](t)(c.Get(ctx, "r/1", gateway.WithRange("r/3")))
		eqStrings(t, "range", keys(r), "r/1", "r/2")
		r = must[*gateway.GetResponse](t)(c.Get(ctx, "r/3", gateway.WithFromKey()))
		eqStrings(t, "from key", keys(r)[:3], "r/3", "r/4", "r0")
		r = must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithLimit(2)))
		eqStrings(t, "limit", keys(r), "r/0", "r/1")
		eq(t, "more", r.More, true)
		eq(t, "count with limit", r.Count, 5)
		r = must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithSort(gateway.SortByKey, gateway.SortDescend)))
		eqStrings(t, "descend", keys(r), "r/4", "r/3", "r/2", "r/1", "r/0")
		r = must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithSort(gateway.SortByValue, gateway.SortAscend)))
		eqStrings(t, "by value", keys(r), "r/4", "r/3", "r/2", "r/1", "r/0")
		r = must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithSort(gateway.SortByCreateRevision, gateway.SortDescend)))
		eqStrings(t, "by create", keys(r), "r/4", "r/3", "r/2", "r/1", "r/0")
		r = must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithSort(gateway.SortByModRevision, gateway.SortAscend)))
		eqStrings(t, "by mod", keys(r), "r/0", "r/1", "r/2", "r/3", "r/4")
		r = must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithSort(gateway.SortByVersion, gateway.SortAscend)))
		eq(t, "by version count", len(r.Kvs), 5)
		r = must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithKeysOnly()))
		eq(t, "keys only value", len(r.Kvs[0].Value), 0)
		eq(t, "keys only key", string(r.Kvs[0].Key), "r/0")
		r = must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithCountOnly()))
		eq(t, "count only kvs", len(r.Kvs), 0)
		eq(t, "count only", r.Count, 5)
		r = must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithSerializable()))
		eq(t, "serializable", len(r.Kvs), 5)

		all := must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/"))
		mid := all.Kvs[2].ModRevision
		r = must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithMinModRev(mid)))
		eqStrings(t, "min mod", keys(r), "r/2", "r/3", "r/4")
		r = must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithMaxModRev(mid)))
		eqStrings(t, "max mod", keys(r), "r/0", "r/1", "r/2")
		r = must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithMinCreateRev(mid)))
		eqStrings(t, "min create", keys(r), "r/2", "r/3", "r/4")
		r = must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "r/", gateway.WithMaxCreateRev(mid)))
		eqStrings(t, "max create", keys(r), "r/0", "r/1", "r/2")
	})

	t.Run("PrefixWithTrailingFF", func(t *testing.T) {
		// Keys under "p\xff": a naive prefix end ("p\x00" after overflow) would
		// match nothing or everything.
		for _, k := range []string{"p\xff", "p\xff\x00", "p\xff\xff", "p\xff\xffz"} {
			must[*gateway.PutResponse](t)(c.Put(ctx, k, "v"))
		}
		must[*gateway.PutResponse](t)(c.Put(ctx, "q", "outside"))
		must[*gateway.PutResponse](t)(c.Put(ctx, "p\xfe", "outside"))
		r := must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "p\xff"))
		eqStrings(t, "prefix p\\xff", keys(r), "p\xff", "p\xff\x00", "p\xff\xff", "p\xff\xffz")
		r = must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "p\xff\xff"))
		eqStrings(t, "prefix p\\xff\\xff", keys(r), "p\xff\xff", "p\xff\xffz")
		// An all-0xff prefix covers everything from it to the end.
		must[*gateway.PutResponse](t)(c.Put(ctx, "\xff\xff\x01", "v"))
		r = must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "\xff\xff"))
		eqStrings(t, "prefix \\xff\\xff", keys(r), "\xff\xff\x01")
	})

	t.Run("GetAllAndDeletes", func(t *testing.T) {
		all := must[*gateway.GetResponse](t)(c.GetAll(ctx))
		if all.Count < 10 {
			t.Fatalf("GetAll count = %d", all.Count)
		}
		for i := 1; i < len(all.Kvs); i++ {
			if bytes.Compare(all.Kvs[i-1].Key, all.Kvs[i].Key) >= 0 {
				t.Fatalf("GetAll not in key order at %d", i)
			}
		}
		d := must[*gateway.DeleteResponse](t)(c.Delete(ctx, "kv/a", gateway.WithPrevKV()))
		eq(t, "deleted", d.Deleted, 1)
		eq(t, "prev kv", string(d.PrevKvs[0].Value), "2")
		d = must[*gateway.DeleteResponse](t)(c.Delete(ctx, "kv/a"))
		eq(t, "deleted again", d.Deleted, 0)
		d = must[*gateway.DeleteResponse](t)(c.DeleteRange(ctx, "r/0", "r/2"))
		eq(t, "delete range", d.Deleted, 2)
		d = must[*gateway.DeleteResponse](t)(c.DeletePrefix(ctx, "r/"))
		eq(t, "delete prefix", d.Deleted, 3)
		d = must[*gateway.DeleteResponse](t)(c.DeletePrefix(ctx, ""))
		eq(t, "delete everything", d.Deleted, all.Count-1-5)
		eq(t, "empty store", must[*gateway.GetResponse](t)(c.GetAll(ctx)).Count, 0)
	})

	t.Run("CreateReplace", func(t *testing.T) {
		ok := must[bool](t)(c.Create(ctx, "cr/x", "1"))
		eq(t, "first create", ok, true)
		ok = must[bool](t)(c.Create(ctx, "cr/x", "2"))
		eq(t, "second create", ok, false)
		eq(t, "value after creates", string(must[*gateway.KeyValue](t)(c.GetOne(ctx, "cr/x")).Value), "1")
		ok = must[bool](t)(c.Replace(ctx, "cr/x", "wrong", "3"))
		eq(t, "replace with wrong old value", ok, false)
		ok = must[bool](t)(c.Replace(ctx, "cr/x", "1", "3"))
		eq(t, "replace", ok, true)
		eq(t, "value after replace", string(must[*gateway.KeyValue](t)(c.GetOne(ctx, "cr/x")).Value), "3")
		ok = must[bool](t)(c.Replace(ctx, "cr/missing", "", "x"))
		eq(t, "replace of a missing key", ok, false)
		lease := must[*gateway.LeaseGrantResponse](t)(c.Grant(ctx, 60))
		ok = must[bool](t)(c.Create(ctx, "cr/leased", "v", gateway.WithLease(lease.ID)))
		eq(t, "create with lease", ok, true)
		eq(t, "lease attached", must[*gateway.KeyValue](t)(c.GetOne(ctx, "cr/leased")).Lease, lease.ID)
	})

	t.Run("PutLeaseOptions", func(t *testing.T) {
		l1 := must[*gateway.LeaseGrantResponse](t)(c.Grant(ctx, 60))
		l2 := must[*gateway.LeaseGrantResponse](t)(c.Grant(ctx, 60))
		must[*gateway.PutResponse](t)(c.Put(ctx, "pl/k", "v1", gateway.WithLease(l1.ID)))
		must[*gateway.PutResponse](t)(c.Put(ctx, "pl/k", "", gateway.WithLease(l2.ID), gateway.WithIgnoreValue()))
		kv := must[*gateway.KeyValue](t)(c.GetOne(ctx, "pl/k"))
		eq(t, "value kept", string(kv.Value), "v1")
		eq(t, "lease changed", kv.Lease, l2.ID)
		must[*gateway.PutResponse](t)(c.Put(ctx, "pl/k", "v2", gateway.WithIgnoreLease()))
		kv = must[*gateway.KeyValue](t)(c.GetOne(ctx, "pl/k"))
		eq(t, "value changed", string(kv.Value), "v2")
		eq(t, "lease kept", kv.Lease, l2.ID)
		_, err := c.Put(ctx, "pl/k", "v", gateway.WithLease(0x7fff0000))
		isErr(t, err, gateway.ErrLeaseNotFound)
	})

	t.Run("CompactAndRevisions", func(t *testing.T) {
		p1 := must[*gateway.PutResponse](t)(c.Put(ctx, "cmp/k", "1"))
		p2 := must[*gateway.PutResponse](t)(c.Put(ctx, "cmp/k", "2"))
		_, err := c.Get(ctx, "cmp/k", gateway.WithRev(p2.Header.Revision+1000))
		isErr(t, err, gateway.ErrFutureRevision)
		must[*gateway.CompactResponse](t)(c.Compact(ctx, p2.Header.Revision, gateway.WithPhysical()))
		_, err = c.Get(ctx, "cmp/k", gateway.WithRev(p1.Header.Revision))
		isErr(t, err, gateway.ErrCompacted)
		_, err = c.Compact(ctx, p1.Header.Revision)
		isErr(t, err, gateway.ErrCompacted)
		r := must[*gateway.GetResponse](t)(c.Get(ctx, "cmp/k", gateway.WithRev(p2.Header.Revision)))
		eq(t, "value at compact revision", string(r.Kvs[0].Value), "2")
	})
}

func TestRequestSize(t *testing.T) {
	cl := etcdtest.Single(t)
	c := newClient(t, cl)
	ctx := ctxT(t)
	rev := must[*gateway.PutResponse](t)(c.Put(ctx, "size/marker", "x")).Header.Revision

	// Over the limit: refused before sending, nothing written.
	big := strings.Repeat("v", gateway.DefaultMaxRequestBytes)
	_, err := c.Put(ctx, "size/big", big)
	isErr(t, err, gateway.ErrRequestTooLarge)
	var ge *gateway.Error
	errors.As(err, &ge)
	eq(t, "endpoint of a request never sent", ge.Endpoint, "")
	_, err = c.Txn().Then(gateway.OpPut("size/a", big[:gateway.DefaultMaxRequestBytes/2]),
		gateway.OpPut("size/b", big[:gateway.DefaultMaxRequestBytes/2])).Commit(ctx)
	isErr(t, err, gateway.ErrRequestTooLarge)
	now := must[*gateway.GetResponse](t)(c.Get(ctx, "size/marker")).Header.Revision
	eq(t, "revision after refused requests", now, rev)

	// Just under the limit: the server takes it, so the check is not too strict.
	fits := big[:gateway.DefaultMaxRequestBytes-4096]
	must[*gateway.PutResponse](t)(c.Put(ctx, "size/fits", fits))
	eq(t, "stored length", len(must[*gateway.KeyValue](t)(c.GetOne(ctx, "size/fits")).Value), len(fits))

	// With the check off, the server's own refusal comes back typed.
	c2 := newClient(t, cl, func(cfg *gateway.Config) { cfg.MaxRequestBytes = -1 })
	_, err = c2.Put(ctx, "size/big", big)
	isErr(t, err, gateway.ErrRequestTooLarge)
	errors.As(err, &ge)
	if ge.Endpoint == "" || ge.Status != 400 {
		t.Fatalf("server refusal: %+v", ge)
	}
}
