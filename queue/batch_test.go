package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
	"github.com/etcdgw/etcdgw/queue"
)

// TestClaimN: a batch claim takes items in queue order; consumers claiming
// batches at once never share an item; AckAll and NackAll act on each item on
// its own claim.
func TestClaimN(t *testing.T) {
	c := tu.Client(t, endpoints)
	ctx := tu.Ctx(t)
	q := tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(c, "claimn", queue.WithRetryBackoff(0, 0)))
	l := tu.Lease(t, ctx, c, 30)
	var vals []string
	for i := range 10 {
		vals = append(vals, fmt.Sprintf("v%02d", i))
	}
	tu.NoErr(t, q.EnqueueBatch(ctx, vals, 0))
	its := tu.Must[[]*queue.Item](t)(q.ClaimN(ctx, l, 4))
	got := ""
	for _, it := range its {
		got += string(it.Value) + " "
	}
	tu.Eq(t, "a lone consumer's batch", got, "v00 v01 v02 v03 ")
	tu.NoErr(t, q.AckAll(ctx, its[:2]))
	tu.NoErr(t, q.NackAll(ctx, its[2:], queue.WithError(errors.New("try later"))))
	rest := tu.Must[[]*queue.Item](t)(q.ClaimN(ctx, l, queue.MaxClaim))
	tu.Eq(t, "the rest, the nacked first", len(rest), 8)
	tu.Eq(t, "first of the rest", string(rest[0].Value), "v02")
	tu.Eq(t, "its attempt", rest[0].Attempt, 2)
	tu.Eq(t, "its last error", rest[0].LastError, "try later")

	// Items of a lease that ended fail alone in a batch ack.
	other := tu.Lease(t, ctx, c, 30)
	tu.NoErr(t, rest[0].NackAfter(ctx, 0))
	mine := tu.Must[*queue.Item](t)(q.Claim(ctx, other))
	tu.NoErr(t, other.Close(ctx)) // revokes: its claim ends
	batch := append(rest[1:], mine)
	err := q.AckAll(ctx, batch)
	var be *queue.BatchError
	if !errors.Is(err, queue.ErrClaimLost) || !errors.As(err, &be) || len(be.Errs) != len(batch) {
		t.Fatalf("ack of an ended claim in a batch: %v", err)
	}
	for i, e := range be.Errs {
		if (e != nil) != (i == len(batch)-1) {
			t.Fatalf("item %d of the batch: %v", i, e)
		}
	}
	n := tu.Must[queue.Counts](t)(q.Counts(ctx))
	tu.Eq(t, "left: the lost one", n.Waiting+n.Claimed, int64(1))

	if _, err := q.ClaimN(ctx, l, 0); !errors.Is(err, queue.ErrInvalidArgument) {
		t.Fatalf("ClaimN(0): %v", err)
	}
	killAll(t, q, l)
}

// TestClaimNConcurrent: consumers claiming batches while a producer
// enqueues: every item is delivered once and acknowledged once.
func TestClaimNConcurrent(t *testing.T) {
	c := tu.Client(t, endpoints)
	c2 := tu.Client(t, endpoints)
	ctx := tu.Ctx(t)
	q := tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(c, "claimn-conc"))
	q2 := tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(c2, "claimn-conc"))
	const total = 600
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
	)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	errs := make(chan error, 16)
	acks := make(chan int, 16)
	for i := range 6 {
		q, c := q, c
		if i%2 == 1 {
			q, c = q2, c2
		}
		l := tu.Lease(t, ctx, c, 30)
		wg.Go(func() {
			for {
				its, err := q.ClaimN(wctx, l, 1+i*3)
				if err != nil {
					if wctx.Err() == nil {
						errs <- err
					}
					return
				}
				mu.Lock()
				for _, it := range its {
					seen[string(it.Value)]++
				}
				mu.Unlock()
				if err := q.AckAll(ctx, its); err != nil {
					errs <- err
					return
				}
				select {
				case acks <- len(its):
				case <-wctx.Done():
					return
				}
			}
		})
	}
	for i := 0; i < total; i += 50 {
		var vals []string
		for j := i; j < i+50; j++ {
			vals = append(vals, fmt.Sprint(j))
		}
		tu.NoErr(t, q.EnqueueBatch(ctx, vals, 0))
	}
	for acked := 0; acked < total; {
		select {
		case n := <-acks:
			acked += n
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("%d of %d items acknowledged", acked, total)
		}
	}
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	tu.Eq(t, "items delivered", len(seen), total)
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("item %s delivered %d times", v, n)
		}
	}
}

