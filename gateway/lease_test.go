package gateway_test

import (
	"slices"
	"testing"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
)

func TestLease(t *testing.T) {
	cl := etcdtest.Single(t)
	c := newClient(t, cl)
	ctx := ctxT(t)

	g := must[*gateway.LeaseGrantResponse](t)(c.Grant(ctx, 30))
	if g.ID == 0 || g.TTL != 30 {
		t.Fatalf("grant: %+v", g)
	}
	must[*gateway.PutResponse](t)(c.Put(ctx, "l/a", "1", gateway.WithLease(g.ID)))
	must[*gateway.PutResponse](t)(c.Put(ctx, "l/b", "2", gateway.WithLease(g.ID)))

	ttl := must[*gateway.LeaseTimeToLiveResponse](t)(c.TimeToLive(ctx, g.ID, gateway.WithAttachedKeys()))
	eq(t, "granted TTL", ttl.GrantedTTL, 30)
	if ttl.TTL <= 0 || ttl.TTL > 30 {
		t.Fatalf("TTL = %d", ttl.TTL)
	}
	var ks []string
	for _, k := range ttl.Keys {
		ks = append(ks, string(k))
	}
	slices.Sort(ks)
	eqStrings(t, "attached keys", ks, "l/a", "l/b")
	ttl = must[*gateway.LeaseTimeToLiveResponse](t)(c.TimeToLive(ctx, g.ID))
	eq(t, "keys without WithAttachedKeys", len(ttl.Keys), 0)

	ka := must[*gateway.LeaseKeepAliveResponse](t)(c.KeepAliveOnce(ctx, g.ID))
	eq(t, "keepalive ID", ka.ID, g.ID)
	eq(t, "keepalive TTL", ka.TTL, 30)

	ls := must[*gateway.LeaseLeasesResponse](t)(c.Leases(ctx))
	if !slices.ContainsFunc(ls.Leases, func(s gateway.LeaseStatus) bool { return s.ID == g.ID }) {
		t.Fatalf("lease %x not in %v", g.ID, ls.Leases)
	}

	// A chosen ID, and the same ID again.
	const id = 0x1234abcd
	g2 := must[*gateway.LeaseGrantResponse](t)(c.Grant(ctx, 10, gateway.WithLease(id)))
	eq(t, "chosen ID", g2.ID, id)
	_, err := c.Grant(ctx, 10, gateway.WithLease(id))
	isErr(t, err, gateway.ErrLeaseExists)

	must[*gateway.LeaseRevokeResponse](t)(c.Revoke(ctx, g.ID))
	eq(t, "keys deleted with the lease", must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "l/")).Count, 0)

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
	c := newClient(t, cl)
	ctx := ctxT(t)
	g := must[*gateway.LeaseGrantResponse](t)(c.Grant(ctx, 1))
	p := must[*gateway.PutResponse](t)(c.Put(ctx, "exp/k", "v", gateway.WithLease(g.ID)))
	// The expiry is an event: wait for the key's deletion instead of sleeping.
	ev := must[*gateway.Event](t)(c.WatchOnce(ctx, "exp/k", gateway.WithRev(p.Header.Revision+1)))
	eq(t, "event", ev.Type, gateway.EventDelete)
	_, err := c.KeepAliveOnce(ctx, g.ID)
	isErr(t, err, gateway.ErrLeaseNotFound)
}
