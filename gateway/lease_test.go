package gateway_test

import (
	"slices"
	"testing"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

func TestLease(t *testing.T) {
	cl := etcdtest.Single(t)
	c := tu.Client(t, cl.Endpoints())
	ctx := tu.Ctx(t)

	g := tu.Must[*gateway.LeaseGrantResponse](t)(c.Grant(ctx, 30))
	if g.ID == 0 || g.TTL != 30 {
		t.Fatalf("grant: %+v", g)
	}
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "l/a", "1", gateway.WithLease(g.ID)))
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "l/b", "2", gateway.WithLease(g.ID)))

	ttl := tu.Must[*gateway.LeaseTimeToLiveResponse](t)(c.TimeToLive(ctx, g.ID, gateway.WithAttachedKeys()))
	tu.Eq(t, "granted TTL", ttl.GrantedTTL, 30)
	if ttl.TTL <= 0 || ttl.TTL > 30 {
		t.Fatalf("TTL = %d", ttl.TTL)
	}
	var ks []string
	for _, k := range ttl.Keys {
		ks = append(ks, string(k))
	}
	slices.Sort(ks)
	eqStrings(t, "attached keys", ks, "l/a", "l/b")
	ttl = tu.Must[*gateway.LeaseTimeToLiveResponse](t)(c.TimeToLive(ctx, g.ID))
	tu.Eq(t, "keys without WithAttachedKeys", len(ttl.Keys), 0)

	ka := tu.Must[*gateway.LeaseKeepAliveResponse](t)(c.KeepAliveOnce(ctx, g.ID))
	tu.Eq(t, "keepalive ID", ka.ID, g.ID)
	tu.Eq(t, "keepalive TTL", ka.TTL, 30)

	ls := tu.Must[*gateway.LeaseLeasesResponse](t)(c.Leases(ctx))
	if !slices.ContainsFunc(ls.Leases, func(s gateway.LeaseStatus) bool { return s.ID == g.ID }) {
		t.Fatalf("lease %x not in %v", g.ID, ls.Leases)
	}

	// A chosen ID, and the same ID again.
	const id = 0x1234abcd
	g2 := tu.Must[*gateway.LeaseGrantResponse](t)(c.Grant(ctx, 10, gateway.WithLease(id)))
	tu.Eq(t, "chosen ID", g2.ID, id)
	_, err := c.Grant(ctx, 10, gateway.WithLease(id))
	isErr(t, err, gateway.ErrLeaseExists)

	tu.Must[*gateway.LeaseRevokeResponse](t)(c.Revoke(ctx, g.ID))
	tu.Eq(t, "keys deleted with the lease", tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "l/")).Count, 0)

	// A lease that is gone, through every call that names it.
	_, err = c.Revoke(ctx, g.ID)
	isErr(t, err, gateway.ErrLeaseNotFound)
	_, err = c.KeepAliveOnce(ctx, g.ID)
	isErr(t, err, gateway.ErrLeaseNotFound)
	_, err = c.TimeToLive(ctx, g.ID)
	isErr(t, err, gateway.ErrLeaseNotFound)
}

func TestLeaseExpires(t *testing.T) {
	cl := etcdtest.Single(t)
	c := tu.Client(t, cl.Endpoints())
	ctx := tu.Ctx(t)
	g := tu.Must[*gateway.LeaseGrantResponse](t)(c.Grant(ctx, 1))
	p := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "exp/k", "v", gateway.WithLease(g.ID)))
	// The expiry is an event: wait for the key's deletion instead of sleeping.
	ev := tu.Must[*gateway.Event](t)(c.WatchOnce(ctx, "exp/k", gateway.WithRev(p.Header.Revision+1)))
	tu.Eq(t, "event", ev.Type, gateway.EventDelete)
	_, err := c.KeepAliveOnce(ctx, g.ID)
	isErr(t, err, gateway.ErrLeaseNotFound)
}
