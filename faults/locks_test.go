package faults_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/integration"
	"github.com/etcdgw/etcdgw/lease"
	"github.com/etcdgw/etcdgw/mutex"
)

// semSlots is the semaphore's size.
const semSlots = 2

// lockKind is one kind of holder: how it locks, and what its guarded write is.
type lockKind struct {
	name      string
	prefix    string // where the lock's keys live
	exclusive bool   // excludes every other holder of the same lock
	// make returns a would-be holder on the lease.
	make func(l *lease.Lease) (holder, error)
	// lost is the sentinel its loss matches (mutex.ErrLost, election.ErrLost).
	lost error
}

// holder is what the workload needs of a Mutex, an RWMutex side or a Semaphore.
type holder struct {
	lock, unlock func(context.Context) error
	token        func() int64
	isOwner      func() gateway.Cmp
	done         func() <-chan struct{}
	key          func() string
}

var (
	mutexKind = lockKind{name: "mutex", prefix: "lk/mutex/", exclusive: true, make: func(l *lease.Lease) (holder, error) {
		m := mutex.New(l, "lk/mutex")
		return holder{m.Lock, m.Unlock, m.Token, m.IsOwner, m.Done, m.Key}, nil
	}, lost: mutex.ErrLost}
	writerKind = lockKind{name: "rw-writer", prefix: "lk/rw/", exclusive: true, make: func(l *lease.Lease) (holder, error) {
		rw := mutex.NewRWMutex(l, "lk/rw")
		return holder{rw.Lock, rw.Unlock, rw.Token, rw.IsOwner, rw.Done, rw.Key}, nil
	}, lost: mutex.ErrLost}
	readerKind = lockKind{name: "rw-reader", prefix: "lk/rw/", make: func(l *lease.Lease) (holder, error) {
		rw := mutex.NewRWMutex(l, "lk/rw")
		return holder{rw.RLock, rw.RUnlock, rw.Token, rw.IsOwner, rw.Done, rw.Key}, nil
	}, lost: mutex.ErrLost}
	semKind = lockKind{name: "semaphore", prefix: "lk/sem/", make: func(l *lease.Lease) (holder, error) {
		s, err := mutex.NewSemaphore(l, "lk/sem", semSlots)
		if err != nil {
			return holder{}, err
		}
		return holder{s.Acquire, s.Release, s.Token, s.IsOwner, s.Done, s.Key}, nil
	}, lost: mutex.ErrLost}
)

// hold is one acquisition as its holder saw it: from Lock's return to the first
// of its loss signal and its decision to unlock, and what Unlock said of it.
type hold struct {
	kind            string
	token           int64
	acquired, ended time.Time
	// watcher: the holder watched its loss signal (Context). A holder that
	// does not learns of a loss from Unlock's error alone.
	watcher bool
	// signalled: the loss signal came before the holder unlocked.
	signalled bool
	// unlock is what Unlock said: nil (the hold was intact until then),
	// errLostHold (it matched the kind's ErrLost) or another error (unknown).
	unlock error
}

// errLostHold stands for an Unlock that reported the loss of the hold.
var errLostHold = errors.New("unlock reported the hold lost")

// reportedLost: the holder learnt that it had lost the hold.
func (h hold) reportedLost() bool { return h.signalled || errors.Is(h.unlock, errLostHold) }

// write is a guarded write that the server applied.
type write struct {
	kind  string
	token int64
	rev   int64
}

type lockLog struct {
	mu     sync.Mutex
	holds  []hold
	writes []write
	stolen map[int64]bool // tokens whose keys the nemesis deleted under their holders
	long   int            // how many holds were long
	added  chan struct{}  // a token when a hold or a write is logged (capacity 1)
}

func newLockLog() *lockLog {
	return &lockLog{stolen: map[int64]bool{}, added: make(chan struct{}, 1)}
}

func (l *lockLog) addHold(h hold) {
	l.mu.Lock()
	l.holds = append(l.holds, h)
	l.mu.Unlock()
	l.tell()
}

func (l *lockLog) addWrite(w write) {
	l.mu.Lock()
	l.writes = append(l.writes, w)
	l.mu.Unlock()
	l.tell()
}

