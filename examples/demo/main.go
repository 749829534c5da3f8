// Command demo is `make demo`: it starts a 3-member etcd cluster on loopback,
// runs three replicas of examples/worker as separate processes (they elect a
// leader, which enqueues jobs; all of them claim and ack jobs and write
// results under a lock's fencing token), SIGKILLs the leading replica a third
// of the way, then kills the etcd member that leads Raft, and prints a
// timeline and a checked summary. It exits 0 when every check holds.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"
)

func main() {
	jobs := flag.Int("jobs", 150, "how many jobs")
	ttl := flag.Int64("ttl", 3, "the replicas' lease TTL in seconds")
	work := flag.Duration("work", 150*time.Millisecond, "how long one job takes")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	s, err := demo(ctx, os.Stdout, options{jobs: *jobs, ttl: *ttl, work: *work, replicas: []string{"alpha", "bravo", "charlie"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		if s != nil {
			s.print(os.Stdout)
		}
		os.Exit(1)
	}
	s.print(os.Stdout)
	fmt.Println("\nThe same worker against your own cluster:")
	fmt.Println("  go run ./examples/worker -endpoints http://etcd-1:2379,http://etcd-2:2379,http://etcd-3:2379 -name $(hostname)")
	if !s.ok() {
		os.Exit(1)
	}
}
