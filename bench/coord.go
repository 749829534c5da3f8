package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	recipe "go.etcd.io/etcd/client/v3/experimental/recipes"

	"github.com/etcdgw/etcdgw/election"
	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	"github.com/etcdgw/etcdgw/lease"
	"github.com/etcdgw/etcdgw/mutex"
	"github.com/etcdgw/etcdgw/queue"
)

// pair is one figure for both clients.
type pair struct{ ours, theirs sample }

// clients returns one client of each kind on cl, and what closes both. tlsCfg
// is for members that serve https (nil: plain HTTP).
func clients(cl *etcdtest.Cluster, tlsCfg *tls.Config) (*gateway.Client, *clientv3.Client, func(), error) {
	gc, err := gateway.New(gateway.Config{Endpoints: cl.Endpoints(), TLS: tlsCfg})
	if err != nil {
		return nil, nil, nil, err
	}
	vc, err := clientv3.New(clientv3.Config{Endpoints: cl.Endpoints(), DialTimeout: 5 * time.Second, TLS: tlsCfg})
	if err != nil {
		gc.Close()
		return nil, nil, nil, err
	}
	return gc, vc, func() { vc.Close(); gc.Close() }, nil
}

// withLeases makes n of etcdgw's primitives, each through a lease of its own,
// and returns what closes the leases.
func withLeases[T any](ctx context.Context, c *gateway.Client, n int, ttl int64, mk func(*lease.Lease) T) ([]T, func(), error) {
	var out []T
	var ls []*lease.Lease
	done := func() {
		for _, l := range ls {
			l.Close(context.Background())
		}
	}
	for range n {
		l, err := lease.New(ctx, c, lease.WithTTL(ttl))
		if err != nil {
			done()
			return nil, nil, err
		}
		ls = append(ls, l)
		out = append(out, mk(l))
	}
	return out, done, nil
}

// withSessions is withLeases for clientv3: each primitive has a session.
func withSessions[T any](c *clientv3.Client, n, ttl int, mk func(*concurrency.Session) T) ([]T, func(), error) {
	var out []T
	var ss []*concurrency.Session
	done := func() {
		for _, s := range ss {
			s.Close()
		}
	}
	for range n {
		s, err := concurrency.NewSession(c, concurrency.WithTTL(ttl))
		if err != nil {
			done()
			return nil, nil, err
		}
		ss = append(ss, s)
		out = append(out, mk(s))
	}
	return out, done, nil
}

// locker is what both mutexes offer.
type locker interface {
	Lock(context.Context) error
	Unlock(context.Context) error
}

const contenders = 32

// lockSection: 32 contenders, each with its own lease (session), loop
// Lock→Unlock on one name; hand-offs per second and new TCP connections per
// hand-off, from the kernel's count. tlsCfg is for a member that serves https
// (nil: plain HTTP).
func lockSection(ctx context.Context, cfg config, cl *etcdtest.Cluster, tlsCfg *tls.Config) (pair, error) {
	pid := cl.Members[0].PID()
	gc, vc, closeClients, err := clients(cl, tlsCfg)
	if err != nil {
		return pair{}, err
	}
	defer closeClients()
	var ours, theirs []sample
	for r := 0; r < cfg.rounds; r++ {
		name := fmt.Sprintf("bench-lock-%d", r)
		ls, done, err := withLeases(ctx, gc, contenders, 60, func(l *lease.Lease) locker { return mutex.New(l, name) })
		if err != nil {
			return pair{}, err
		}
		defer done()
		s, err := handoffs(ctx, ls, cfg.dur, pid)
		if err != nil {
			return pair{}, fmt.Errorf("etcdgw lock: %w", err)
		}
		ours = append(ours, s)
		ls, done, err = withSessions(vc, contenders, 60, func(s *concurrency.Session) locker { return concurrency.NewMutex(s, "v3-"+name) })
		if err != nil {
			return pair{}, err
		}
		defer done()
		s, err = handoffs(ctx, ls, cfg.dur, pid)
		if err != nil {
			return pair{}, fmt.Errorf("clientv3 lock: %w", err)
		}
		theirs = append(theirs, s)
	}
	p := pair{median(ours, sample.rate), median(theirs, sample.rate)}
	say("lock x%d (%s): etcdgw %.0f hand-offs/s (%.3f conns each), clientv3 %.0f/s (%.3f)", contenders,
		cl.Endpoints()[0], p.ours.rate(), perHandoff(p.ours), p.theirs.rate(), perHandoff(p.theirs))
	return p, nil
}

