package mutex_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
	"github.com/etcdgw/etcdgw/mutex"
)

func TestRWMutex(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	l := tu.Lease(t, ctx, c, 30) // one lease can back many RWMutex objects
	r1, r2, r3 := mutex.NewRWMutex(l, "rw"), mutex.NewRWMutex(l, "rw"), mutex.NewRWMutex(l, "rw")
	w := mutex.NewRWMutex(l, "rw")
	late := mutex.NewRWMutex(l, "rw")

	// Readers share.
	for _, r := range []*mutex.RWMutex{r1, r2, r3} {
		tu.NoErr(t, r.RLock(ctx))
	}
	tu.Is(t, w.TryLock(ctx), mutex.ErrLocked)
	tu.Is(t, r1.RLock(ctx), mutex.ErrInUse)
	tu.Is(t, r1.Unlock(ctx), mutex.ErrNotLocked) // holds read, not write
	// A writer queues behind them, and a reader that comes later queues behind
	// the writer: writers are not starved.
	wDone := tu.Async(ctx, w.Lock)
	tu.WaitKeys(t, ctx, c, "rw/", int64(4))
	tu.Is(t, late.TryRLock(ctx), mutex.ErrLocked)
	lateDone := tu.Async(ctx, late.RLock)
	tu.WaitKeys(t, ctx, c, "rw/", int64(5))
	tu.NoErr(t, r1.RUnlock(ctx))
	tu.NoErr(t, r2.RUnlock(ctx))
	tu.Pending(t, "the writer", wDone, 0)
	tu.NoErr(t, r3.RUnlock(ctx))
	tu.NoErr(t, <-wDone)
	tu.Pending(t, "the late reader", lateDone, 0)
	// The writer's guarded write works; a reader's compare does not hold for
	// a key it does not have.
	r := tu.Must[*gateway.TxnResponse](t)(c.Txn().If(w.IsOwner()).Then(gateway.OpPut("rw-data", "w")).Commit(ctx))
	tu.Eq(t, "writer's guarded write", r.Succeeded, true)
	wToken := w.Token()
	tu.NoErr(t, w.Unlock(ctx))
	tu.NoErr(t, <-lateDone)
	if late.Token() <= wToken {
		t.Fatalf("reader token %d after writer token %d", late.Token(), wToken)
	}
	tu.NoErr(t, late.RUnlock(ctx))
	tu.Is(t, late.RUnlock(ctx), mutex.ErrNotLocked)
	tu.Eq(t, "keys left", len(keys(t, ctx, c, "rw/")), 0)
}

// TestRWMutexHammer: readers and writers on several clients; a writer is never
// inside with anyone else.
func TestRWMutexHammer(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	var readers, writers, maxReaders atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := tu.Client(t, cl.Endpoints())
			rw := mutex.NewRWMutex(tu.Lease(t, ctx, c, 10), "rwh")
			for round := 0; round < 8; round++ {
				write := (i+round)%4 == 0
				if write {
					if err := rw.Lock(ctx); err != nil {
						errs <- err
						return
					}
					if w, r := writers.Add(1), readers.Load(); w != 1 || r != 0 {
						errs <- fmt.Errorf("writer inside with %d writers and %d readers", w, r)
					}
					writers.Add(-1)
					if err := rw.Unlock(ctx); err != nil {
						errs <- err
					}
					continue
				}
				if err := rw.RLock(ctx); err != nil {
					errs <- err
					return
				}
				n := readers.Add(1)
				for m := maxReaders.Load(); n > m && !maxReaders.CompareAndSwap(m, n); m = maxReaders.Load() {
				}
				if w := writers.Load(); w != 0 {
					errs <- fmt.Errorf("reader inside with %d writers", w)
				}
				if _, err := c.Get(ctx, "rwh-data"); err != nil { // work while inside
					errs <- err
				}
				readers.Add(-1)
				if err := rw.RUnlock(ctx); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("at most %d readers inside at once", maxReaders.Load())
}

func TestSemaphore(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	l := tu.Lease(t, ctx, c, 30)
	_, err := mutex.NewSemaphore(l, "sem", 0)
	tu.Is(t, err, mutex.ErrInvalidArgument)
	const n, waiting = 3, 5
	sem := func() *mutex.Semaphore { return tu.Must[*mutex.Semaphore](t)(mutex.NewSemaphore(l, "sem", n)) }
	var holders []*mutex.Semaphore
	for i := 0; i < n; i++ {
		s := sem()
		tu.NoErr(t, s.Acquire(ctx))
		holders = append(holders, s)
	}
	tu.Is(t, sem().TryAcquire(ctx), mutex.ErrLocked)
	tu.Eq(t, "keys after a failed TryAcquire", len(keys(t, ctx, c, "sem/")), n)
	// Waiters queue in a known order and must get in in that order, one per
	// release.
	var waiters []*mutex.Semaphore
	var dones []chan error
	for i := 0; i < waiting; i++ {
		s := sem()
		waiters = append(waiters, s)
		dones = append(dones, tu.Async(ctx, s.Acquire))
		tu.WaitKeys(t, ctx, c, "sem/", int64(n+i+1))
	}
	// A waiter in the middle gives up: the ones behind it still get in.
	cctx, cancel := context.WithCancel(ctx)
	quitter := sem()
	quitDone := tu.Async(cctx, quitter.Acquire)
	tu.WaitKeys(t, ctx, c, "sem/", int64(n+waiting+1))
	cancel()
	tu.Is(t, <-quitDone, context.Canceled)
	for i := range waiters {
		tu.Pending(t, fmt.Sprintf("waiter %d", i), dones[i], 0)
		tu.NoErr(t, holders[i%len(holders)].Release(ctx))
		tu.NoErr(t, <-dones[i])
		for j := i + 1; j < len(dones); j++ {
			tu.Pending(t, fmt.Sprintf("waiter %d", j), dones[j], 0)
		}
		holders[i%len(holders)] = waiters[i]
	}
	lost := holders[0].Context()
	tu.Must[*gateway.DeleteResponse](t)(c.Delete(ctx, holders[0].Key()))
	<-lost.Done()
	tu.Is(t, context.Cause(lost), mutex.ErrLost)
	tu.Is(t, holders[0].Release(ctx), mutex.ErrLost)
	for _, h := range holders[1:] {
		tu.NoErr(t, h.Release(ctx))
	}
	tu.Eq(t, "keys left", len(keys(t, ctx, c, "sem/")), 0)
}

// TestSemaphoreHammer: never more than N inside.
func TestSemaphoreHammer(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Size: 3})
	ctx := tu.Ctx(t)
	const n = 3
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := tu.Client(t, cl.Endpoints())
			s, err := mutex.NewSemaphore(tu.Lease(t, ctx, c, 10), "semh", n)
			if err != nil {
				errs <- err
				return
			}
			for round := 0; round < 5; round++ {
				if err := s.Acquire(ctx); err != nil {
					errs <- err
					return
				}
				k := inside.Add(1)
				if k > n {
					errs <- fmt.Errorf("%d holders inside a semaphore of %d", k, n)
				}
				for m := most.Load(); k > m && !most.CompareAndSwap(m, k); m = most.Load() {
				}
				if _, err := c.Get(ctx, "semh-data"); err != nil { // work while inside
					errs <- err
				}
				inside.Add(-1)
				if err := s.Release(ctx); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("at most %d inside at once", most.Load())
}
