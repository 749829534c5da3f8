package mutex_test

import (
	"context"
	"fmt"
	"log"
	"sync"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/lease"
	"github.com/etcdgw/etcdgw/mutex"
)

// A lock held through a lease, with the write it protects guarded by the
// lock's compare.
func ExampleMutex() {
	ctx := context.Background()
	c, err := gateway.New(gateway.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	l, err := lease.New(ctx, c, lease.WithTTL(10))
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close(ctx)

	m := mutex.New(l, "jobs/report")
	if err := m.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	// Work under the lock, stopping if it is lost; the write happens only
	// while the lock is held, even if this process was paused too long.
	work, stop := context.WithCancel(m.Context())
	defer stop()
	r, err := c.Txn().If(m.IsOwner()).Then(gateway.OpPut("jobs/report/last-run", "now")).Commit(work)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("written while holding the lock:", r.Succeeded)
	if err := m.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	// Output: written while holding the lock: true
}

// The seed's lock(id, ttl): a lock with its own lease in one call.
func ExampleAcquire() {
	ctx := context.Background()
	c, err := gateway.New(gateway.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	m, err := mutex.Acquire(ctx, c, "migrations", 30)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("holding", m.Token() > 0)
	if err := m.Unlock(ctx); err != nil { // also revokes the lease
		log.Fatal(err)
	}
	// Output: holding true
}

func ExampleRWMutex() {
	ctx := context.Background()
	c, err := gateway.New(gateway.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	l, err := lease.New(ctx, c, lease.WithTTL(10))
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close(ctx)

	reader, writer := mutex.NewRWMutex(l, "config"), mutex.NewRWMutex(l, "config")
	if err := reader.RLock(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("writer while a reader holds:", writer.TryLock(ctx) != nil)
	if err := reader.RUnlock(ctx); err != nil {
		log.Fatal(err)
	}
	if err := writer.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("writer after the reader left: locked")
	if err := writer.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// writer while a reader holds: true
	// writer after the reader left: locked
}

func ExampleSemaphore() {
	ctx := context.Background()
	c, err := gateway.New(gateway.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	l, err := lease.New(ctx, c, lease.WithTTL(10))
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close(ctx)

	// At most two exports at a time, cluster-wide.
	var slots []*mutex.Semaphore
	for i := 0; i < 3; i++ {
		s, err := mutex.NewSemaphore(l, "exports", 2)
		if err != nil {
			log.Fatal(err)
		}
		slots = append(slots, s)
	}
	for _, s := range slots[:2] {
		if err := s.Acquire(ctx); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("third while two hold:", slots[2].TryAcquire(ctx) != nil)
	for _, s := range slots[:2] {
		if err := s.Release(ctx); err != nil {
			log.Fatal(err)
		}
	}
	// Output: third while two hold: true
}

// A lock shared with Python services that lock through etcd3gw: the same key,
// /locks/<name>, so each side waits for the other.
func ExampleNewEtcd3gwLock() {
	ctx := context.Background()
	c, err := gateway.New(gateway.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	l, err := lease.New(ctx, c, lease.WithTTL(30))
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close(ctx)

	lk := mutex.NewEtcd3gwLock(l, "compute-7")
	if err := lk.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	held, err := lk.Held(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(lk.Key(), "held:", held)
	if err := lk.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	// Output: /locks/compute-7 held: true
}

// A sync.Locker for code that takes one; it never panics, and reports what
// goes wrong to the callback.
func ExampleNewLocker() {
	c, err := gateway.New(gateway.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	var locker sync.Locker = mutex.NewLocker(c, "jobs/nightly", 10, func(err error) { log.Print(err) })
	locker.Lock()
	fmt.Println("locked")
	locker.Unlock()
	// Output: locked
}
