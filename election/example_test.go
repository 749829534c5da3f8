package election_test

import (
	"context"
	"fmt"
	"log"

	"github.com/etcdgw/etcdgw/election"
	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/lease"
)

// A replica campaigns, leads while its leadership context lasts, and resigns.
func ExampleElection() {
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

	e := election.New(l, "scheduler")
	if err := e.Campaign(ctx, "replica-1"); err != nil {
		log.Fatal(err)
	}
	leading := e.Context() // ends if leadership is lost: stop leading then
	leader, err := e.Leader(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s leads (term %v)\n", leader.Value, leader.CreateRevision == e.Token())
	if err := e.Resign(ctx); err != nil {
		log.Fatal(err)
	}
	<-leading.Done()
	fmt.Println("resigned")
	// Output:
	// replica-1 leads (term true)
	// resigned
}

// Follow who leads, including "no leader".
func ExampleObserve() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := gateway.New(gateway.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	changes := election.Observe(ctx, c, "example-observe")
	first := <-changes
	fmt.Println("leader at start:", first.Leader != nil)

	l, err := lease.New(ctx, c, lease.WithTTL(10))
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close(context.Background()) // after cancel: ctx has ended by then
	if err := election.New(l, "example-observe").Campaign(ctx, "me"); err != nil {
		log.Fatal(err)
	}
	now := <-changes
	fmt.Printf("leader now: %s\n", now.Leader.Value)
	cancel()
	for range changes { // closed once ctx has ended
	}
	// Output:
	// leader at start: false
	// leader now: me
}

// After a restart on the same lease, a leader takes up the term it had
// without campaigning again, or learns at once that it is over.
func ExampleResume() {
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
	e := election.New(l, "example/resume")
	if err := e.Campaign(ctx, "me"); err != nil {
		log.Fatal(err)
	}
	term := e.Token() // saved somewhere that survives the restart, with the lease ID

	l.Orphan() // the process restarts...
	l, err = lease.New(ctx, c, lease.WithID(l.ID()))
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close(ctx)
	e, err = election.Resume(ctx, l, "example/resume", term)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same term:", e.Token() == term)
	// Output: same term: true
}
