package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
	"github.com/etcdgw/etcdgw/lease"
	"github.com/etcdgw/etcdgw/queue"
)

// TestWorkQueueClaimOfUnknownOutcome: a claim whose reply is lost may have
// taken effect. Claim must then deliver the item it holds (counted once), or
// claim afresh if it did not take effect; and if it cannot tell before its
// ctx ends, the next Claim under the same lease must. An item is never left
// claimed, unseen, by a consumer whose lease lives on.
func TestWorkQueueClaimOfUnknownOutcome(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	direct := tu.Client(t, cl.Endpoints())
	p := tu.NewLossyProxy(t, cl.Endpoints()[0], `"lease"`)
	c := tu.Client(t, []string{p.URL}, func(cfg *gateway.Config) { cfg.RetryTimeout = 200 * time.Millisecond })

	// Each case: one item, one claim whose connection the proxy cuts. With
	// LoseAll, etcd stays unreachable until the claim's ctx ends.
	claimWith := func(t *testing.T, name string, mode int32) (*queue.WorkQueue, *lease.Lease, *queue.Item, error) {
		tu.NoErr(t, tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(direct, name)).Enqueue(ctx, "job", 0))
		q := tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(c, name))
		l := tu.Lease(t, ctx, direct, 30)
		p.Lose(mode)
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		it, err := q.Claim(short, l)
		tu.Eq(t, "proxy mode after the claim", p.Pending(), tu.PassAll)
		p.Restore()
		return q, l, it, err
	}
	drained := func(t *testing.T, name string, it *queue.Item, attempt int) {
		tu.Eq(t, "value", string(it.Value), "job")
		tu.Eq(t, "attempt", it.Attempt, attempt)
		tu.NoErr(t, it.Ack(ctx))
		for _, sub := range []string{"/items/", "/claims/", "/attempts/"} {
			keysLeft(t, ctx, direct, name+sub, 0)
		}
	}

	t.Run("reply lost", func(t *testing.T) {
		_, _, it, err := claimWith(t, "uo1", tu.LoseReply)
		tu.NoErr(t, err)
		drained(t, "uo1", it, 1)
	})
	t.Run("request lost", func(t *testing.T) {
		_, _, it, err := claimWith(t, "uo2", tu.LoseRequest)
		tu.NoErr(t, err)
		drained(t, "uo2", it, 1)
	})
	t.Run("unreachable until ctx ends", func(t *testing.T) {
		q, l, _, err := claimWith(t, "uo3", tu.LoseAll)
		tu.Is(t, err, gateway.ErrOutcomeUnknown)
		// The claim took effect: another consumer finds nothing to claim.
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err = tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(direct, "uo3")).Claim(short, tu.Lease(t, ctx, direct, 30))
		cancel()
		tu.Is(t, err, context.DeadlineExceeded)
		// Reachable again: the next Claim under l delivers the held item.
		short, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		drained(t, "uo3", tu.Must[*queue.Item](t)(q.Claim(short, l)), 1)
	})
	t.Run("lease ended meanwhile", func(t *testing.T) {
		q, l, _, err := claimWith(t, "uo4", tu.LoseAll)
		tu.Is(t, err, gateway.ErrOutcomeUnknown)
		// The held claim ends with its lease; the item goes to the next
		// consumer, the forgotten claim counted as a delivery.
		tu.NoErr(t, l.Close(ctx))
		drained(t, "uo4", tu.Must[*queue.Item](t)(q.Claim(ctx, tu.Lease(t, ctx, direct, 30))), 2)
	})
}

// TestWorkQueueFinishOfUnknownOutcome: an Ack or Nack whose reply is lost is
// sent again, and the resend finds the claim gone. While the claim's lease
// lives only the first attempt can have removed it: the call succeeds, the job
// done once. When the lease ended meanwhile, which removed the claim cannot be
// told, and the error says the outcome is unknown.
func TestWorkQueueFinishOfUnknownOutcome(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	direct := tu.Client(t, cl.Endpoints())
	// The marker: a finishing transaction deletes the claim key. Each case
	// sets the proxy's mode after its claim, so only the Ack or Nack can
	// match.
	p := tu.NewLossyProxy(t, cl.Endpoints()[0], `"request_delete_range"`)
	c := tu.Client(t, []string{p.URL}, func(cfg *gateway.Config) { cfg.RetryTimeout = 200 * time.Millisecond })

	claimed := func(t *testing.T, name string) (*lease.Lease, *queue.Item) {
		tu.NoErr(t, tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(direct, name)).Enqueue(ctx, "job", 0))
		q := tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(c, name))
		l := tu.Lease(t, ctx, direct, 30)
		return l, tu.Must[*queue.Item](t)(q.Claim(ctx, l))
	}
	t.Run("ack reply lost", func(t *testing.T) {
		_, it := claimed(t, "fo1")
		p.Lose(tu.LoseReply)
		tu.NoErr(t, it.Ack(ctx))
		tu.Eq(t, "proxy mode after the ack", p.Pending(), tu.PassAll)
		for _, sub := range []string{"/items/", "/claims/", "/attempts/"} {
			keysLeft(t, ctx, direct, "fo1"+sub, 0)
		}
	})
	t.Run("nack reply lost", func(t *testing.T) {
		_, it := claimed(t, "fo2")
		p.Lose(tu.LoseReply)
		tu.NoErr(t, it.NackAfter(ctx, 0))
		tu.Eq(t, "proxy mode after the nack", p.Pending(), tu.PassAll)
		q := tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(direct, "fo2"))
		again := tu.Must[*queue.Item](t)(q.Claim(ctx, tu.Lease(t, ctx, direct, 30)))
		tu.Eq(t, "attempt of the next delivery", again.Attempt, 2)
	})
	t.Run("lease ended meanwhile", func(t *testing.T) {
		l, it := claimed(t, "fo3")
		p.Lose(tu.LoseAll)
		acked := make(chan error, 1)
		go func() { acked <- it.Ack(ctx) }()
		// The ack took effect and its reply was cut; every resend is cut
		// until the lease has ended.
		tu.WaitFor(t, ctx, "the ack's reply cut", p.Cutting)
		tu.NoErr(t, l.Close(ctx))
		p.Restore()
		tu.Is(t, <-acked, gateway.ErrOutcomeUnknown)
		keysLeft(t, ctx, direct, "fo3/items/", 0)
	})
}

// keysLeft checks that want keys are left under prefix.
func keysLeft(t *testing.T, ctx context.Context, c *gateway.Client, prefix string, want int64) {
	t.Helper()
	r := tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, prefix, gateway.WithCountOnly()))
	tu.Eq(t, "keys left under "+prefix, r.Count, want)
}