// TestUnique: a unique key admits one item while it waits, is delayed or
// runs; Ack and dead-lettering free it.
func TestUnique(t *testing.T) {
	c := tu.Client(t, endpoints)
	ctx := tu.Ctx(t)
	q := tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(c, "unique", queue.WithMaxAttempts(1), queue.WithRetryBackoff(0, 0)))
	l := tu.Lease(t, ctx, c, 30)
	tu.NoErr(t, q.Enqueue(ctx, "report 7", 0, queue.WithUnique("report-7")))
	tu.Is(t, q.Enqueue(ctx, "report 7 again", 0, queue.WithUnique("report-7")), queue.ErrDuplicate)
	tu.NoErr(t, q.Enqueue(ctx, "report 8", 0, queue.WithUnique("report-8"), queue.WithDelay(time.Hour)))
	tu.Is(t, q.Enqueue(ctx, "report 8 again", 0, queue.WithUnique("report-8")), queue.ErrDuplicate)

	it := tu.Must[*queue.Item](t)(q.Claim(ctx, l))
	tu.Eq(t, "unique key", it.Unique, "report-7")
	tu.Is(t, q.Enqueue(ctx, "while it runs", 0, queue.WithUnique("report-7")), queue.ErrDuplicate)
	tu.NoErr(t, it.Ack(ctx))
	tu.NoErr(t, q.Enqueue(ctx, "report 7, once more", 0, queue.WithUnique("report-7")))

	// Dead-lettered (one attempt allowed): the key is free again.
	it = tu.Must[*queue.Item](t)(q.Claim(ctx, l))
	tu.NoErr(t, it.Nack(ctx, queue.WithError(errors.New("boom"))))
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := q.Claim(short, l) // dead-letters it; report 8 is delayed
	cancel()
	tu.Is(t, err, context.DeadlineExceeded)
	dead, _, err := q.Dead(ctx, "", 10)
	tu.NoErr(t, err)
	if len(dead) != 1 || dead[0].LastError != "boom" {
		t.Fatalf("dead letters: %+v", dead)
	}
	tu.NoErr(t, q.Enqueue(ctx, "report 7 after death", 0, queue.WithUnique("report-7")))

	page, _, err := q.Items(ctx, "", 10)
	tu.NoErr(t, err)
	uniques := map[string]bool{}
	for _, p := range page {
		uniques[p.Unique] = true
	}
	if !uniques["report-7"] || !uniques["report-8"] {
		t.Fatalf("items: %+v", page)
	}
	tu.Is(t, q.EnqueueBatch(ctx, []string{"a", "b"}, 0, queue.WithUnique("x")), queue.ErrInvalidArgument)
	tu.Eq(t, "purged", tu.Must[int](t)(q.Purge(ctx)), 1)
	left := tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "unique/meta/"))
	tu.Eq(t, "metadata after the purge: the two waiting items'", len(left.Kvs), 2)
	killAll(t, q, l)
}

