package queue_test

import (
	"context"
	"fmt"
	"log"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/lease"
	"github.com/etcdgw/etcdgw/queue"
)

func ExampleQueue() {
	ctx := context.Background()
	c, err := gateway.New(gateway.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	q := queue.New(c, "example-fifo")
	if err := q.EnqueueBatch(ctx, []string{"first", "second"}); err != nil {
		log.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		v, err := q.Dequeue(ctx) // waits while the queue is empty
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(string(v))
	}
	// Output:
	// first
	// second
}

func ExamplePriorityQueue() {
	ctx := context.Background()
	c, err := gateway.New(gateway.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	q := queue.NewPriorityQueue(c, "example-prio")
	_ = q.Enqueue(ctx, "routine", 10)
	_ = q.Enqueue(ctx, "urgent", 1)
	v, err := q.Dequeue(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(v))
	// Output: urgent
}

// A consumer claims an item under its lease, works, and acknowledges it. Had
// it died instead, its claim would have ended with its lease and the item
// would have gone to another consumer.
func ExampleWorkQueue() {
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

	q, err := queue.NewWorkQueue(c, "example-work", queue.WithMaxAttempts(3))
	if err != nil {
		log.Fatal(err)
	}
	if err := q.Enqueue(ctx, "resize image 42", 0); err != nil {
		log.Fatal(err)
	}
	it, err := q.Claim(ctx, l)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("working on %q (attempt %d)\n", it.Value, it.Attempt)
	if err := it.Ack(ctx); err != nil {
		log.Fatal(err)
	}
	// Output: working on "resize image 42" (attempt 1)
}

// A work queue's state, for a dashboard or an operator: counts, the next
// item, and the dead letters put back to work.
func ExampleWorkQueue_Counts() {
	ctx := context.Background()
	c, err := gateway.New(gateway.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	q, err := queue.NewWorkQueue(c, "example-inspect")
	if err != nil {
		log.Fatal(err)
	}
	if err := q.EnqueueBatch(ctx, []string{"send mail 1", "send mail 2"}, 0); err != nil {
		log.Fatal(err)
	}
	n, err := q.Counts(ctx)
	if err != nil {
		log.Fatal(err)
	}
	next, err := q.Peek(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d waiting, %d claimed, %d dead; next: %q\n", n.Waiting, n.Claimed, n.Dead, next.Value)
	requeued, err := q.RequeueAll(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("dead letters requeued:", requeued)
	// Output:
	// 2 waiting, 0 claimed, 0 dead; next: "send mail 1"
	// dead letters requeued: 0
}
