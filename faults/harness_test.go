package faults_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/integration"
	"github.com/etcdgw/etcdgw/lease"
)

// ttl is the lease TTL of lock holders, candidates and consumers, in seconds.
const ttl = 3

// newCluster starts the three members a workload runs on.
func newCluster(t *testing.T) *integration.Cluster {
	t.Helper()
	return integration.New(t, integration.WithMembers(3))
}

// actor is one client of a workload: a gateway client whose connections to each
// member go through proxies of its own, so that faults can hit one client's
// network alone.
type actor struct {
	id      int
	c       *gateway.Client
	proxies []*integration.Proxy

	mu     sync.Mutex
	thawed chan struct{} // while the actor is frozen: closed when it thaws
	// busy is what the actor's worker holds now (a lock, a leadership, a
	// claimed item), for the nemesis to aim at; nil when nothing.
	busy atomic.Pointer[busyWith]
}

// busyWith is what an actor holds: the key and token of a lock or leadership,
// and whether its holder watches for the loss signal.
type busyWith struct {
	kind    string
	key     string
	token   int64
	watcher bool
}

// freeze makes the actor a zombie for d, as a process paused by a long GC, a
// SIGSTOP or a frozen VM: every connection of its client goes silent (so its
// keepalives stop and its leases expire on the server) and its worker stops at
// its next step. Then both resume, and the worker carries on with what it was
// doing, as a paused process does.
//
// The actor's lease manager is not frozen with it: in-process, it keeps
// running and may signal the loss during the pause. A worker that looks at the
// signal only between steps sees it when it thaws, as a real paused process
// would see its lease's timer fire when it wakes.
func (a *actor) freeze(ctx context.Context, d time.Duration) {
	thawed := make(chan struct{})
	a.mu.Lock()
	a.thawed = thawed
	a.mu.Unlock()
	for _, p := range a.proxies {
		p.Blackhole()
	}
	sleep(ctx, d)
	for _, p := range a.proxies {
		p.Heal()
	}
	a.mu.Lock()
	a.thawed = nil
	a.mu.Unlock()
	close(thawed)
}

// step is where a worker stops while its actor is frozen.
func (a *actor) step() {
	a.mu.Lock()
	thawed := a.thawed
	a.mu.Unlock()
	if thawed != nil {
		<-thawed
	}
}

