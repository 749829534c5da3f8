package faults_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/election"
	"github.com/etcdgw/etcdgw/lease"
)

// leaderKind is a candidate: it "holds" while it leads. Its term is Token().
var leaderKind = lockKind{name: "leader", prefix: "el/", exclusive: true, make: func(l *lease.Lease) (holder, error) {
	e := election.New(l, "el")
	campaign := func(ctx context.Context) error { return e.Campaign(ctx, fmt.Sprintf("lease-%x", l.ID())) }
	return holder{campaign, e.Resign, e.Token, e.IsOwner, e.Done, e.Key}, nil
}, lost: election.ErrLost}

// observation is what an observer was told, in order.
type observation struct {
	mu   sync.Mutex
	seen []election.Leadership
}

func (o *observation) last() (election.Leadership, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.seen) == 0 {
		return election.Leadership{}, 0
	}
	return o.seen[len(o.seen)-1], len(o.seen)
}

// TestElection: candidates campaign, lead (for three guarded writes, or for one
// to three TTLs) and resign, over and over, while members die, networks fail,
// leaders turn into zombies and their keys are deleted under them; observers
// follow (see TestLocks for the holds).
// At every applied write its leader was the oldest candidate (one leader per
// term); terms only grow; no one became leader before the previous leader's loss
// signal or resignation; each observer saw terms only grow; and after the faults
// every observer converges on the final leader.
func TestElection(t *testing.T) {
	etcd := newCluster(t)
	const candidates, observers = 4, 2
	actors := newActors(t, etcd, candidates+observers)
	nem := newNemesis(t, etcd, actors)
	log := newLockLog()
	nem.add(stealFault(etcd, actors[:candidates], log))
	nem.lead("zombie") // see TestLocks

	obsCtx, obsCancel := context.WithCancel(context.Background())
	defer obsCancel()
	obs := make([]*observation, observers)
	var obsWG sync.WaitGroup
	for i := range obs {
		o := &observation{}
		obs[i] = o
		ch := election.Observe(obsCtx, actors[candidates+i].c, "el")
		obsWG.Go(func() {
			for l := range ch {
				o.mu.Lock()
				o.seen = append(o.seen, l)
				o.mu.Unlock()
			}
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), workloadFor())
	defer cancel()
	start := time.Now()
	nem.start(ctx)
	var wg sync.WaitGroup
	for _, a := range actors[:candidates] {
		wg.Go(func() { lockWorker(ctx, t, a, leaderKind, log) })
	}
	wg.Go(func() { log.stopWhenRan(ctx, cancel, "leader") })
	wg.Wait()
	faults := nem.stop()
	t.Logf("the workload ran for %v", time.Since(start).Round(time.Second))

	v := &violations{t: t}
	checkCtx, checkCancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer checkCancel()
	c := etcd.Client()
	for _, w := range log.writes {
		checkOwnership(checkCtx, t, c, w, v)
	}
	checkTokenOrder(log.writes, v)
	checkIntervals(log.holds, log.stolen, v)
	checkStolenReported(log.holds, log.stolen, v)
	checkRan(t, log, "leader")

	// Convergence: one last leader, which every observer must report.
	l, err := lease.New(checkCtx, c, lease.WithTTL(10))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	final := election.New(l, "el")
	if err := final.Campaign(checkCtx, "final"); err != nil {
		t.Fatal(err)
	}
	observed := 0
	for i, o := range obs {
		deadline := time.Now().Add(15 * time.Second)
		for {
			last, n := o.last()
			if last.Leader != nil && string(last.Leader.Value) == "final" {
				observed += n
				break
			}
			if time.Now().After(deadline) {
				v.add("observer %d did not converge: its last report is %v", i, describe(last))
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		checkObserved(i, o, v)
	}
	obsCancel()
	obsWG.Wait()
	if err := final.Resign(checkCtx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d terms, %d guarded writes applied, %d observations", len(log.holds), len(log.writes), observed)
	record(t, row{workload: "election", faults: faults, ops: len(log.holds) + len(log.writes) + observed, violations: v.report(),
		catches: "two leaders at once (as they saw it, and at each applied write), a term going back, " +
			"a lost leadership never signalled or hidden by Resign, an observer going back or not converging"})
}

// checkObserved: an observer's reports go forward in revision, and leaders only
// get younger (a later leader's key was created later).
func checkObserved(i int, o *observation, v *violations) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var rev, term int64
	for _, l := range o.seen {
		if l.Revision < rev {
			v.add("observer %d: report at revision %d after one at %d", i, l.Revision, rev)
		}
		rev = l.Revision
		if l.Leader != nil {
			if l.Leader.CreateRevision < term {
				v.add("observer %d: leader of term %d reported after term %d", i, l.Leader.CreateRevision, term)
			}
			term = l.Leader.CreateRevision
		}
	}
}

func describe(l election.Leadership) string {
	if l.Leader == nil {
		return fmt.Sprintf("no leader at revision %d", l.Revision)
	}
	return fmt.Sprintf("%q (term %d) at revision %d", l.Leader.Value, l.Leader.CreateRevision, l.Revision)
}