func perHandoff(s sample) float64 {
	if s.ops == 0 {
		return 0
	}
	return float64(s.conns) / float64(s.ops)
}

func handoffs(ctx context.Context, ls []locker, d time.Duration, pid int) (sample, error) {
	var ops atomic.Int64
	var lat latencies
	var wg sync.WaitGroup
	errs := make(chan error, len(ls))
	end := time.Now().Add(d)
	m := startMeter(pid)
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(end) {
				t0 := time.Now()
				if err := l.Lock(ctx); err != nil {
					errs <- err
					return
				}
				mine = append(mine, time.Since(t0))
				ops.Add(1)
				if err := l.Unlock(ctx); err != nil {
					errs <- err
					return
				}
			}
			lat.add(mine, 0)
		}()
	}
	wg.Wait()
	s := m.stop(ops.Load(), lat.all)
	select {
	case err := <-errs:
		return s, err
	default:
	}
	return s, nil
}

// campaigner is what both elections offer.
type campaigner interface {
	Campaign(ctx context.Context, val string) error
	Resign(ctx context.Context) error
}

// electionSection: three candidates on a three-member cluster; the leader
// resigns and the time until the next candidate's Campaign returns is the
// failover. The sample's latencies are the failovers.
func electionSection(ctx context.Context, cfg config, cl *etcdtest.Cluster) (pair, error) {
	gc, vc, closeClients, err := clients(cl, nil)
	if err != nil {
		return pair{}, err
	}
	defer closeClients()
	const candidates, failovers = 3, 10
	var ours, theirs []sample
	for r := 0; r < cfg.rounds; r++ {
		name := fmt.Sprintf("bench-elect-%d", r)
		cs, done, err := withLeases(ctx, gc, candidates, 10, func(l *lease.Lease) campaigner { return election.New(l, name) })
		if err != nil {
			return pair{}, err
		}
		defer done()
		s, err := failover(ctx, cs, failovers)
		if err != nil {
			return pair{}, fmt.Errorf("etcdgw election: %w", err)
		}
		ours = append(ours, s)
		cs, done, err = withSessions(vc, candidates, 10, func(s *concurrency.Session) campaigner { return concurrency.NewElection(s, "v3-"+name) })
		if err != nil {
			return pair{}, err
		}
		defer done()
		s, err = failover(ctx, cs, failovers)
		if err != nil {
			return pair{}, fmt.Errorf("clientv3 election: %w", err)
		}
		theirs = append(theirs, s)
	}
	p50 := func(s sample) float64 { return float64(s.pct(.5)) }
	p := pair{median(ours, p50), median(theirs, p50)}
	say("failover: etcdgw p50 %v, clientv3 p50 %v", p.ours.pct(.5), p.theirs.pct(.5))
	return p, nil
}

// failover runs n hand-overs of leadership among cs: every candidate
// campaigns; whoever wins resigns after the previous failover was timed.
func failover(ctx context.Context, cs []campaigner, n int) (sample, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	won := make(chan int, len(cs))
	errs := make(chan error, len(cs))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	campaign := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := cs[i].Campaign(ctx, fmt.Sprint(i)); err != nil {
				if ctx.Err() == nil {
					errs <- err
				}
				return
			}
			won <- i
		}()
	}
	for i := range cs {
		campaign(i)
	}
	var lat []time.Duration
	leader := -1
	select {
	case leader = <-won:
	case err := <-errs:
		return sample{}, err
	}
	for len(lat) < n {
		t0 := time.Now()
		if err := cs[leader].Resign(ctx); err != nil {
			return sample{}, err
		}
		select {
		case next := <-won:
			lat = append(lat, time.Since(t0))
			campaign(leader) // the old leader queues again
			leader = next
		case err := <-errs:
			return sample{}, err
		case <-time.After(30 * time.Second):
			return sample{}, errors.New("no new leader within 30 s")
		}
	}
	return sample{ops: int64(len(lat)), lat: lat}, nil
}

