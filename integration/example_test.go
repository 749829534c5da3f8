package integration_test

import (
	"context"
	"fmt"
	"time"

	"github.com/etcdgw/etcdgw/integration"
	"github.com/etcdgw/etcdgw/mutex"
)

// Start etcd, use it, and terminate it. In a test, integration.New(t) does the
// same and terminates the cluster when the test ends; in TestMain, call Start
// before m.Run and Terminate after it.
func ExampleStart() {
	ctx := context.Background()
	etcd, err := integration.Start(ctx)
	if err != nil {
		panic(err)
	}
	defer etcd.Terminate(ctx)

	m, err := mutex.Acquire(ctx, etcd.Client(), "jobs/lock", 10)
	if err != nil {
		panic(err)
	}
	fmt.Println("locked")
	if err := m.Unlock(ctx); err != nil {
		panic(err)
	}
	// Output: locked
}

// Crash the leader of a three-member cluster and see another take over.
func ExampleMember_Kill() {
	ctx := context.Background()
	etcd, err := integration.Start(ctx, integration.WithMembers(3))
	if err != nil {
		panic(err)
	}
	defer etcd.Terminate(ctx)

	leader, _ := etcd.Leader(ctx)
	if err := leader.Kill(ctx); err != nil {
		panic(err)
	}
	next, _ := etcd.Leader(ctx)
	fmt.Println("new leader:", next != leader)
	if err := leader.Restart(ctx); err != nil {
		panic(err)
	}
	_, err = etcd.Client().Put(ctx, "k", "v")
	fmt.Println("put:", err)
	// Output:
	// new leader: true
	// put: <nil>
}

// Partition a client from its member with a proxy: requests hang until Heal.
func ExampleProxy() {
	ctx := context.Background()
	etcd, err := integration.Start(ctx, integration.WithProxies())
	if err != nil {
		panic(err)
	}
	defer etcd.Terminate(ctx)

	p := etcd.Member(0).Proxy()
	p.Blackhole()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = etcd.Client().Get(short, "k")
	cancel()
	fmt.Println("partitioned:", err != nil)
	p.Heal()
	_, err = etcd.Client().Get(ctx, "k")
	fmt.Println("healed:", err)
	// Output:
	// partitioned: true
	// healed: <nil>
}
