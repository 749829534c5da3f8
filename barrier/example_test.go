package barrier_test

import (
	"context"
	"fmt"
	"log"
	"sync"

	"github.com/etcdgw/etcdgw/barrier"
	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/lease"
)

// Workers wait until the loader has released the barrier.
func ExampleBarrier() {
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

	b := barrier.New(l, "data-loaded")
	if err := b.Hold(ctx); err != nil {
		log.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := barrier.Wait(ctx, c, "data-loaded"); err != nil {
			log.Fatal(err)
		}
		fmt.Println("worker starts")
	}()
	if err := b.Release(ctx); err != nil { // loading finished
		log.Fatal(err)
	}
	<-done
	// Output: worker starts
}

// Three participants start and finish a phase together.
func ExampleDoubleBarrier() {
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

	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		d, err := barrier.NewDoubleBarrier(l, "phase-1", 3)
		if err != nil {
			log.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.Enter(ctx); err != nil {
				log.Fatal(err)
			}
			// ... the phase's work ...
			if err := d.Leave(ctx); err != nil {
				log.Fatal(err)
			}
		}()
	}
	wg.Wait()
	fmt.Println("all three entered and left together")
	// Output: all three entered and left together
}
