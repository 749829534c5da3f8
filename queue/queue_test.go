package queue_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
	"github.com/etcdgw/etcdgw/lease"
	"github.com/etcdgw/etcdgw/queue"
)

// endpoints are the client URLs of the member the examples talk to; TestMain
// starts it. In your program they are your etcd members' client URLs.
var endpoints []string

func TestMain(m *testing.M) { goleak.VerifyTestMain(tu.WithServer(m, &endpoints)) }

func TestQueueOrder(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	q := queue.New(c, "q")
	tu.NoErr(t, q.Enqueue(ctx, "a"))
	tu.NoErr(t, q.Enqueue(ctx, "b"))
	tu.NoErr(t, q.EnqueueBatch(ctx, []string{"c", "d", "e", "f", "g", "h"}))
	tu.NoErr(t, q.Enqueue(ctx, "i"))
	var got string
	for i := 0; i < 9; i++ {
		got += string(tu.Must[[]byte](t)(q.Dequeue(ctx)))
	}
	tu.Eq(t, "order", got, "abcdefghi")

	// Dequeue waits for an item, until its ctx ends.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err := q.Dequeue(short)
	cancel()
	tu.Is(t, err, context.DeadlineExceeded)
	done := make(chan []byte, 1)
	go func() { v, _ := q.Dequeue(ctx); done <- v }()
	tu.NoErr(t, q.Enqueue(ctx, "late"))
	tu.Eq(t, "waited for", string(<-done), "late")

	pq := queue.NewPriorityQueue(c, "pq")
	for _, it := range []struct {
		v string
		p uint16
	}{{"x", 5}, {"y", 1}, {"z", 5}, {"w", 1}, {"v", 0}} {
		tu.NoErr(t, pq.Enqueue(ctx, it.v, it.p))
	}
	got = ""
	for i := 0; i < 5; i++ {
		got += string(tu.Must[[]byte](t)(pq.Dequeue(ctx)))
	}
	tu.Eq(t, "priority order", got, "vywxz")
	for _, p := range []string{"q/items/", "pq/items/"} {
		tu.Eq(t, "items left under "+p, tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, p, gateway.WithCountOnly())).Count, int64(0))
	}
}

