// Package queue provides queues over etcd's gateway: Queue (FIFO) and
// PriorityQueue, which hand each item to one Dequeue, and WorkQueue, which
// delivers each item at least once to consumers that claim it under their
// lease and acknowledge it when done.
//
// Items are ordered by priority (lower first), then by a sequence number the
// enqueue transaction advances, never by a client's clock. Dequeue and Claim wait
// with a watch and honour their ctx.
//
// A WorkQueue can be inspected and repaired: Counts (waiting, delayed,
// claimed, dead), Items (paged, with each item's deliveries, claimant, unique
// key and last error), Peek, and the dead letters' Dead, Requeue, RequeueAll
// and Purge.
//
// Delays are kept by the server: an item enqueued WithDelay, or given back by
// Nack (which backs off exponentially with jitter, WithRetryBackoff), is
// hidden by a key on a lease whose TTL is the delay, and comes back when the
// server expires it. No producer's or consumer's clock decides.
//
// Batches: ClaimN claims up to MaxClaim items in one request, AckAll and
// NackAll finish many in one, each item on its own claim (a nested
// transaction each, so one lost race or ended claim fails that item alone,
// reported in a *BatchError). EnqueueBatch adds many items in one
// transaction; EnqueueTxn returns what enqueues items inside the caller's own
// transaction, so that they exist only if it commits. WithUnique keeps a
// second item with the same unique key out (ErrDuplicate) while one waits or
// runs. Nack WithError records why a delivery failed (Item.LastError, and the
// dead letter's).
//
// Waiting consumers form a line, and only the first watches the queue, for
// changes that may free an item: an enqueued item wakes about two consumers,
// however many wait (WorkQueue.Wakeups counts them).
//
// A work queue is not a log: items are removed when acknowledged and cannot be
// replayed.
package queue
