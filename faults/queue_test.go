package faults_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/lease"
	"github.com/etcdgw/etcdgw/queue"
)

// ackLog is what the consumers learnt of their acks, per item value.
type ackLog struct {
	mu      sync.Mutex
	acked   map[string]int // acks that succeeded
	unknown map[string]int // acks whose outcome stayed unknown
}

func (l *ackLog) add(m map[string]int, v string) {
	l.mu.Lock()
	m[v]++
	l.mu.Unlock()
}

// TestWorkQueue: items go through consumers that die at random (they drop the
// items unacknowledged and their lease is left to expire, as a crashed
// process's would), while members die and networks fail. Some items are
// enqueued with a delay; consumers claim batches of one to four items, give
// some back (Nack, with the retry backoff) and acknowledge the rest in one
// request. When the queue has drained, no item may be lost (every one
// acknowledged, or its acknowledgement's outcome unknown and the item gone)
// and none acknowledged twice.
func TestWorkQueue(t *testing.T) {
	etcd := newCluster(t)
	const consumers = 6
	actors := newActors(t, etcd, consumers)
	nem := newNemesis(t, etcd, actors)
	// Items are enqueued before and during the faults, ten every 100ms. A batch
	// whose enqueue has an unknown outcome is not sent again; its items may or
	// may not exist.
	q, err := queue.NewWorkQueue(etcd.Client(), "wq", wqOptions...)
	if err != nil {
		t.Fatal(err)
	}
	var (
		items, delayed int
		maybe          = map[string]bool{}
	)
	enqueue := func(ctx context.Context, n int) error {
		var batch []string
		for range n {
			batch = append(batch, fmt.Sprintf("item-%06d", items))
			items++
		}
		var opts []queue.EnqueueOption
		if n <= 10 && items%30 == 0 { // one batch in three, hidden for a second or two
			opts = append(opts, queue.WithDelay(time.Duration(1+items%2)*time.Second))
			delayed += n
		}
		err := q.EnqueueBatch(ctx, batch, 0, opts...)
		if err != nil {
			for _, b := range batch {
				maybe[b] = true
			}
		}
		return err
	}
	setup, setupCancel := context.WithTimeout(context.Background(), time.Minute)
	defer setupCancel()
	for range 3 {
		if err := enqueue(setup, 100); err != nil {
			t.Fatal(err)
		}
	}

	log := &ackLog{acked: map[string]int{}, unknown: map[string]int{}}
	var deaths, claims, nacks atomic.Int64
	consume, stopConsumers := context.WithCancel(context.Background())
	defer stopConsumers()
	ctx, cancel := context.WithTimeout(context.Background(), runFor())
	defer cancel()
	var wg sync.WaitGroup
	for _, a := range actors {
		wq, err := queue.NewWorkQueue(a.c, "wq", wqOptions...)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(a.id), 11))
			for consume.Err() == nil {
				l, err := a.newLease(consume)
				if err != nil {
					return
				}
				consumeWith(consume, ctx, a, wq, l, rng, log, &deaths, &claims, &nacks)
			}
		})
	}

	nem.start(ctx)
	for sleep(ctx, 100*time.Millisecond) {
		callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = enqueue(callCtx, 10)
		cancel()
	}
	faults := nem.stop()

	// The faults are over: let the consumers drain the queue.
	c := etcd.Client()
	drainCtx, drainCancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer drainCancel()
	for {
		r, err := c.GetPrefix(drainCtx, "wq/items/", gateway.WithCountOnly())
		if err == nil && r.Count == 0 {
			break
		}
		if drainCtx.Err() != nil {
			t.Errorf("the queue did not drain: %v, %v items left", err, r)
			// Which consumers (leases) hold what is left, to tell a stuck
			// consumer from a claim nobody knows of.
			if cr, err := c.GetPrefix(context.Background(), "wq/claims/"); err == nil {
				for _, kv := range cr.Kvs {
					t.Logf("claim %s under lease %x, since revision %d", kv.Key, kv.Lease, kv.CreateRevision)
				}
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	stopConsumers()
	wg.Wait()

	// The checks get a context of their own: a queue that did not drain has
	// used up drainCtx, and what is left must still be checked.
	checkCtx, checkCancel := context.WithTimeout(context.Background(), time.Minute)
	defer checkCancel()
	v := &violations{t: t}
	dead, err := q.DeadLetters(checkCtx)
	if err != nil {
		t.Fatal(err)
	}
	deadSet := map[string]bool{}
	for _, d := range dead {
		deadSet[string(d)] = true
	}
	unknownGone := 0
	for i := 0; i < items; i++ {
		val := fmt.Sprintf("item-%06d", i)
		switch n := log.acked[val]; {
		case n > 1:
			v.add("%s acknowledged %d times", val, n)
		case n == 1:
		case log.unknown[val] > 0:
			unknownGone++ // gone from the queue: the ack whose outcome was unknown took effect
		case deadSet[val], maybe[val]:
		default:
			v.add("%s lost: never acknowledged, not dead-lettered", val)
		}
	}
	if r, err := c.GetPrefix(checkCtx, "wq/claims/", gateway.WithCountOnly()); err != nil || r.Count != 0 {
		t.Errorf("claims left after draining: %v %v", r, err)
	}
	// Claims are exclusive: a claim key is only ever created, never put over
	// another consumer's claim.
	for _, ev := range readHistory(checkCtx, t, c, "wq/claims/") {
		if ev.Type == gateway.EventPut && ev.Kv.Version != 1 {
			v.add("claim %s put at revision %d over a claim that held (version %d): one item claimed by two",
				ev.Kv.Key, ev.Kv.ModRevision, ev.Kv.Version)
		}
	}
	faults["consumer-death"] = int(deaths.Load())
	t.Logf("%d items (%d delayed, %d of unknown enqueue), %d deliveries, %d nacks, %d consumer deaths, %d dead letters, %d acks of unknown outcome that took effect",
		items, delayed, len(maybe), claims.Load(), nacks.Load(), deaths.Load(), len(dead), unknownGone)
	if deaths.Load() == 0 || nacks.Load() == 0 || delayed == 0 {
		t.Error("no consumer died, no item was given back or none delayed: the workload did not run")
	}
	record(t, row{workload: "work queue", faults: faults, ops: int(claims.Load()), violations: v.report(),
		catches: "an item lost, an item acknowledged twice (an Ack after the claim ended), one item claimed by two"})
}

// wqOptions: deliveries are never dead-lettered in the workload, and a Nack
// hides an item for about a second (etcd's shortest TTL).
var wqOptions = []queue.WorkOption{queue.WithMaxAttempts(1000), queue.WithRetryBackoff(500*time.Millisecond, time.Second)}

// consumeWith claims batches of one to four items under l and acknowledges
// them, or gives one in eight back, until the lease is lost, ctx ends, or the
// consumer "dies": then it drops its items and stops renewing the lease
// without revoking it, so its claims end only when the lease expires. While
// the faults go on (phase), one batch in ten takes longer than the lease's TTL
// to process; the consumer then finishes it, as it does every batch, and
// stops at each step while its actor is frozen (a zombie acknowledges what it
// was working on when it thaws).
func consumeWith(ctx, phase context.Context, a *actor, wq *queue.WorkQueue, l *lease.Lease, rng *rand.Rand, log *ackLog, deaths, claims, nacks *atomic.Int64) {
	for ctx.Err() == nil && l.Err() == nil {
		a.step()
		claimCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		its, err := wq.ClaimN(claimCtx, l, 1+rng.IntN(4))
		cancel()
		if err != nil {
			continue
		}
		claims.Add(int64(len(its)))
		if rng.IntN(40) == 0 {
			deaths.Add(1)
			l.Orphan()
			return
		}
		a.busy.Store(&busyWith{kind: "consumer", key: its[0].Key})
		if phase.Err() == nil && rng.IntN(10) == 0 {
			sleep(phase, time.Duration(1200+rng.IntN(800))*ttl*time.Millisecond)
		}
		a.step()
		var ack, nack []*queue.Item
		for _, it := range its {
			if rng.IntN(8) == 0 {
				nack = append(nack, it)
			} else {
				ack = append(ack, it)
			}
		}
		if len(nack) > 0 {
			nacks.Add(int64(len(nack)))
			finishAll(ctx, func(ctx context.Context, its []*queue.Item) error {
				return wq.NackAll(ctx, its, queue.WithError(errors.New("given back by the workload")))
			}, nack)
		}
		for it, res := range finishAll(ctx, wq.AckAll, ack) {
			switch res {
			case acked:
				// Acknowledged under this claim: by this call, or by an
				// earlier attempt of it while the claim's lease lived.
				log.add(log.acked, string(it.Value))
			case lost:
				// Not acknowledged: the claim had ended; the item comes back.
			case maybeDone:
				// An attempt of unknown outcome may have been the one.
				log.add(log.unknown, string(it.Value))
			}
		}
		a.busy.Store(nil)
	}
	closeCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_ = l.Close(closeCtx)
	cancel()
}

type outcome int

const (
	acked outcome = iota
	lost
	maybeDone
)

// finishAll acknowledges (or gives back) its with f, one request for all,
// and tries again those whose outcome is not known: each is fenced by its
// claim, and a claim that holds on would hold the item for as long as the
// lease lives, so a consumer must try again, as it should. It returns each
// item's outcome.
func finishAll(ctx context.Context, f func(context.Context, []*queue.Item) error, its []*queue.Item) map[*queue.Item]outcome {
	out := make(map[*queue.Item]outcome, len(its))
	for len(its) > 0 {
		callCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := f(callCtx, its)
		cancel()
		errs := make([]error, len(its))
		var be *queue.BatchError
		switch {
		case errors.As(err, &be):
			errs = be.Errs
		default:
			for i := range errs {
				errs[i] = err
			}
		}
		var again []*queue.Item
		for i, it := range its {
			switch prev, e := out[it], errs[i]; {
			case e == nil:
				// Done under this claim (AckAll tells its own earlier
				// attempt from the claim's end while the lease lives).
				out[it] = acked
			case errors.Is(e, queue.ErrClaimLost) && prev != maybeDone:
				out[it] = lost
			case errors.Is(e, queue.ErrClaimLost):
				out[it] = maybeDone
			default:
				out[it] = maybeDone
				again = append(again, it)
			}
		}
		if len(again) == 0 || !sleep(ctx, 100*time.Millisecond) {
			break
		}
		its = again
	}
	return out
}
