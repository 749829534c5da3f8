package queue_test

import (
	"context"
	"errors"
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

// A consumer that works in batches: up to 16 items claimed in one request,
// the failed given back with their error, the rest acknowledged in one.
func ExampleWorkQueue_ClaimN() {
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
	q, err := queue.NewWorkQueue(c, "example-batch")
	if err != nil {
		log.Fatal(err)
	}
	if err := q.EnqueueBatch(ctx, []string{"mail 1", "mail 2", "mail 3"}, 0); err != nil {
		log.Fatal(err)
	}

	items, err := q.ClaimN(ctx, l, 16)
	if err != nil {
		log.Fatal(err)
	}
	var done []*queue.Item
	for _, it := range items {
		if string(it.Value) == "mail 2" {
			if err := it.Nack(ctx, queue.WithError(errors.New("mailbox full"))); err != nil {
				log.Fatal(err)
			}
			continue
		}
		done = append(done, it)
	}
	if err := q.AckAll(ctx, done); err != nil {
		log.Fatal(err)
	}
	page, _, err := q.Items(ctx, "", 10)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("claimed %d, left %q: %s\n", len(items), page[0].Value, page[0].LastError)
	// Output: claimed 3, left "mail 2": mailbox full
}

// Transactional enqueue: the job exists if, and only if, the caller's write
// commits; a unique key keeps a second job for the same photo out.
func ExampleWorkQueue_EnqueueTxn() {
	ctx := context.Background()
	c, err := gateway.New(gateway.Config{Endpoints: endpoints})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	q, err := queue.NewWorkQueue(c, "example-txn")
	if err != nil {
		log.Fatal(err)
	}
	upload := func(photo string) bool {
		cmps, ops, err := q.EnqueueTxn(ctx, []string{"thumbnail " + photo}, 0, queue.WithUnique(photo))
		if err != nil {
			log.Fatal(err)
		}
		r, err := c.Txn().
			If(append(cmps, gateway.CmpCreateRevision("example-photos/"+photo, gateway.Equal, 0))...).
			Then(append(ops, gateway.OpPut("example-photos/"+photo, "jpeg bytes"))...).
			Commit(ctx)
		if err != nil {
			log.Fatal(err)
		}
		return r.Succeeded
	}
	fmt.Println(upload("42"), upload("42"))
	n, err := q.Counts(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("jobs waiting:", n.Waiting)
	// Output:
	// true false
	// jobs waiting: 1
}
