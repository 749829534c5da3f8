package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	tu "github.com/etcdgw/etcdgw/internal/testutil"
	"github.com/etcdgw/etcdgw/queue"
)

// TestDelay: an item enqueued with a delay is not delivered before it, and is
// delivered soon after, by the server's clock (a lease's TTL): no client's
// clock takes part, so a consumer whose clock is wrong changes nothing.
func TestDelay(t *testing.T) {
	c := tu.Client(t, endpoints)
	ctx := tu.Ctx(t)
	q := tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(c, "delay"))
	l := tu.Lease(t, ctx, c, 30)
	start := time.Now()
	tu.NoErr(t, q.Enqueue(ctx, "later", 0, queue.WithDelay(3*time.Second)))
	tu.NoErr(t, q.Enqueue(ctx, "now", 5))

	// The delayed item comes first by priority, but is hidden: "now" is next.
	it := tu.Must[*queue.Item](t)(q.Claim(ctx, l))
	tu.Eq(t, "first delivered", string(it.Value), "now")
	tu.NoErr(t, it.Ack(ctx))
	n := tu.Must[queue.Counts](t)(q.Counts(ctx))
	tu.Eq(t, "counts", [3]int64{n.Waiting, n.Delayed, n.Claimed}, [3]int64{0, 1, 0})
	if p := tu.Must[*queue.ItemInfo](t)(q.Peek(ctx)); p != nil {
		t.Fatalf("peek of a delayed item: %+v", p)
	}
	page, _, err := q.Items(ctx, "", 10)
	tu.NoErr(t, err)
	if len(page) != 1 || !page[0].Delayed {
		t.Fatalf("items: %+v", page)
	}

	early, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	_, err = q.Claim(early, l)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("claim before the delay: %v", err)
	}
	it = tu.Must[*queue.Item](t)(q.Claim(ctx, l))
	waited := time.Since(start)
	tu.Eq(t, "delayed item", string(it.Value), "later")
	if waited < 2500*time.Millisecond || waited > 4500*time.Millisecond {
		t.Fatalf("a 3 s delay delivered after %v", waited)
	}
	tu.NoErr(t, it.Ack(ctx))
}

// TestRetryBackoff: Nack hides the item for the backoff of its attempt, which
// doubles; NackAfter(0) gives it back at once.
func TestRetryBackoff(t *testing.T) {
	c := tu.Client(t, endpoints)
	ctx := tu.Ctx(t)
	q := tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(c, "backoff", queue.WithRetryBackoff(2*time.Second, 4*time.Second)))
	l := tu.Lease(t, ctx, c, 30)
	tu.NoErr(t, q.Enqueue(ctx, "flaky", 0))
	it := tu.Must[*queue.Item](t)(q.Claim(ctx, l))

	var gaps []time.Duration
	for attempt := 1; attempt <= 2; attempt++ {
		tu.Eq(t, "attempt", it.Attempt, attempt)
		nacked := time.Now()
		tu.NoErr(t, it.Nack(ctx))
		it = tu.Must[*queue.Item](t)(q.Claim(ctx, l))
		gaps = append(gaps, time.Since(nacked))
	}
	t.Logf("redelivered after %v, then %v", gaps[0], gaps[1])
	// 2 s ±20%, then 4 s ±20%, rounded up to whole seconds of TTL.
	if gaps[0] < 1500*time.Millisecond || gaps[0] > 3800*time.Millisecond ||
		gaps[1] < 3200*time.Millisecond || gaps[1] > 6*time.Second || gaps[1] <= gaps[0] {
		t.Fatalf("backoff schedule: %v", gaps)
	}
	nacked := time.Now()
	tu.NoErr(t, it.NackAfter(ctx, 0))
	it = tu.Must[*queue.Item](t)(q.Claim(ctx, l))
	if d := time.Since(nacked); d > time.Second {
		t.Fatalf("NackAfter(0) redelivered after %v", d)
	}
	tu.Eq(t, "attempt", it.Attempt, 4)
	tu.NoErr(t, it.Ack(ctx))

	if _, err := queue.NewWorkQueue(c, "bad", queue.WithRetryBackoff(time.Second, 0)); !errors.Is(err, queue.ErrInvalidArgument) {
		t.Fatalf("max below initial: %v", err)
	}
}
