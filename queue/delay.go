package queue

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delays. A delayed item (Enqueue with WithDelay, or given back with Nack) has
// a hold key, <name>/holds/<item>, attached to a lease of its own whose TTL is
// the delay and which nobody keeps alive. Claims pass over held items. When
// the server expires the lease it deletes the hold, which wakes the waiting
// consumers: the delay is measured by the server's clock alone, never by a
// producer's or a consumer's.

// EnqueueOption shapes an Enqueue.
type EnqueueOption func(*enqueueOptions)

type enqueueOptions struct {
	delay  time.Duration
	unique string
}

// WithUnique gives the item a unique key: the enqueue fails with ErrDuplicate
// while another item with the same unique key waits, is delayed or runs. The
// key is freed when the item is acknowledged or dead-lettered; a dead letter
// requeued does not take it again.
func WithUnique(key string) EnqueueOption { return func(o *enqueueOptions) { o.unique = key } }

// WithDelay keeps the items hidden for d after they are enqueued (rounded up
// to whole seconds; etcd raises a TTL below its minimum, about two election
// timeouts, to that minimum).
func WithDelay(d time.Duration) EnqueueOption { return func(o *enqueueOptions) { o.delay = d } }

// backoffPolicy is how long Nack hides an item: initial after its first
// delivery, doubling with each delivery up to max, with ±20% jitter.
type backoffPolicy struct{ initial, max time.Duration }

var defaultRetry = backoffPolicy{initial: time.Second, max: 5 * time.Minute}

// WithRetryBackoff sets how long Nack hides an item before its next delivery:
// initial after the first delivery, doubling with each further one, up to
// max, with ±20% jitter. WithRetryBackoff(0, 0) gives items back at once. The
// default is 1 s up to 5 minutes.
func WithRetryBackoff(initial, max time.Duration) WorkOption {
	return func(q *WorkQueue) { q.retry = backoffPolicy{initial, max} }
}

// delay is the hide after an item's attempt-th delivery.
func (p backoffPolicy) delay(attempt int) time.Duration {
	if p.initial <= 0 {
		return 0
	}
	d := p.initial
	for i := 1; i < attempt && d < p.max; i++ {
		d *= 2
	}
	d = min(d, p.max)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// holdLease grants the lease of a hold: a TTL of d, rounded up to seconds.
func (q *WorkQueue) holdLease(ctx context.Context, d time.Duration) (int64, error) {
	r, err := q.c.Grant(ctx, holdTTL(d))
	if err != nil {
		return 0, err
	}
	return r.ID, nil
}

// holdTTL is the TTL of a hold for d: whole seconds, rounded up, at least 1.
func holdTTL(d time.Duration) int64 {
	return max(int64((d+time.Second-1)/time.Second), 1)
}
