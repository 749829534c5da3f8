package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
)

func Example() {
	ctx := context.Background()
	c, err := gateway.New(gateway.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if _, err := c.Put(ctx, "greeting", "hello"); err != nil {
		log.Fatal(err)
	}
	kv, err := c.GetOne(ctx, "greeting")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s = %s (version %d)\n", kv.Key, kv.Value, kv.Version)

	_, err = c.GetOne(ctx, "missing")
	fmt.Println(errors.Is(err, gateway.ErrKeyNotFound))
	// Output:
	// greeting = hello (version 1)
	// true
}

func ExampleClient_Txn() {
	ctx := context.Background()
	c, _ := gateway.New(gateway.Config{Endpoints: endpoints})
	defer c.Close()
	c.Put(ctx, "example/txn/balance", "100")

	// Move the balance only if nobody changed it since we read it.
	kv, _ := c.GetOne(ctx, "example/txn/balance")
	resp, err := c.Txn().
		If(gateway.CmpModRevision("example/txn/balance", gateway.Equal, kv.ModRevision)).
		Then(gateway.OpPut("example/txn/balance", "0"), gateway.OpPut("example/txn/savings", "100")).
		Else(gateway.OpGet("example/txn/balance")).
		Commit(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("moved:", resp.Succeeded)
	// Output: moved: true
}

func ExampleTxn_Coalesce() {
	ctx := context.Background()
	c, _ := gateway.New(gateway.Config{Endpoints: endpoints})
	defer c.Close()
	c.Delete(ctx, "example/coalesce/slot/", gateway.WithPrefix())

	// Many goroutines claim slots at once. Their claims may go to the server
	// in one request: each still compares and writes as if alone, and shares
	// its revision with the others.
	var wg sync.WaitGroup
	claimed := make([]bool, 16)
	for i := range claimed {
		wg.Go(func() {
			slot := fmt.Sprintf("example/coalesce/slot/%d", i)
			resp, err := c.Txn().
				If(gateway.CmpVersion(slot, gateway.Equal, 0)).
				Then(gateway.OpPut(slot, "worker-"+strconv.Itoa(i))).
				Coalesce().
				Commit(ctx)
			claimed[i] = err == nil && resp.Succeeded
		})
	}
	wg.Wait()
	fmt.Println("claimed:", !slices.Contains(claimed, false))
	// Output: claimed: true
}

func ExampleClient_Create() {
	ctx := context.Background()
	c, _ := gateway.New(gateway.Config{Endpoints: endpoints})
	defer c.Close()
	first, _ := c.Create(ctx, "example/create/owner", "alice")
	second, _ := c.Create(ctx, "example/create/owner", "bob")
	swapped, _ := c.Replace(ctx, "example/create/owner", "alice", "carol")
	fmt.Println(first, second, swapped)
	// Output: true false true
}

func ExampleClient_Watch() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _ := gateway.New(gateway.Config{Endpoints: endpoints})
	defer c.Close()

	w, err := c.WatchPrefix(ctx, "example/watch/", gateway.WithPrevKV())
	if err != nil {
		log.Fatal(err)
	}
	defer w.Stop()
	c.Put(ctx, "example/watch/a", "1")
	c.Put(ctx, "example/watch/a", "2")
	c.Delete(ctx, "example/watch/a")

	seen := 0
	for resp := range w.Events() {
		for _, ev := range resp.Events {
			fmt.Printf("%s %s %q (was %q)\n", ev.Type, ev.Kv.Key, ev.Kv.Value, prev(ev))
			seen++
		}
		if seen == 3 {
			break
		}
	}
	// Output:
	// PUT example/watch/a "1" (was "")
	// PUT example/watch/a "2" (was "1")
	// DELETE example/watch/a "" (was "2")
}

func prev(ev gateway.Event) []byte {
	if ev.PrevKv == nil {
		return nil
	}
	return ev.PrevKv.Value
}

func ExampleClient_WatchOnce() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _ := gateway.New(gateway.Config{Endpoints: endpoints})
	defer c.Close()
	rev, _ := c.Put(ctx, "example/once/job", "done")

	// Watching from a revision replays history: no race with the put above.
	ev, err := c.WatchOnce(ctx, "example/once/job", gateway.WithRev(rev.Header.Revision))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %s\n", ev.Kv.Key, ev.Kv.Value)
	// Output: example/once/job done
}