func (l *lockLog) tell() {
	select {
	case l.added <- struct{}{}:
	default: // a token is already waiting
	}
}

// count is how many holds of kind were logged, and how many of their writes applied.
func (l *lockLog) count(kind string) (holds, writes int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.holds {
		if h.kind == kind {
			holds++
		}
	}
	for _, w := range l.writes {
		if w.kind == kind {
			writes++
		}
	}
	return holds, writes
}

// ran reports whether each of kinds was acquired and wrote under its lock.
func (l *lockLog) ran(kinds ...string) bool {
	for _, k := range kinds {
		if holds, writes := l.count(k); holds == 0 || writes == 0 {
			return false
		}
	}
	return true
}

// stopWhenRan ends a lock workload (cancel) once it has run for runFor() and
// each of kinds has been acquired and written under its lock. With holds of up
// to three TTLs and two holders on each side of the RWMutex, a kind can wait
// out all of runFor(): each side held 1 to 5 times in eight runs of 20 s here,
// and the writers not once in one run of make test. Nothing would check such
// a kind. The workload's own deadline (workloadFor) still ends a run in which
// a kind never gets its turn, and checkRan then fails it.
func (l *lockLog) stopWhenRan(ctx context.Context, cancel context.CancelFunc, kinds ...string) {
	select {
	case <-time.After(runFor()):
	case <-ctx.Done():
		return
	}
	for !l.ran(kinds...) {
		select {
		case <-l.added:
		case <-ctx.Done():
			return
		}
	}
	cancel()
}

// workloadFor is a lock workload's deadline: runFor(), and up to twice as long
// again while a kind has not run (stopWhenRan).
func workloadFor() time.Duration { return 3 * runFor() }

// stealFault deletes the key of a lock that an actor holds now (fenced by its
// token, so only that hold's key), as an operator's `etcdctl del` or another
// program's bug would; the holder must learn that it lost the lock. It aims at
// holders that do not watch their loss signal when there are some: they learn
// it from Unlock alone.
func stealFault(etcd *integration.Cluster, actors []*actor, log *lockLog) fault {
	return fault{"steal", func(ctx context.Context, rng *rand.Rand) error {
		// Wait up to three seconds for a holder that does not watch.
		var b *busyWith
		for range 60 {
			var held, quiet []*busyWith
			for _, a := range actors {
				if h := a.busy.Load(); h != nil && h.token != 0 {
					held = append(held, h)
					if !h.watcher {
						quiet = append(quiet, h)
					}
				}
			}
			if len(quiet) > 0 {
				b = quiet[rng.IntN(len(quiet))]
				break
			}
			if len(held) > 0 {
				b = held[rng.IntN(len(held))]
			}
			if !sleep(ctx, 50*time.Millisecond) {
				return nil
			}
		}
		if b == nil {
			return nil
		}
		callCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		r, err := etcd.Client().Txn().
			If(gateway.CmpCreateRevision(b.key, gateway.Equal, b.token)).
			Then(gateway.OpDelete(b.key)).
			Commit(callCtx)
		if err == nil && r.Succeeded {
			log.mu.Lock()
			log.stolen[b.token] = true
			log.mu.Unlock()
		}
		return nil // a steal that found the hold over, or could not be sent, stole nothing
	}}
}