func newActor(t *testing.T, etcd *integration.Cluster, id int) *actor {
	t.Helper()
	a := &actor{id: id}
	var eps []string
	for _, m := range etcd.Members() {
		p, err := integration.NewProxy(m.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		a.proxies = append(a.proxies, p)
		eps = append(eps, p.URL())
	}
	c, err := gateway.New(gateway.Config{
		Endpoints: eps,
		// A call through a blackholed proxy gives up after this; then the
		// next call goes to another member.
		RequestTimeout: 3 * time.Second,
		DialTimeout:    time.Second,
		RetryTimeout:   3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() }) // runs before the proxies close
	a.c = c
	return a
}

func newActors(t *testing.T, etcd *integration.Cluster, n int) []*actor {
	out := make([]*actor, n)
	for i := range out {
		out[i] = newActor(t, etcd, i)
	}
	return out
}

// newLease grants a lease for an actor, retrying through faults until ctx ends.
func (a *actor) newLease(ctx context.Context) (*lease.Lease, error) {
	for {
		l, err := lease.New(ctx, a.c, lease.WithTTL(ttl))
		if err == nil {
			return l, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
}

// sleep waits d or until ctx ends; false if ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// fault is one kind of fault: run injects it and undoes it (or leaves the undoing
// to heal when ctx ends first).
type fault struct {
	name string
	run  func(ctx context.Context, rng *rand.Rand) error
}

// weights are how often a fault is drawn against the others (one if absent):
// zombies and steals are what the checks of holds and claims need most.
var weights = map[string]int{"zombie": 3, "steal": 5}

func weight(f fault) int { return max(weights[f.name], 1) }

// nemesis injects faults one after another, with a short healthy pause between
// them, so that at most one member is down at a time and the cluster keeps its
// quorum.
type nemesis struct {
	t      *testing.T
	etcd   *integration.Cluster
	actors []*actor
	faults []fault

	first string // the fault injected first, if set (lead)

	mu     sync.Mutex
	counts map[string]int

	done chan struct{}
}

func newNemesis(t *testing.T, etcd *integration.Cluster, actors []*actor) *nemesis {
	n := &nemesis{t: t, etcd: etcd, actors: actors, counts: map[string]int{}}
	n.faults = []fault{
		{"kill-leader", func(ctx context.Context, rng *rand.Rand) error { return n.kill(ctx, rng, true) }},
		{"kill-follower", func(ctx context.Context, rng *rand.Rand) error { return n.kill(ctx, rng, false) }},
		{"sigstop", func(ctx context.Context, rng *rand.Rand) error {
			m := etcd.Member(rng.IntN(len(etcd.Members())))
			if err := m.Pause(ctx); err != nil {
				return err
			}
			sleep(ctx, 2*time.Second)
			n.undo(ctx, m.Resume)
			return nil
		}},
		{"proxy-cut", func(_ context.Context, rng *rand.Rand) error {
			n.proxy(rng).Cut()
			return nil
		}},
		{"conn-reset", func(ctx context.Context, rng *rand.Rand) error {
			// A flapping load balancer: for two seconds, every connection
			// of a client is reset again and again, catching requests in
			// flight (some applied, their replies lost).
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) && sleep(ctx, time.Duration(30+rng.IntN(70))*time.Millisecond) {
				for _, p := range n.actors[rng.IntN(len(n.actors))].proxies {
					p.Cut()
				}
			}
			return nil
		}},
		{"proxy-delay", func(ctx context.Context, rng *rand.Rand) error {
			p := n.proxy(rng)
			p.Delay(time.Duration(50+rng.IntN(200)) * time.Millisecond)
			sleep(ctx, 2*time.Second)
			p.Heal()
			return nil
		}},
		{"proxy-blackhole", func(ctx context.Context, rng *rand.Rand) error {
			p := n.proxy(rng)
			p.Blackhole()
			sleep(ctx, 1500*time.Millisecond)
			p.Heal()
			return nil
		}},
		{"zombie", func(ctx context.Context, rng *rand.Rand) error {
			// Aim at an actor that holds something now: that is where a
			// pause past the lease does harm.
			n.target(ctx, rng).freeze(ctx, zombiePause)
			return nil
		}},
		{"keepalive-stop", func(ctx context.Context, rng *rand.Rand) error {
			// Every connection of one client goes silent for longer than
			// its leases' TTL: its keepalives stop, its leases expire.
			a := n.actors[rng.IntN(len(n.actors))]
			for _, p := range a.proxies {
				p.Blackhole()
			}
			sleep(ctx, ttl*time.Second+1500*time.Millisecond)
			for _, p := range a.proxies {
				p.Heal()
			}
			return nil
		}},
	}
	return n
}

// zombiePause is how long a zombie is frozen: past its lease's TTL, so that
// others take over what it held.
const zombiePause = ttl*time.Second + 2*time.Second

// named returns the fault called name.
func (n *nemesis) named(name string) fault {
	for _, f := range n.faults {
		if f.name == name {
			return f
		}
	}
	panic("no fault " + name)
}

// draw picks a fault at random, by weight.
func (n *nemesis) draw(rng *rand.Rand) fault {
	total := 0
	for _, f := range n.faults {
		total += weight(f)
	}
	x := rng.IntN(total)
	for _, f := range n.faults {
		if x -= weight(f); x < 0 {
			return f
		}
	}
	panic("unreachable")
}

// lead makes the named fault the first one injected, so that every run has it
// at least once.
func (n *nemesis) lead(name string) { n.first = name }

// add gives the nemesis a fault of the workload's own (a steal of a lock).
func (n *nemesis) add(f fault) { n.faults = append(n.faults, f) }

// target returns an actor that holds something now, or any actor when none
// does within a second. Two times in three it waits (up to that second) for a
// holder that watches its loss signal: only such a holder shows whether the
// signal comes; the others show whether Unlock reports the loss.
func (n *nemesis) target(ctx context.Context, rng *rand.Rand) *actor {
	wantWatcher := rng.IntN(3) > 0
	var busy []*actor
	for range 20 {
		busy = busy[:0]
		var watchers []*actor
		for _, a := range n.actors {
			if b := a.busy.Load(); b != nil {
				busy = append(busy, a)
				if b.watcher {
					watchers = append(watchers, a)
				}
			}
		}
		if len(watchers) > 0 && wantWatcher {
			return watchers[rng.IntN(len(watchers))]
		}
		if len(busy) > 0 && !wantWatcher {
			return busy[rng.IntN(len(busy))]
		}
		if !sleep(ctx, 50*time.Millisecond) {
			break
		}
	}
	if len(busy) > 0 {
		return busy[rng.IntN(len(busy))]
	}
	return n.actors[rng.IntN(len(n.actors))]
}

func (n *nemesis) proxy(rng *rand.Rand) *integration.Proxy {
	a := n.actors[rng.IntN(len(n.actors))]
	return a.proxies[rng.IntN(len(a.proxies))]
}

// kill SIGKILLs the leader or a follower, leaves it down a second, and restarts it.
func (n *nemesis) kill(ctx context.Context, rng *rand.Rand, leader bool) error {
	l, err := n.etcd.Leader(ctx)
	if err != nil {
		return err
	}
	victim := l
	if !leader {
		for victim == l {
			victim = n.etcd.Member(rng.IntN(len(n.etcd.Members())))
		}
	}
	if err := victim.Kill(ctx); err != nil {
		// The kill may have taken effect though its wait was cut short (the
		// run's ctx ended as it ran): bring the member back all the same, or
		// stop would wait for a leader among members one of which is dead
		// but counted as running.
		n.undo(ctx, victim.Restart)
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	sleep(ctx, time.Second)
	n.undo(ctx, victim.Restart)
	return nil
}

// undo runs f, which undoes a fault (restarts or resumes a member), even when
// the run's ctx has ended meanwhile, under a minute of its own; its failure is
// the test's, whenever it happens.
func (n *nemesis) undo(ctx context.Context, f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := f(ctx); err != nil {
		n.t.Errorf("undoing a fault: %v", err)
	}
}

// start injects faults until ctx ends; stop waits for it and heals everything.
func (n *nemesis) start(ctx context.Context) {
	n.done = make(chan struct{})
	go func() {
		defer close(n.done)
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 6))
		// Let the workload get going before the first fault.
		if !sleep(ctx, 500*time.Millisecond) {
			return
		}
		for i := 0; ctx.Err() == nil; i++ {
			f := n.draw(rng)
			if i == 0 && n.first != "" {
				f = n.named(n.first)
			}
			n.mu.Lock()
			n.counts[f.name]++
			n.mu.Unlock()
			if err := f.run(ctx, rng); err != nil && ctx.Err() == nil {
				n.t.Errorf("fault %s: %v", f.name, err)
			}
			sleep(ctx, time.Duration(300+rng.IntN(700))*time.Millisecond)
		}
	}()
}

// stop waits for the fault loop to end (its ctx must have ended), then heals every
// proxy, resumes and restarts every member, and waits for a leader.
func (n *nemesis) stop() map[string]int {
	<-n.done
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, a := range n.actors {
		for _, p := range a.proxies {
			p.Heal()
		}
	}
	for _, m := range n.etcd.Members() {
		if err := m.Resume(ctx); err != nil {
			n.t.Fatal(err)
		}
		if !m.Running() {
			if err := m.Restart(ctx); err != nil {
				n.t.Fatal(err)
			}
		}
	}
	if _, err := n.etcd.Leader(ctx); err != nil {
		n.t.Fatal(err)
	}
	if err := n.etcd.WaitHealthy(ctx); err != nil {
		n.t.Fatal(err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]int, len(n.counts))
	for k, v := range n.counts {
		out[k] = v
	}
	return out
}

// violations collects what a checker found, for the test's errors and the table.
type violations struct {
	t    *testing.T
	mu   sync.Mutex
	list []string
}

func (v *violations) add(format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.list = append(v.list, fmt.Sprintf(format, args...))
}

// report fails the test with the first violations and returns how many there were.
func (v *violations) report() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	for i, s := range v.list {
		if i == 20 {
			v.t.Errorf("… and %d more violations", len(v.list)-20)
			break
		}
		v.t.Errorf("violation: %s", s)
	}
	return len(v.list)
}

// readHistory returns every event under prefix from the first revision on, read
// after the faults from a healthy cluster: a watch from revision 1, until the
// event of a sentinel key that it puts last. Workloads that use it do not
// compact.
func readHistory(ctx context.Context, t *testing.T, c *gateway.Client, prefix string) []gateway.Event {
	t.Helper()
	end := prefix + "~history-end"
	w, err := c.WatchPrefix(ctx, prefix, gateway.WithRev(1))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := c.Put(ctx, end, ""); err != nil {
		t.Fatal(err)
	}
	var evs []gateway.Event
	for r := range w.Events() {
		for _, ev := range r.Events {
			if string(ev.Kv.Key) == end {
				return evs
			}
			evs = append(evs, ev)
		}
	}
	t.Fatalf("reading the history of %s: %v", prefix, w.Err())
	return nil
}
