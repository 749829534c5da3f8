package queue

import (
	"context"
	"fmt"
	"strconv"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/await"
)

// enqueue adds the values in one txn, under <items><priority>/<sequence>: the
// fixed-width priority and sequence make key order the queue's order, so that
// the head of the queue is a plain range read, without the server sorting the
// whole queue. The sequence is a counter at seq, advanced in the same txn and
// guarded by its revision; concurrent producers retry.
//
// x adds a work queue's compares and operations (holds, unique keys).
func enqueue(ctx context.Context, c *gateway.Client, items, seq string, prio uint16, vals []string, x extra) error {
	for {
		r, err := c.Get(ctx, seq)
		if err != nil {
			return fmt.Errorf("queue: enqueue: %w", err)
		}
		var next, mod int64
		if len(r.Kvs) > 0 {
			mod = r.Kvs[0].ModRevision
			if next, err = strconv.ParseInt(string(r.Kvs[0].Value), 10, 64); err != nil {
				return fmt.Errorf("queue: enqueue: sequence %s holds %q", seq, r.Kvs[0].Value)
			}
		}
		ops := make([]gateway.Op, 0, len(vals)+1)
		ops = append(ops, gateway.OpPut(seq, strconv.FormatInt(next+int64(len(vals)), 10)))
		for i, v := range vals {
			key := fmt.Sprintf("%s%05d/%020d", items, prio, next+int64(i))
			ops = append(ops, gateway.OpPut(key, v))
			if x.with != nil {
				ops = append(ops, x.with(key)...)
			}
		}
		cmps := append([]gateway.Cmp{gateway.CmpModRevision(seq, gateway.Equal, mod)}, x.cmps...)
		t, err := c.Txn().If(cmps...).Then(ops...).Else(x.els...).Commit(ctx)
		if err != nil {
			return fmt.Errorf("queue: enqueue: %w", err)
		}
		if t.Succeeded {
			return nil
		}
		if x.refused != nil {
			if err := x.refused(t); err != nil {
				return err
			}
		}
		// The sequence moved (another producer): again.
	}
}

// extra is what a work queue adds to an enqueue's txn.
type extra struct {
	cmps    []gateway.Cmp
	with    func(key string) []gateway.Op    // each item's further operations
	els     []gateway.Op                     // reads on failure, for refused
	refused func(*gateway.TxnResponse) error // why a failed txn will not succeed, or nil: try again
}

// head reads the first n items under items, in queue order, and the revision
// it read at.
func head(ctx context.Context, c *gateway.Client, items string, n int64) ([]gateway.KeyValue, int64, error) {
	r, err := c.Get(ctx, items, gateway.WithPrefix(), gateway.WithLimit(n), gateway.WithKeysOnly())
	if err != nil {
		return nil, 0, err
	}
	return r.Kvs, r.Header.Revision, nil
}

// PriorityQueue hands each item to exactly one Dequeue, lower priorities
// first, oldest first within a priority.
//
// Dequeue removes the item in the same transaction that reads it, so an item
// is delivered at most once: if the consumer crashes after Dequeue returns, or
// the reply is lost (an error matching gateway.ErrOutcomeUnknown), the item
// may be gone unprocessed. Use WorkQueue for at-least-once delivery.
//
// Ordering: a single consumer sees items in order. Many consumers each see
// their own items in order, but which consumer gets which item, and when
// each finishes, is a race.
//
// Keys: items under <name>/items/<priority>/<sequence>, the sequence counter
// at <name>/seq.
type PriorityQueue struct {
	c          *gateway.Client
	items, seq string
}

// NewPriorityQueue returns the priority queue name.
func NewPriorityQueue(c *gateway.Client, name string) *PriorityQueue {
	return &PriorityQueue{c: c, items: name + "/items/", seq: name + "/seq"}
}

// Enqueue adds an item of priority prio (lower first).
func (q *PriorityQueue) Enqueue(ctx context.Context, val string, prio uint16) error {
	return enqueue(ctx, q.c, q.items, q.seq, prio, []string{val}, extra{})
}

// EnqueueBatch adds items of one priority in one transaction: all or none.
// The server limits a transaction's operations (--max-txn-ops, 128 by
// default); a bigger batch fails with an error matching gateway.ErrTooManyOps.
func (q *PriorityQueue) EnqueueBatch(ctx context.Context, vals []string, prio uint16) error {
	return enqueue(ctx, q.c, q.items, q.seq, prio, vals, extra{})
}

// Dequeue removes and returns the first item, waiting for one if the queue is
// empty, until ctx ends.
func (q *PriorityQueue) Dequeue(ctx context.Context) ([]byte, error) {
	for {
		kvs, rev, err := head(ctx, q.c, q.items, 1)
		if err != nil {
			return nil, fmt.Errorf("queue: dequeue: %w", err)
		}
		if len(kvs) == 0 {
			if err := await.Change(ctx, q.c, q.items, rev, nil, gateway.WithPrefix(), gateway.WithFilterDelete()); err != nil {
				return nil, fmt.Errorf("queue: dequeue: %w", err)
			}
			continue
		}
		kv := kvs[0]
		r, err := q.c.Txn().
			If(gateway.CmpCreateRevision(string(kv.Key), gateway.Equal, kv.CreateRevision)).
			Then(gateway.OpDelete(string(kv.Key), gateway.WithPrevKV())).
			Commit(ctx)
		if err != nil {
			return nil, fmt.Errorf("queue: dequeue of %s: %w", kv.Key, err)
		}
		if r.Succeeded {
			if prev := r.Responses[0].Delete.PrevKvs; len(prev) > 0 {
				return prev[0].Value, nil
			}
		}
		// Another consumer took it: try the next one.
	}
}

// Queue is a FIFO queue: a PriorityQueue whose items all have priority 0.
type Queue struct{ pq *PriorityQueue }

// New returns the FIFO queue name.
func New(c *gateway.Client, name string) *Queue { return &Queue{pq: NewPriorityQueue(c, name)} }

// Enqueue adds an item at the end.
func (q *Queue) Enqueue(ctx context.Context, val string) error { return q.pq.Enqueue(ctx, val, 0) }

// EnqueueBatch adds items at the end, in order, in one transaction.
func (q *Queue) EnqueueBatch(ctx context.Context, vals []string) error {
	return q.pq.EnqueueBatch(ctx, vals, 0)
}

// Dequeue removes and returns the first item; see PriorityQueue.Dequeue.
func (q *Queue) Dequeue(ctx context.Context) ([]byte, error) { return q.pq.Dequeue(ctx) }