// queueRow is the work-queue figure on one server: ours is Claim and Ack one
// item at a time, batched ClaimN and AckAll.
type queueRow struct {
	servers int
	pair
	batched sample
	wakeups []float64 // per item, with each of idleConsumers waiting (one member only)
}

const (
	consumers = 8
	items     = 2000
	claimN    = 16 // the batch of the batched rows
)

// idleConsumers are the numbers of idle consumers the wakeup count is taken with.
var idleConsumers = []int{1, 8, 64}

// queueSection: 8 consumers claim and ack pre-enqueued items; items per
// second, on one member and on three. clientv3's recipes.Queue dequeues at
// most once (an item is gone when taken, acked or not), so it is a floor to
// compare with, not the same guarantee.
func queueSection(ctx context.Context, cfg config, single, three *etcdtest.Cluster) ([]queueRow, error) {
	var rows []queueRow
	for _, cl := range []*etcdtest.Cluster{single, three} {
		gc, vc, closeClients, err := clients(cl, nil)
		if err != nil {
			return nil, err
		}
		defer closeClients()
		var ours, batched, theirs []sample
		for r := 0; r < cfg.rounds; r++ {
			name := fmt.Sprintf("bench-q-%d-%d", len(cl.Members), r)
			s, err := workQueue(ctx, gc, name, 1)
			if err != nil {
				return nil, fmt.Errorf("etcdgw queue: %w", err)
			}
			ours = append(ours, s)
			if s, err = workQueue(ctx, gc, name+"-n", claimN); err != nil {
				return nil, fmt.Errorf("etcdgw queue, batched: %w", err)
			}
			batched = append(batched, s)
			s, err = recipeQueue(ctx, vc, name)
			if err != nil {
				return nil, fmt.Errorf("clientv3 queue: %w", err)
			}
			theirs = append(theirs, s)
		}
		row := queueRow{servers: len(cl.Members), pair: pair{median(ours, sample.rate), median(theirs, sample.rate)},
			batched: median(batched, sample.rate)}
		say("queue on %d: etcdgw %.0f items/s (ClaimN(%d) %.0f), clientv3 recipes.Queue %.0f items/s", row.servers,
			row.ours.rate(), claimN, row.batched.rate(), row.theirs.rate())
		if len(cl.Members) == 1 {
			for _, idle := range idleConsumers {
				w, err := wakeups(ctx, cl, idle)
				if err != nil {
					return nil, fmt.Errorf("etcdgw queue wakeups: %w", err)
				}
				say("queue wakeups with %d idle consumers: %.2f per item", idle, w)
				row.wakeups = append(row.wakeups, w)
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func batch() []string {
	vals := make([]string, 100)
	for i := range vals {
		vals[i] = strings.Repeat("i", 64)
	}
	return vals
}

// workQueue: consumers claim n items at a time (Claim and Ack for 1, ClaimN
// and AckAll for more), and acknowledge them at once.
func workQueue(ctx context.Context, c *gateway.Client, name string, n int) (sample, error) {
	q, err := queue.NewWorkQueue(c, name)
	if err != nil {
		return sample{}, err
	}
	for i := 0; i < items/100; i++ {
		if err := q.EnqueueBatch(ctx, batch(), 0); err != nil {
			return sample{}, err
		}
	}
	return consume(ctx, func(ctx context.Context) (func() error, error) {
		l, err := lease.New(ctx, c, lease.WithTTL(30))
		if err != nil {
			return nil, err
		}
		return func() error {
			defer l.Close(context.Background())
			for {
				if n == 1 {
					it, err := q.Claim(ctx, l)
					if err != nil {
						return err
					}
					if err := it.Ack(ctx); err != nil {
						return err
					}
					if counted(1) {
						return nil
					}
					continue
				}
				its, err := q.ClaimN(ctx, l, n)
				if err != nil {
					return err
				}
				if err := q.AckAll(ctx, its); err != nil {
					return err
				}
				if counted(len(its)) {
					return nil
				}
			}
		}, nil
	})
}

func recipeQueue(ctx context.Context, c *clientv3.Client, name string) (sample, error) {
	q := recipe.NewQueue(c, "v3-"+name)
	// Dequeue takes no context: one extra item per consumer lets each come
	// back once the count is reached.
	for i := 0; i < items+consumers; i++ {
		if err := q.Enqueue(strings.Repeat("i", 64)); err != nil {
			return sample{}, err
		}
	}
	return consume(ctx, func(ctx context.Context) (func() error, error) {
		return func() error {
			for {
				if _, err := q.Dequeue(); err != nil {
					return err
				}
				if counted(1) {
					return nil
				}
			}
		}, nil
	})
}

// done counts the items consumed in the current consume run.
var done atomic.Int64

// counted counts n items and reports whether every item is done.
func counted(n int) bool { return done.Add(int64(n)) >= items }

// consume starts the consumers start makes, runs them until every item is done,
// and times them.
func consume(ctx context.Context, start func(context.Context) (func() error, error)) (sample, error) {
	done.Store(0)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var loops []func() error
	for i := 0; i < consumers; i++ {
		f, err := start(ctx)
		if err != nil {
			return sample{}, err
		}
		loops = append(loops, f)
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, consumers)
	for _, f := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && ctx.Err() == nil {
				errs <- err
			}
			cancel() // the others stop waiting once every item is done
		}()
	}
	wg.Wait()
	s := sample{ops: done.Load(), elapsed: time.Since(t0)}
	select {
	case err := <-errs:
		return s, err
	default:
	}
	if s.ops < items {
		return s, fmt.Errorf("%d items of %d consumed", s.ops, items)
	}
	return s, nil
}

// wakeups: idle consumers (on four clients, as if in four processes) wait
// for items enqueued one at a time, each acknowledged before the next; it
// returns how often a waiting consumer woke to look at the queue, per item.
func wakeups(ctx context.Context, cl *etcdtest.Cluster, idle int) (float64, error) {
	const n = 40
	name := fmt.Sprintf("bench-wakeups-%d", idle)
	var qs []*queue.WorkQueue
	var cs []*gateway.Client
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	for range 4 {
		c, err := gateway.New(gateway.Config{Endpoints: cl.Endpoints()})
		if err != nil {
			return 0, err
		}
		cs = append(cs, c)
		q, err := queue.NewWorkQueue(c, name)
		if err != nil {
			return 0, err
		}
		qs = append(qs, q)
	}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stop()
		wg.Wait()
	}()
	claimed := make(chan *queue.Item)
	for i := range idle {
		q, c := qs[i%4], cs[i%4]
		l, err := lease.New(ctx, c, lease.WithTTL(30))
		if err != nil {
			return 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer l.Close(context.Background())
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
		}()
	}
	waiting := func(k int) error {
		for {
			w := 0
			for _, c := range cs {
				w += c.Waiters()
			}
			if w >= k {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
	}
	if err := waiting(idle); err != nil {
		return 0, err
	}
	count := func() (t int64) {
		for _, q := range qs {
			t += q.Wakeups()
		}
		return t
	}
	base := count()
	for i := range n {
		if err := qs[0].Enqueue(ctx, fmt.Sprint(i), 0); err != nil {
			return 0, err
		}
		it := <-claimed
		if err := waiting(idle - 1); err != nil {
			return 0, err
		}
		if err := it.Ack(ctx); err != nil {
			return 0, err
		}
		if err := waiting(idle); err != nil {
			return 0, err
		}
	}
	return float64(count()-base) / n, nil
}
