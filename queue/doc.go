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
// What it leaves out (for now): delayed and scheduled items, retries with
// backoff and unique items; a work queue is not a log, so items are removed
// when acknowledged and cannot be replayed.
package queue
