package lease_test

import (
	"context"
	"fmt"
	"log"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/lease"
)

// A lease kept alive while a key attached to it says "this worker is here".
func Example() {
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
	defer l.Close(ctx) // revokes: the key below goes with it

	if _, err := c.Put(ctx, "workers/w1", "alive", gateway.WithLease(l.ID())); err != nil {
		log.Fatal(err)
	}
	select {
	case <-l.Done():
		log.Printf("lost: %v", l.Err()) // stop working: someone else may take over
	default:
		fmt.Println("kept alive until", "Close")
	}
	// Output: kept alive until Close
}
