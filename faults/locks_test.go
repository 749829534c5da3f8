package faults_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
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
}

// holder is what the workload needs of a Mutex, an RWMutex side or a Semaphore.
type holder struct {
	lock, unlock func(context.Context) error
	token        func() int64
	isOwner      func() gateway.Cmp
	done         func() <-chan struct{}
}

var (
	mutexKind = lockKind{name: "mutex", prefix: "lk/mutex/", exclusive: true, make: func(l *lease.Lease) (holder, error) {
		m := mutex.New(l, "lk/mutex")
		return holder{m.Lock, m.Unlock, m.Token, m.IsOwner, m.Done}, nil
	}}
	writerKind = lockKind{name: "rw-writer", prefix: "lk/rw/", exclusive: true, make: func(l *lease.Lease) (holder, error) {
		rw := mutex.NewRWMutex(l, "lk/rw")
		return holder{rw.Lock, rw.Unlock, rw.Token, rw.IsOwner, rw.Done}, nil
	}}
	readerKind = lockKind{name: "rw-reader", prefix: "lk/rw/", make: func(l *lease.Lease) (holder, error) {
		rw := mutex.NewRWMutex(l, "lk/rw")
		return holder{rw.RLock, rw.RUnlock, rw.Token, rw.IsOwner, rw.Done}, nil
	}}
	semKind = lockKind{name: "semaphore", prefix: "lk/sem/", make: func(l *lease.Lease) (holder, error) {
		s, err := mutex.NewSemaphore(l, "lk/sem", semSlots)
		if err != nil {
			return holder{}, err
		}
		return holder{s.Acquire, s.Release, s.Token, s.IsOwner, s.Done}, nil
	}}
)

// hold is one acquisition as its holder saw it: from Lock's return to the first
// of its loss signal and its decision to unlock.
type hold struct {
	kind            string
	token           int64
	acquired, ended time.Time
}

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
}

// TestLocks: holders of a Mutex, of both sides of an RWMutex and of a Semaphore
// write through transactions guarded by their ownership while members die and
// their own network fails. Afterwards, at the revision of every applied write, the
// writer must have held its lock (first in line, no older writer, among the first
// N); the exclusive holders' writes must come in token order (no two holders
// succeed in the same epoch); and no acquisition may come before the previous
// holder's loss signal or unlock.
func TestLocks(t *testing.T) {
	etcd := newCluster(t)
	kinds := []lockKind{mutexKind, mutexKind, mutexKind, mutexKind, writerKind, writerKind, readerKind, readerKind,
		semKind, semKind, semKind, semKind}
	actors := newActors(t, etcd, len(kinds))
	nem := newNemesis(t, etcd, actors)
	var log lockLog

	ctx, cancel := context.WithTimeout(context.Background(), runFor())
	defer cancel()
	nem.start(ctx)
	var wg sync.WaitGroup
	for i, a := range actors {
		wg.Go(func() { lockWorker(ctx, t, a, kinds[i], &log) })
	}
	wg.Wait()
	faults := nem.stop()

	v := &violations{t: t}
	c := etcd.Client()
	checkCtx, checkCancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer checkCancel()
	for _, w := range log.writes {
		checkOwnership(checkCtx, t, c, w, v)
	}
	checkTokenOrder(log.writes, v)
	checkIntervals(log.holds, v)
	t.Logf("%d acquisitions, %d guarded writes applied", len(log.holds), len(log.writes))
	checkRan(t, &log, "mutex", "rw-writer", "rw-reader", "semaphore")
	record(t, row{workload: "locks", faults: faults, ops: len(log.holds) + len(log.writes), violations: v.report()})
}

// checkRan fails the test unless every kind was acquired and wrote under its lock:
// a workload that did nothing would check nothing.
func checkRan(t *testing.T, log *lockLog, kinds ...string) {
	t.Helper()
	for _, k := range kinds {
		holds, writes := 0, 0
		for _, h := range log.holds {
			if h.kind == k {
				holds++
			}
		}
		for _, w := range log.writes {
			if w.kind == k {
				writes++
			}
		}
		if holds == 0 || writes == 0 {
			t.Errorf("%s: %d acquisitions, %d guarded writes applied: the workload did not run", k, holds, writes)
		}
	}
}

// lockWorker acquires, writes three times under the lock, and releases, over and
// over; when its lease is lost it starts again with a new one, like a restarted
// process.
func lockWorker(ctx context.Context, t *testing.T, a *actor, k lockKind, log *lockLog) {
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
			lockCtx, lockCancel := context.WithTimeout(ctx, 10*time.Second)
			err := h.lock(lockCtx)
			lockCancel()
			if err != nil {
				sleep(ctx, 50*time.Millisecond)
				continue
			}
			holdOnce(ctx, a, k, h, log)
		}
		closeCtx, closeCancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = l.Close(closeCtx)
		closeCancel()
	}
}

func holdOnce(ctx context.Context, a *actor, k lockKind, h holder, log *lockLog) {
	hd := hold{kind: k.name, token: h.token(), acquired: time.Now()}
	// The loss signal, timed as the holder would see it.
	lost := make(chan time.Time, 1)
	stop := make(chan struct{})
	done := h.done()
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-done:
			lost <- time.Now()
		case <-stop:
		}
	})
	for i := 0; i < 3 && !isDone(done); i++ {
		if rev, ok := guardedWrite(ctx, a, k, h, i); ok {
			log.mu.Lock()
			log.writes = append(log.writes, write{kind: k.name, token: hd.token, rev: rev})
			log.mu.Unlock()
		}
	}
	hd.ended = time.Now()
	close(stop)
	wg.Wait()
	select {
	case at := <-lost:
		if at.Before(hd.ended) {
			hd.ended = at
		}
	default:
	}
	log.mu.Lock()
	log.holds = append(log.holds, hd)
	log.mu.Unlock()
	unlockCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = h.unlock(unlockCtx)
	cancel()
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
// overlap.
func checkIntervals(holds []hold, v *violations) {
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
				if p.ended.After(h.acquired) {
					open = append(open, p)
				}
			}
			switch {
			case group[0] == "semaphore" && len(open) >= semSlots:
				v.add("semaphore: token %d acquired while %d others held", h.token, len(open))
			case (group[0] == "mutex" || group[0] == "leader") && len(open) > 0:
				v.add("%s: token %d acquired %v before token %d's loss signal or unlock",
					h.kind, h.token, open[0].ended.Sub(h.acquired), open[0].token)
			case group[0] == "rw-writer":
				for _, p := range open {
					if h.kind == "rw-writer" || p.kind == "rw-writer" {
						v.add("rwmutex: %s token %d acquired %v before %s token %d's loss signal or unlock",
							h.kind, h.token, p.ended.Sub(h.acquired), p.kind, p.token)
					}
				}
			}
		}
	}
}