// TestLocks: holders of a Mutex, of both sides of an RWMutex and of a Semaphore
// write through transactions guarded by their ownership while members die,
// their own network fails, holders turn into zombies (frozen past their lease's
// TTL, then carrying on) and their keys are deleted under them. Holds are short
// (three writes) or long (a write every 300 ms for one to three TTLs, ending
// only on the loss signal or the deadline); half the holders watch their loss
// signal, the others learn of a loss from Unlock alone; waiters give up after
// one to ten seconds. Afterwards, at the revision of every applied write, the
// writer must have held its lock (first in line, no older writer, among the
// first N); the exclusive holders' writes must come in token order (no two
// holders succeed in the same epoch); no acquisition may come before the
// previous holder's loss signal or unlock (a holder whose Unlock said the hold
// was intact held it throughout); and every holder whose key was deleted under
// it learnt that it lost the lock.
func TestLocks(t *testing.T) {
	etcd := newCluster(t)
	kinds := []lockKind{mutexKind, mutexKind, mutexKind, mutexKind, writerKind, writerKind, readerKind, readerKind,
		semKind, semKind, semKind, semKind}
	actors := newActors(t, etcd, len(kinds))
	nem := newNemesis(t, etcd, actors)
	log := newLockLog()
	nem.add(stealFault(etcd, actors, log))
	// Every run has a zombie holder at least once: the loss signal's checks
	// need one.
	nem.lead("zombie")

	ran := []string{"mutex", "rw-writer", "rw-reader", "semaphore"}
	ctx, cancel := context.WithTimeout(context.Background(), workloadFor())
	defer cancel()
	start := time.Now()
	nem.start(ctx)
	var wg sync.WaitGroup
	for i, a := range actors {
		wg.Go(func() { lockWorker(ctx, t, a, kinds[i], log) })
	}
	wg.Go(func() { log.stopWhenRan(ctx, cancel, ran...) })
	wg.Wait()
	faults := nem.stop()
	t.Logf("the workload ran for %v", time.Since(start).Round(time.Second))

	v := &violations{t: t}
	c := etcd.Client()
	checkCtx, checkCancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer checkCancel()
	for _, w := range log.writes {
		checkOwnership(checkCtx, t, c, w, v)
	}
	checkTokenOrder(log.writes, v)
	checkIntervals(log.holds, log.stolen, v)
	checkStolenReported(log.holds, log.stolen, v)
	t.Logf("%d acquisitions (%d of them long), %d guarded writes applied, %d keys stolen",
		len(log.holds), log.long, len(log.writes), len(log.stolen))
	checkRan(t, log, ran...)
	record(t, row{workload: "locks", faults: faults, ops: len(log.holds) + len(log.writes), violations: v.report(),
		catches: "two holders at once (as they saw it, and at each applied write), a write out of token order, " +
			"a loss never signalled, an Unlock that hides a lost hold"})
}

// checkRan fails the test unless every kind was acquired and wrote under its lock:
// a workload that did nothing would check nothing.
func checkRan(t *testing.T, log *lockLog, kinds ...string) {
	t.Helper()
	for _, k := range kinds {
		if holds, writes := log.count(k); holds == 0 || writes == 0 {
			t.Errorf("%s: %d acquisitions, %d guarded writes applied: the workload did not run", k, holds, writes)
		}
	}
}

// lockWorker acquires, holds (briefly or long) and releases, over and over;
// when its lease is lost it starts again with a new one, like a restarted
// process. It gives up waiting after one to ten seconds.
func lockWorker(ctx context.Context, t *testing.T, a *actor, k lockKind, log *lockLog) {
	rng := rand.New(rand.NewPCG(uint64(a.id), 23))
	for ctx.Err() == nil {
		l, err := a.newLease(ctx)
		if err != nil {
			return
		}
		h, err := k.make(l)
		if err != nil {
			t.Error(err)
			return
		}
		for ctx.Err() == nil && l.Err() == nil {
			lockCtx, lockCancel := context.WithTimeout(ctx, time.Duration(1+rng.IntN(10))*time.Second)
			err := h.lock(lockCtx)
			lockCancel()
			if err != nil {
				sleep(ctx, 50*time.Millisecond)
				continue
			}
			holdOnce(ctx, a, k, h, rng, log)
		}
		closeCtx, closeCancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = l.Close(closeCtx)
		closeCancel()
	}
}