// TestEnqueueTxn: items enqueued in the caller's transaction exist if and
// only if it commits, and take their place after the items before them.
func TestEnqueueTxn(t *testing.T) {
	c := tu.Client(t, endpoints)
	ctx := tu.Ctx(t)
	q := tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(c, "txnq"))
	l := tu.Lease(t, ctx, c, 30)
	tu.NoErr(t, q.Enqueue(ctx, "before", 0))

	// The order row is written and its job enqueued, or neither.
	cmps, ops := tu.Must2[[]gateway.Cmp, []gateway.Op](t)(q.EnqueueTxn(ctx, []string{"ship order 1", "mail order 1"}, 0))
	r := tu.Must[*gateway.TxnResponse](t)(c.Txn().
		If(append(cmps, gateway.CmpCreateRevision("orders/1", gateway.Equal, 0))...).
		Then(append(ops, gateway.OpPut("orders/1", "paid"))...).Commit(ctx))
	tu.Eq(t, "committed", r.Succeeded, true)
	tu.NoErr(t, q.Enqueue(ctx, "after", 0))

	cmps, ops = tu.Must2[[]gateway.Cmp, []gateway.Op](t)(q.EnqueueTxn(ctx, []string{"ship order 1 twice"}, 0))
	r = tu.Must[*gateway.TxnResponse](t)(c.Txn().
		If(append(cmps, gateway.CmpCreateRevision("orders/1", gateway.Equal, 0))...).
		Then(append(ops, gateway.OpPut("orders/1", "paid"))...).Commit(ctx))
	tu.Eq(t, "refused", r.Succeeded, false)

	var got []string
	for range 4 {
		it := tu.Must[*queue.Item](t)(q.Claim(ctx, l))
		got = append(got, string(it.Value))
		tu.NoErr(t, it.Ack(ctx))
	}
	tu.Eq(t, "order", fmt.Sprint(got), "[before ship order 1 mail order 1 after]")
	n := tu.Must[queue.Counts](t)(q.Counts(ctx))
	tu.Eq(t, "nothing from the refused txn", n.Waiting, int64(0))

	// Unique inside the caller's txn: the compare fails while the key is taken.
	tu.NoErr(t, q.Enqueue(ctx, "report", 0, queue.WithUnique("r")))
	cmps, ops = tu.Must2[[]gateway.Cmp, []gateway.Op](t)(q.EnqueueTxn(ctx, []string{"report again"}, 0, queue.WithUnique("r")))
	r = tu.Must[*gateway.TxnResponse](t)(c.Txn().If(cmps...).Then(ops...).Else(gateway.OpGet(q.UniqueKey("r"))).Commit(ctx))
	if r.Succeeded || len(r.Responses[0].Get.Kvs) != 1 {
		t.Fatalf("a duplicate in a txn: %+v", r)
	}
	killAll(t, q, l)
}

// TestWakeups: consumers waiting for items wake about twice per item,
// whatever their number: the first in line, and the next when it leaves.
func TestWakeups(t *testing.T) {
	ctx := tu.Ctx(t)
	for _, idle := range []int{1, 8, 64} {
		t.Run(fmt.Sprint(idle), func(t *testing.T) {
			// Consumers on four clients, as if in four processes.
			var qs []*queue.WorkQueue
			var cs []*gateway.Client
			for range 4 {
				c := tu.Client(t, endpoints)
				cs = append(cs, c)
				qs = append(qs, tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(c, fmt.Sprintf("wakeups-%d", idle))))
			}
			wctx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			claimed := make(chan *queue.Item)
			for i := range idle {
				q, c := qs[i%4], cs[i%4]
				l := tu.Lease(t, ctx, c, 30)
				wg.Go(func() {
					for {
						it, err := q.Claim(wctx, l)
						if err != nil {
							return
						}
						select {
						case claimed <- it:
						case <-wctx.Done():
							return
						}
					}
				})
			}
			waiting := func(n int) {
				tu.WaitFor(t, ctx, "consumers waiting", func() bool {
					w := 0
					for _, c := range cs {
						w += c.Waiters()
					}
					return w >= n
				})
			}
			waiting(idle)
			base := int64(0)
			for _, q := range qs {
				base += q.Wakeups()
			}
			const items = 30
			for i := range items {
				tu.NoErr(t, qs[0].Enqueue(ctx, fmt.Sprint(i), 0))
				it := <-claimed
				// The others wait again (the next in line watching the
				// queue) before the Ack, which must not wake anyone.
				waiting(idle - 1)
				tu.NoErr(t, it.Ack(ctx))
				waiting(idle)
			}
			stop()
			wg.Wait()
			total := -base
			for _, q := range qs {
				total += q.Wakeups()
			}
			per := float64(total) / items
			t.Logf("%d idle consumers: %d wakeups for %d items, %.2f per item", idle, total, items, per)
			if per > 2.2 {
				t.Fatalf("%.2f wakeups per item with %d idle consumers", per, idle)
			}
		})
	}
}