func ExampleClient_Grant() {
	ctx := context.Background()
	c, _ := gateway.New(gateway.Config{Endpoints: endpoints})
	defer c.Close()

	lease, err := c.Grant(ctx, 30)
	if err != nil {
		log.Fatal(err)
	}
	c.Put(ctx, "example/lease/worker-1", "alive", gateway.WithLease(lease.ID))
	ka, _ := c.KeepAliveOnce(ctx, lease.ID)
	fmt.Println("ttl:", ka.TTL)

	c.Revoke(ctx, lease.ID) // deletes the key with the lease
	_, err = c.KeepAliveOnce(ctx, lease.ID)
	fmt.Println(errors.Is(err, gateway.ErrLeaseNotFound))
	// Output:
	// ttl: 30
	// true
}

// Every key of a view lives under its namespace.
func ExampleClient_WithNamespace() {
	ctx := context.Background()
	c, err := gateway.New(gateway.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	tenant := c.WithNamespace("example/tenant-a/")
	if _, err := tenant.Put(ctx, "config", "on"); err != nil {
		log.Fatal(err)
	}
	kv, err := c.GetOne(ctx, "example/tenant-a/config")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s = %s\n", kv.Key, kv.Value)
	// Output: example/tenant-a/config = on
}

// A transfer between two accounts that commits only if neither changed since
// it read them, and runs again if one did.
func ExampleClient_RunSTM() {
	ctx := context.Background()
	c, err := gateway.New(gateway.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Put(ctx, "example/stm/alice", "100")
	c.Put(ctx, "example/stm/bob", "0")

	_, err = c.RunSTM(ctx, func(s *gateway.STM) error {
		a, _, err := s.Get("example/stm/alice")
		if err != nil {
			return err
		}
		b, _, err := s.Get("example/stm/bob")
		if err != nil {
			return err
		}
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		s.Put("example/stm/alice", strconv.Itoa(x-30))
		s.Put("example/stm/bob", strconv.Itoa(y+30))
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	bob, _ := c.GetOne(ctx, "example/stm/bob")
	fmt.Println("bob:", string(bob.Value))
	// Output: bob: 30
}

// Per-member work: each member's status and health, one member at a time.
func ExampleWithEndpoint() {
	ctx := context.Background()
	c, err := gateway.New(gateway.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for _, ep := range c.Endpoints() {
		on := gateway.WithEndpoint(ep)
		st, err := c.Status(ctx, on)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("leader known:", st.Leader != 0, "healthy:", c.Health(ctx, on) == nil)
	}
	// Output: leader known: true healthy: true
}

func ExampleWatch_RequestProgress() {
	ctx := context.Background()
	c, _ := gateway.New(gateway.Config{Endpoints: endpoints})
	defer c.Close()

	// A cache fed by a watch may serve a read at revision rev once the watch
	// is known to have delivered everything up to rev.
	w, err := c.Watch(ctx, "example/progress")
	if err != nil {
		log.Fatal(err)
	}
	defer w.Stop()
	resp, _ := c.Put(ctx, "example/progress-elsewhere", "x")
	rev := resp.Header.Revision

	tick := time.NewTicker(100 * time.Millisecond) // a request the server drops is asked again
	defer tick.Stop()
	for w.Revision() <= rev {
		if err := w.RequestProgress(ctx); errors.Is(err, gateway.ErrUnimplemented) {
			// Plain http:// endpoints speak HTTP/1.1: no progress requests
			// there; this example's server is one.
			fmt.Println("progress needs HTTP/2 (TLS)")
			return
		} else if err != nil {
			log.Fatal(err)
		}
		select {
		case <-w.Events(): // events, or the notification; Revision moves past them
		case <-tick.C:
		}
	}
	fmt.Println("caught up")
	// Output: progress needs HTTP/2 (TLS)
}
