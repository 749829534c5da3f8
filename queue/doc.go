// Package queue provides queues over etcd's gateway: Queue (FIFO) and
// PriorityQueue, which hand each item to one Dequeue, and WorkQueue, which
// delivers each item at least once to consumers that claim it under their
// lease and acknowledge it when done.
//
// Items are ordered by priority (lower first), then by a sequence number the
// enqueue transaction advances, never by a client's clock. Dequeue and Claim wait
// with a watch and honour their ctx.
//
// A WorkQueue can be inspected and repaired: Counts (waiting, claimed, dead),
// Items (paged, with each item's deliveries and claimant), Peek, and the dead
// letters' Dead, Requeue, RequeueAll and Purge.
//
// Delays are kept by the server: an item enqueued WithDelay, or given back by
// Nack (which backs off exponentially with jitter, WithRetryBackoff), is
// hidden by a key on a lease whose TTL is the delay, and comes back when the
// server expires it. No producer's or consumer's clock decides.
//
// What it leaves out (for now): batch claims, transactional enqueue and unique
// items; a work queue is not a log, so items are removed when acknowledged and
// cannot be replayed.
package queue
