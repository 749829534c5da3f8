package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	tu "github.com/etcdgw/etcdgw/internal/testutil"
	"github.com/etcdgw/etcdgw/lease"
	"github.com/etcdgw/etcdgw/queue"
)

// TestInspect: counts, pages of items with their state, peek, and dead
// letters listed, requeued (one and all) and purged.
func TestInspect(t *testing.T) {
	c := tu.Client(t, endpoints)
	ctx := tu.Ctx(t)
	q := tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(c, "inspect", queue.WithMaxAttempts(1), queue.WithRetryBackoff(0, 0)))
	tu.NoErr(t, q.EnqueueBatch(ctx, []string{"b1", "b2", "b3"}, 5))
	tu.NoErr(t, q.EnqueueBatch(ctx, []string{"a1", "a2"}, 1))
	l := tu.Lease(t, ctx, c, 30)

	it := tu.Must[*queue.Item](t)(q.Claim(ctx, l)) // a1: priority 1 first
	tu.Eq(t, "claimed", string(it.Value), "a1")
	n := tu.Must[queue.Counts](t)(q.Counts(ctx))
	tu.Eq(t, "counts", [3]int64{n.Waiting, n.Claimed, n.Dead}, [3]int64{4, 1, 0})

	// Pages of two, in delivery order, with their state.
	var all []queue.ItemInfo
	after := ""
	for pages := 0; ; pages++ {
		page, next, err := q.Items(ctx, after, 2)
		tu.NoErr(t, err)
		all = append(all, page...)
		if next == "" {
			tu.Eq(t, "pages", pages+1, 3)
			break
		}
		after = next
	}
	var vals []string
	for _, i := range all {
		vals = append(vals, string(i.Value))
	}
	tu.Eq(t, "order", len(vals), 5)
	tu.Eq(t, "order", vals[0]+vals[1]+vals[2]+vals[3]+vals[4], "a1a2b1b2b3")
	tu.Eq(t, "claimant", all[0].Claimant, l.ID())
	tu.Eq(t, "attempts", all[0].Attempts, 1)
	tu.Eq(t, "priority", all[0].Priority, uint16(1))
	tu.Eq(t, "waiting", all[1].Claimant, int64(0))
	tu.Eq(t, "peek", string(tu.Must[*queue.ItemInfo](t)(q.Peek(ctx)).Value), "a2")

	// a1 given back after its one allowed delivery: the next claim sends it
	// to the dead letters and takes a2.
	tu.NoErr(t, it.Nack(ctx))
	it = tu.Must[*queue.Item](t)(q.Claim(ctx, l))
	tu.Eq(t, "next", string(it.Value), "a2")
	tu.NoErr(t, it.Ack(ctx))
	dead, next, err := q.Dead(ctx, "", 10)
	tu.NoErr(t, err)
	if len(dead) != 1 || string(dead[0].Value) != "a1" || next != "" {
		t.Fatalf("dead letters %+v, next %q", dead, next)
	}
	n = tu.Must[queue.Counts](t)(q.Counts(ctx))
	tu.Eq(t, "counts", [3]int64{n.Waiting, n.Claimed, n.Dead}, [3]int64{3, 0, 1})

	// Requeued: back at the head (its old place), delivered afresh.
	tu.NoErr(t, q.Requeue(ctx, dead[0].Key))
	if err := q.Requeue(ctx, dead[0].Key); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("requeue twice: %v", err)
	}
	it = tu.Must[*queue.Item](t)(q.Claim(ctx, l))
	tu.Eq(t, "requeued", string(it.Value), "a1")
	tu.Eq(t, "attempt", it.Attempt, 1)
	tu.NoErr(t, it.Ack(ctx))

	// Three dead letters: all requeued, then dead again and purged.
	killAll(t, q, l)
	tu.Eq(t, "dead", tu.Must[queue.Counts](t)(q.Counts(ctx)).Dead, int64(3))
	tu.Eq(t, "requeued", tu.Must[int](t)(q.RequeueAll(ctx)), 3)
	tu.Eq(t, "waiting again", tu.Must[queue.Counts](t)(q.Counts(ctx)).Waiting, int64(3))
	if p := tu.Must[*queue.ItemInfo](t)(q.Peek(ctx)); p == nil || p.Attempts != 0 {
		t.Fatalf("peek after requeue: %+v", p)
	}
	killAll(t, q, l)
	tu.Eq(t, "purged", tu.Must[int](t)(q.Purge(ctx)), 3)
	n = tu.Must[queue.Counts](t)(q.Counts(ctx))
	tu.Eq(t, "empty", [3]int64{n.Waiting, n.Claimed, n.Dead}, [3]int64{0, 0, 0})
	if p := tu.Must[*queue.ItemInfo](t)(q.Peek(ctx)); p != nil {
		t.Fatalf("peek of an empty queue: %+v", p)
	}
}

// killAll claims and gives back every item until each has used up its
// deliveries and gone to the dead letters (a claim then finds none).
func killAll(t *testing.T, q *queue.WorkQueue, l *lease.Lease) {
	t.Helper()
	for {
		short, cancel := context.WithTimeout(tu.Ctx(t), 500*time.Millisecond)
		it, err := q.Claim(short, l)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return
		}
		tu.NoErr(t, err)
		tu.NoErr(t, it.Nack(tu.Ctx(t)))
	}
}