// TestQueueEachItemOnce: concurrent consumers of a FIFO queue get every item
// exactly once.
func TestQueueEachItemOnce(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	q := queue.New(c, "once")
	const n = 300
	for i := 0; i < n; i += 100 {
		var batch []string
		for j := i; j < i+100; j++ {
			batch = append(batch, fmt.Sprint(j))
		}
		tu.NoErr(t, q.EnqueueBatch(ctx, batch))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	var taken atomic.Int64
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for taken.Add(1) <= n {
				v, err := q.Dequeue(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[string(v)]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		if seen[fmt.Sprint(i)] != 1 {
			t.Fatalf("item %d delivered %d times", i, seen[fmt.Sprint(i)])
		}
	}
}

func TestWorkQueueNackAndDeadLetters(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	q := tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(c, "wq", queue.WithMaxAttempts(2), queue.WithRetryBackoff(0, 0)))
	l := tu.Lease(t, ctx, c, 30)
	tu.NoErr(t, q.Enqueue(ctx, "flaky", 0))
	tu.NoErr(t, q.Enqueue(ctx, "fine", 0))

	it := tu.Must[*queue.Item](t)(q.Claim(ctx, l))
	tu.Eq(t, "first", string(it.Value), "flaky")
	tu.Eq(t, "attempt", it.Attempt, 1)
	// Claims are exclusive: the next claim gets the other item.
	it2 := tu.Must[*queue.Item](t)(q.Claim(ctx, tu.Lease(t, ctx, c, 30)))
	tu.Eq(t, "second consumer's", string(it2.Value), "fine")
	tu.NoErr(t, it2.Ack(ctx))
	tu.Is(t, it2.Ack(ctx), queue.ErrClaimLost)

	tu.NoErr(t, it.Nack(ctx))
	it = tu.Must[*queue.Item](t)(q.Claim(ctx, l))
	tu.Eq(t, "redelivered", string(it.Value), "flaky")
	tu.Eq(t, "attempt", it.Attempt, 2)
	tu.NoErr(t, it.Nack(ctx))
	// A third delivery would exceed the limit: dead letter, and nothing left.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := q.Claim(short, l)
	cancel()
	tu.Is(t, err, context.DeadlineExceeded)
	dead := tu.Must[[][]byte](t)(q.DeadLetters(ctx))
	if len(dead) != 1 || string(dead[0]) != "flaky" {
		t.Fatalf("dead letters %q", dead)
	}

	// A consumer that dies: its claim ends with its lease, the item comes back.
	tu.NoErr(t, q.Enqueue(ctx, "orphan", 0))
	dying := tu.Must[*lease.Lease](t)(lease.New(ctx, c, lease.WithTTL(30)))
	it = tu.Must[*queue.Item](t)(q.Claim(ctx, dying))
	tu.NoErr(t, dying.Close(ctx)) // revoked, as expiry would
	tu.Is(t, it.Ack(ctx), queue.ErrClaimLost)
	again := tu.Must[*queue.Item](t)(q.Claim(ctx, l))
	tu.Eq(t, "redelivered after a death", string(again.Value), "orphan")
	tu.NoErr(t, again.Ack(ctx))
}

// TestWorkQueueKilledConsumers: 10,000 items through 8 consumers that die at
// random in the middle of an item (their lease revoked, as its expiry would
// do; a new consumer takes the dead one's place). In the end every item is
// acknowledged exactly once, and only items whose consumer died were
// delivered more than once.
func TestWorkQueueKilledConsumers(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute) // bounded: ends by itself
	defer cancel()
	c := tu.Client(t, cl.Endpoints())
	q := tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(c, "wk", queue.WithMaxAttempts(1000)))
	const n, consumers = 10000, 8
	for i := 0; i < n; i += 100 {
		batch := make([]string, 0, 100)
		for j := i; j < i+100; j++ {
			batch = append(batch, fmt.Sprint(j))
		}
		tu.NoErr(t, q.EnqueueBatch(ctx, batch, uint16(i/100%3)))
	}
	var (
		mu         sync.Mutex
		acks       = make(map[string]int, n)
		deliveries = make(map[string]int, n)
		diedOn     = map[string]bool{}
		acked      atomic.Int64
		kills      atomic.Int64
	)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < consumers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cc := tu.Client(t, cl.Endpoints())
			for wctx.Err() == nil {
				l, err := lease.New(wctx, cc, lease.WithTTL(30))
				if err != nil {
					if wctx.Err() == nil {
						t.Error(err)
					}
					return
				}
				for wctx.Err() == nil {
					it, err := q.Claim(wctx, l)
					if err != nil {
						if wctx.Err() == nil {
							t.Error(err)
						}
						break
					}
					v := string(it.Value)
					mu.Lock()
					deliveries[v]++
					mu.Unlock()
					if rand.IntN(200) == 0 { // dies mid-item
						mu.Lock()
						diedOn[v] = true
						mu.Unlock()
						kills.Add(1)
						break
					}
					if err := it.Ack(wctx); err != nil {
						if wctx.Err() == nil {
							t.Error(err)
						}
						break
					}
					mu.Lock()
					acks[v]++
					mu.Unlock()
					if acked.Add(1) == n {
						stop()
					}
				}
				cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = l.Close(cctx) // a dead consumer's lease ends; so does a finished one's
				cancel()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("only %d of %d items acknowledged in time", acked.Load(), n)
	}
	redelivered := 0
	for i := 0; i < n; i++ {
		v := fmt.Sprint(i)
		if acks[v] != 1 {
			t.Fatalf("item %s acknowledged %d times", v, acks[v])
		}
		if deliveries[v] > 1 {
			redelivered++
			if !diedOn[v] {
				t.Fatalf("item %s delivered %d times, but no consumer died on it", v, deliveries[v])
			}
		}
	}
	for _, p := range []string{"wk/items/", "wk/claims/", "wk/attempts/", "wk/dead/"} {
		tu.Eq(t, "keys left under "+p, tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, p, gateway.WithCountOnly())).Count, int64(0))
	}
	t.Logf("%d items, %d consumers, %d consumer deaths, %d items delivered again: %.0f items/s",
		n, consumers, kills.Load(), redelivered, float64(n)/elapsed.Seconds())
}

// TestWorkQueueOptions: an option out of range is refused with a typed error,
// not taken to dead-letter every item.
func TestWorkQueueOptions(t *testing.T) {
	c := tu.Client(t, endpoints)
	for _, n := range []int{0, -1} {
		_, err := queue.NewWorkQueue(c, "wq-opts", queue.WithMaxAttempts(n))
		tu.Is(t, err, queue.ErrInvalidArgument)
	}
	tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(c, "wq-opts", queue.WithMaxAttempts(1)))
}

// TestWorkQueueNamespaced: a work queue through a namespace view keeps its
// keys there, and one of the same name in another namespace is another queue.
func TestWorkQueueNamespaced(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	raw := tu.Client(t, cl.Endpoints())
	a, b := raw.WithNamespace("ns-a/"), raw.WithNamespace("ns-b/")
	qa := tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(a, "jobs"))
	qb := tu.Must[*queue.WorkQueue](t)(queue.NewWorkQueue(b, "jobs"))
	tu.NoErr(t, qa.Enqueue(ctx, "for a", 0))
	tu.NoErr(t, qb.Enqueue(ctx, "for b", 0))
	it := tu.Must[*queue.Item](t)(qa.Claim(ctx, tu.Lease(t, ctx, a, 30)))
	tu.Eq(t, "a's item", string(it.Value), "for a")
	if len(tu.Must[*gateway.GetResponse](t)(raw.GetPrefix(ctx, "ns-a/jobs/claims/")).Kvs) != 1 {
		t.Fatal("the claim is not under a's namespace")
	}
	tu.NoErr(t, it.Ack(ctx))
	it = tu.Must[*queue.Item](t)(qb.Claim(ctx, tu.Lease(t, ctx, b, 30)))
	tu.Eq(t, "b's item", string(it.Value), "for b")
	tu.NoErr(t, it.Ack(ctx))
	tu.Eq(t, "keys left", tu.Must[*gateway.GetResponse](t)(raw.GetPrefix(ctx, "ns-", gateway.WithCountOnly())).Count, int64(2)) // the two sequences
}