// holdOnce holds the lock it has just taken: three guarded writes, or (half the
// time) a guarded write every 300 ms for one to three TTLs. A holder that
// watches its loss signal stops at it; one that does not holds to the end and
// learns of a loss from Unlock. Between steps the worker stops while its actor
// is frozen.
func holdOnce(ctx context.Context, a *actor, k lockKind, h holder, rng *rand.Rand, log *lockLog) {
	hd := hold{kind: k.name, token: h.token(), acquired: time.Now(), watcher: rng.IntN(2) == 0}
	a.busy.Store(&busyWith{kind: k.name, key: h.key(), token: hd.token, watcher: hd.watcher})
	defer a.busy.Store(nil)
	// The loss signal, timed as the library gives it.
	var done <-chan struct{}
	lost := make(chan time.Time, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if hd.watcher {
		done = h.done()
		wg.Go(func() {
			select {
			case <-done:
				lost <- time.Now()
			case <-stop:
			}
		})
	}
	writes, deadline := 3, time.Time{}
	if rng.IntN(2) == 0 {
		writes, deadline = math.MaxInt, time.Now().Add(time.Duration(1000+rng.IntN(2000))*ttl*time.Millisecond)
		log.mu.Lock()
		log.long++
		log.mu.Unlock()
	}
	for i := 0; i < writes && ctx.Err() == nil; i++ {
		a.step()
		if isDone(done) || (!deadline.IsZero() && time.Now().After(deadline)) {
			break
		}
		if rev, ok := guardedWrite(ctx, a, k, h, i); ok {
			log.addWrite(write{kind: k.name, token: hd.token, rev: rev})
		}
		if !deadline.IsZero() {
			select {
			case <-time.After(300 * time.Millisecond):
			case <-done:
			case <-ctx.Done():
			}
		}
	}
	a.step()
	hd.ended = time.Now()
	close(stop)
	wg.Wait()
	select {
	case at := <-lost:
		hd.signalled = true
		if at.Before(hd.ended) {
			hd.ended = at
		}
	default:
	}
	unlockCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	hd.unlock = h.unlock(unlockCtx)
	cancel()
	if errors.Is(hd.unlock, k.lost) {
		hd.unlock = errLostHold
	}
	log.addHold(hd)
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// guardedWrite increments the kind's counter (exclusive holders) or puts the
// worker's own mark, in a transaction that holds only while the lock does. It
// returns the revision of an applied write.
func guardedWrite(ctx context.Context, a *actor, k lockKind, h holder, i int) (int64, bool) {
	callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	key := fmt.Sprintf("lk-data/%s/%d", k.name, a.id)
	cmps := []gateway.Cmp{h.isOwner()}
	if k.exclusive {
		key = "lk-data/" + k.name + "/counter"
		var modRev int64 // 0: the counter does not exist yet
		kv, err := a.c.GetOne(callCtx, key)
		switch {
		case err == nil:
			modRev = kv.ModRevision
		case !errors.Is(err, gateway.ErrKeyNotFound):
			return 0, false
		}
		cmps = append(cmps, gateway.CmpModRevision(key, gateway.Equal, modRev))
	}
	r, err := a.c.Txn().If(cmps...).Then(gateway.OpPut(key, fmt.Sprint(i))).Commit(callCtx)
	if err != nil || !r.Succeeded {
		return 0, false
	}
	return r.Header.Revision, true
}

// checkOwnership reads the lock's keys as they were at the write's revision: the
// writer's key must be there and hold the lock.
func checkOwnership(ctx context.Context, t *testing.T, c *gateway.Client, w write, v *violations) {
	var prefix string
	switch w.kind {
	case "mutex":
		prefix = mutexKind.prefix
	case "semaphore":
		prefix = semKind.prefix
	case "leader":
		prefix = leaderKind.prefix
	default:
		prefix = writerKind.prefix
	}
	r, err := c.GetPrefix(ctx, prefix, gateway.WithRev(w.rev))
	if err != nil {
		t.Fatalf("read %s at %d: %v", prefix, w.rev, err)
	}
	kvs := slices.Clone(r.Kvs)
	slices.SortFunc(kvs, func(a, b gateway.KeyValue) int { return int(a.CreateRevision - b.CreateRevision) })
	place := slices.IndexFunc(kvs, func(kv gateway.KeyValue) bool { return kv.CreateRevision == w.token })
	switch {
	case place < 0:
		v.add("%s write at revision %d: the writer's key (token %d) was gone", w.kind, w.rev, w.token)
	case (w.kind == "mutex" || w.kind == "rw-writer" || w.kind == "leader") && place != 0:
		v.add("%s write at revision %d: token %d was not first in line (%d ahead)", w.kind, w.rev, w.token, place)
	case w.kind == "semaphore" && place >= semSlots:
		v.add("semaphore write at revision %d: token %d was number %d in line", w.rev, w.token, place+1)
	case w.kind == "rw-reader":
		for _, kv := range kvs[:place] {
			if strings.HasPrefix(string(kv.Key), writerKind.prefix+"w/") {
				v.add("reader write at revision %d: writer %s was ahead of reader token %d", w.rev, kv.Key, w.token)
				break
			}
		}
	}
}

// checkTokenOrder: in revision order, the writes of exclusive holders never go
// back to an older token.
func checkTokenOrder(writes []write, v *violations) {
	for _, kind := range []string{"mutex", "rw-writer", "leader"} {
		var ws []write
		for _, w := range writes {
			if w.kind == kind {
				ws = append(ws, w)
			}
		}
		slices.SortFunc(ws, func(a, b write) int { return int(a.rev - b.rev) })
		for i := 1; i < len(ws); i++ {
			if ws[i].token < ws[i-1].token {
				v.add("%s: write at revision %d by token %d after one at %d by token %d",
					kind, ws[i].rev, ws[i].token, ws[i-1].rev, ws[i-1].token)
			}
		}
	}
}

// checkIntervals: as the holders saw it, each acquisition began after the
// previous holder's loss signal or unlock: mutex holds never overlap, a writer's
// hold overlaps no other hold of the RWMutex, and at most semSlots semaphore holds
// overlap. A hold that could not have known it was over does not count against
// the next: one whose key was stolen (checkStolenReported asks that it learnt
// of it), and one that does not watch its loss signal and whose Unlock reported
// the loss, or failed. A hold that did not watch and whose Unlock said it was
// intact counts until its Unlock: that is what the nil error says.
func checkIntervals(holds []hold, stolen map[int64]bool, v *violations) {
	counts := func(h hold) bool {
		switch {
		case stolen[h.token]:
			return false
		case !h.watcher && h.unlock != nil:
			return false
		}
		return true
	}
	overlapping := func(kinds ...string) []hold {
		var hs []hold
		for _, h := range holds {
			if slices.Contains(kinds, h.kind) {
				hs = append(hs, h)
			}
		}
		slices.SortFunc(hs, func(a, b hold) int { return a.acquired.Compare(b.acquired) })
		return hs
	}
	for _, group := range [][]string{{"mutex"}, {"leader"}, {"rw-writer", "rw-reader"}, {"semaphore"}} {
		hs := overlapping(group...)
		for i, h := range hs {
			// Holds still open when h began.
			var open []hold
			for _, p := range hs[:i] {
				if p.ended.After(h.acquired) && counts(p) {
					open = append(open, p)
				}
			}
			switch {
			case group[0] == "semaphore" && len(open) >= semSlots:
				v.add("semaphore: token %d acquired while %d others held", h.token, len(open))
			case (group[0] == "mutex" || group[0] == "leader") && len(open) > 0:
				v.add("%s: token %d acquired %v before token %d's loss signal or unlock (%s)",
					h.kind, h.token, open[0].ended.Sub(h.acquired), open[0].token, open[0].how())
			case group[0] == "rw-writer":
				for _, p := range open {
					if h.kind == "rw-writer" || p.kind == "rw-writer" {
						v.add("rwmutex: %s token %d acquired %v before %s token %d's loss signal or unlock (%s)",
							h.kind, h.token, p.ended.Sub(h.acquired), p.kind, p.token, p.how())
					}
				}
			}
		}
	}
}

// how says how a hold ended, for a violation's message.
func (h hold) how() string {
	switch {
	case h.signalled:
		return "loss signalled"
	case h.watcher:
		return fmt.Sprintf("watcher, no loss signal, Unlock: %v", h.unlock)
	}
	return fmt.Sprintf("not watching, Unlock: %v", h.unlock)
}

// checkStolenReported: a holder whose key was deleted under it learnt that it
// lost the lock: from its loss signal, or from Unlock's error. (An Unlock that
// failed otherwise leaves it unknown, and is not held against it.)
func checkStolenReported(holds []hold, stolen map[int64]bool, v *violations) {
	for _, h := range holds {
		if stolen[h.token] && !h.reportedLost() && h.unlock == nil {
			v.add("%s token %d: its key was deleted under it, and it never learnt (%s)", h.kind, h.token, h.how())
		}
	}
}
