package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/await"
	"github.com/etcdgw/etcdgw/internal/fence"
	"github.com/etcdgw/etcdgw/lease"
)

// ErrClaimLost: Ack or Nack of an item whose claim had ended (its consumer's
// lease ended, or the claim was acknowledged already). The item may be
// delivered to another consumer.
var ErrClaimLost = errors.New("queue: claim lost")

// DefaultMaxAttempts is how many deliveries an item gets before it is moved to
// the dead letters, unless WithMaxAttempts says otherwise.
const DefaultMaxAttempts = 5

// WorkQueue delivers each item at least once. A consumer claims an item under
// its lease, works, then acknowledges it (Ack: the item is removed) or gives
// it back (Nack: the item is visible again after a backoff). If the consumer
// dies, its claim ends with its lease and the item is delivered again. Claims
// are exclusive: two live consumers never hold the same item. Each delivery
// counts as an attempt; an item claimed MaxAttempts times without an Ack goes
// to the dead letters instead of being delivered again.
//
// Keys: items under <name>/items/<priority>/<sequence>, claims under
// <name>/claims/, delivery counts under <name>/attempts/ (a key's version),
// holds of delayed items under <name>/holds/ (on leases whose TTL is the
// delay), dead letters under <name>/dead/, the sequence at <name>/seq.
//
// Ordering: items are claimed by priority, then oldest first. A single
// consumer sees them in that order; an item given back (or whose consumer
// died) keeps its place and comes before newer ones. With many consumers, each
// claims in that order, but they finish in any order.
//
// A consumer waiting for an item watches the whole queue, so every change
// wakes every waiting consumer (one read each): cheap for the tens of
// consumers a queue usually has.
//
// A claim whose reply is lost (the connection broke, ctx ended in flight) may
// have taken effect: Claim then reads the claim back, and returns the item if
// it is held under its lease. If it cannot tell before its ctx ends, it
// returns an error matching gateway.ErrOutcomeUnknown and remembers the
// claim: the next Claim under the same lease through this WorkQueue settles
// it first. So no item stays held, unseen, by a consumer whose lease lives on.
type WorkQueue struct {
	c           *gateway.Client
	name        string
	seq         string
	items       string
	claims      string
	attempts    string
	dead        string
	holds       string // <name>/holds/: an item with a key here is hidden until the key's lease expires
	maxAttempts int
	retry       backoffPolicy

	mu      sync.Mutex
	pending []pendingClaim // claims of unknown outcome, not yet settled
}

// pendingClaim is a claim whose outcome is not known yet. Its token, the claim
// key's value, tells it from any other claim of the item.
type pendingClaim struct {
	l                  *lease.Lease
	key, ck, ak, token string
}

// WorkOption configures NewWorkQueue.
type WorkOption func(*WorkQueue)

// WithMaxAttempts sets how many deliveries an item gets before it goes to the
// dead letters (default DefaultMaxAttempts). n must be at least 1:
// NewWorkQueue refuses anything less, which would dead-letter every item.
func WithMaxAttempts(n int) WorkOption { return func(q *WorkQueue) { q.maxAttempts = n } }

// ErrInvalidArgument: NewWorkQueue was given an option value it cannot use.
var ErrInvalidArgument = errors.New("queue: invalid argument")

// NewWorkQueue returns the work queue name. It fails with an error matching
// ErrInvalidArgument when an option's value is out of range.
func NewWorkQueue(c *gateway.Client, name string, opts ...WorkOption) (*WorkQueue, error) {
	q := &WorkQueue{c: c, name: name, seq: name + "/seq", items: name + "/items/", claims: name + "/claims/", attempts: name + "/attempts/", dead: name + "/dead/",
		holds: name + "/holds/", maxAttempts: DefaultMaxAttempts, retry: defaultRetry}
	for _, o := range opts {
		o(q)
	}
	if q.maxAttempts < 1 {
		return nil, fmt.Errorf("%w: WithMaxAttempts(%d): an item needs at least one delivery", ErrInvalidArgument, q.maxAttempts)
	}
	if q.retry.initial < 0 || q.retry.max < q.retry.initial {
		return nil, fmt.Errorf("%w: WithRetryBackoff(%v, %v): want 0 <= initial <= max", ErrInvalidArgument, q.retry.initial, q.retry.max)
	}
	return q, nil
}

// Enqueue adds an item of priority prio (lower first). WithDelay keeps it
// hidden for a while.
func (q *WorkQueue) Enqueue(ctx context.Context, val string, prio uint16, opts ...EnqueueOption) error {
	return q.EnqueueBatch(ctx, []string{val}, prio, opts...)
}

// EnqueueBatch adds items of one priority in one transaction: all or none. See
// PriorityQueue.EnqueueBatch for the size limit. WithDelay keeps them hidden
// for a while.
func (q *WorkQueue) EnqueueBatch(ctx context.Context, vals []string, prio uint16, opts ...EnqueueOption) error {
	var o enqueueOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.delay <= 0 {
		return enqueue(ctx, q.c, q.items, q.seq, prio, vals, nil)
	}
	id, err := q.holdLease(ctx, o.delay)
	if err != nil {
		return fmt.Errorf("queue %s: enqueue: %w", q.name, err)
	}
	return enqueue(ctx, q.c, q.items, q.seq, prio, vals, func(item string) gateway.Op {
		return gateway.OpPut(q.holdKeyOf(item), "", gateway.WithLease(id))
	})
}

func (q *WorkQueue) holdKeyOf(item string) string {
	return q.holds + strings.TrimPrefix(item, q.items)
}

// Item is a claimed item.
type Item struct {
	q *WorkQueue
	// Key is the item's key; it stays the same across deliveries.
	Key string
	// Value is what was enqueued.
	Value []byte
	// Attempt counts this delivery: 1 the first time.
	Attempt     int
	claimKey    string // the key that holds this delivery's claim, under the consumer's lease
	claimRev    int64  // the claim key's create revision: the claim's fence
	attemptsKey string // the key whose version counts the item's deliveries
}

func (q *WorkQueue) claimKeyOf(item string) string {
	return q.claims + strings.TrimPrefix(item, q.items)
}

// Claim waits for an unclaimed item and claims it under l, until ctx or the
// lease ends.
func (q *WorkQueue) Claim(ctx context.Context, l *lease.Lease) (*Item, error) {
	for {
		if err := l.Err(); err != nil {
			return nil, fmt.Errorf("queue %s: claim: %w", q.name, err)
		}
		f, err := q.settle(ctx, l)
		if err == nil && f.kind == nonePending {
			f, err = q.tryClaim(ctx, l)
		}
		if err != nil {
			return nil, err
		}
		switch f.kind {
		case gotItem:
			return f.item, nil
		case queueEmpty:
			// The lease ending ends the wait with the lease's error.
			if err := await.Change(ctx, q.c, q.name+"/", f.rev, l, gateway.WithPrefix()); err != nil {
				return nil, fmt.Errorf("queue %s: claim: %w", q.name, err)
			}
		}
		// lookAgain: at once.
	}
}

// found is what one look at the queue found.
type found struct {
	kind foundKind
	item *Item // gotItem: the claimed item
	rev  int64 // queueEmpty: the revision to wait for a change after
}

type foundKind int

const (
	// gotItem: an item is claimed; deliver it.
	gotItem foundKind = iota + 1
	// queueEmpty: no item is free; wait for a change.
	queueEmpty
	// lookAgain: a race was lost to another consumer, a claim's outcome is
	// unknown and was remembered, or an item went to the dead letters: look
	// at the queue again at once.
	lookAgain
	// nonePending: settle had no claim of unknown outcome that took effect.
	nonePending
)

// window is how many items from the head a claim reads beside the claims.
const window = 64

// tryClaim claims one of the first unclaimed items, if there is one.
func (q *WorkQueue) tryClaim(ctx context.Context, l *lease.Lease) (found, error) {
	r, err := q.c.Txn().Then(
		gateway.OpGet(q.claims, gateway.WithPrefix(), gateway.WithKeysOnly()),
		gateway.OpGet(q.items, gateway.WithPrefix(), gateway.WithLimit(window), gateway.WithKeysOnly()),
		gateway.OpGet(q.holds, gateway.WithPrefix(), gateway.WithKeysOnly()),
	).Commit(ctx)
	if err != nil {
		return found{}, fmt.Errorf("queue %s: claim: %w", q.name, err)
	}
	claimed, kvs, held := r.Responses[0].Get.Kvs, r.Responses[1].Get.Kvs, r.Responses[2].Get.Kvs
	if busy := len(claimed) + len(held); busy >= window { // more claimed and hidden items than the window: read further
		if kvs, _, err = head(ctx, q.c, q.items, 2*int64(busy)+1); err != nil {
			return found{}, fmt.Errorf("queue %s: claim: %w", q.name, err)
		}
	}
	// An item is taken while it is claimed, or hidden (delayed).
	taken := make(map[string]bool, len(claimed)+len(held))
	for _, kv := range claimed {
		taken[strings.TrimPrefix(string(kv.Key), q.claims)] = true
	}
	for _, kv := range held {
		taken[strings.TrimPrefix(string(kv.Key), q.holds)] = true
	}
	var free []gateway.KeyValue
	for _, kv := range kvs {
		if !taken[strings.TrimPrefix(string(kv.Key), q.items)] {
			free = append(free, kv)
		}
	}
	if len(free) == 0 {
		return found{kind: queueEmpty, rev: r.Header.Revision}, nil
	}
	// A consumer takes one of the first claims+1 free items at random, so
	// that consumers racing for the head do not all collide; alone, it takes
	// the head.
	cand := free[rand.IntN(min(len(free), len(taken)+1))]
	key, ck := string(cand.Key), q.claimKeyOf(string(cand.Key))
	ak := q.attempts + strings.TrimPrefix(key, q.items)
	// Claim it if it is still there and unclaimed, count the delivery (the
	// attempts key's version), and read it, in one txn.
	token := strconv.FormatUint(rand.Uint64(), 36)
	t, err := q.c.Txn().If(
		gateway.CmpCreateRevision(key, gateway.Equal, cand.CreateRevision),
		gateway.CmpCreateRevision(ck, gateway.Equal, 0),
		gateway.CmpCreateRevision(q.holdKeyOf(key), gateway.Equal, 0),
	).Then(
		gateway.OpPut(ck, token, gateway.WithLease(l.ID())),
		gateway.OpPut(ak, ""),
		gateway.OpGet(key),
		gateway.OpGet(ak, gateway.WithKeysOnly()),
	).Commit(ctx)
	p := pendingClaim{l: l, key: key, ck: ck, ak: ak, token: token}
	switch {
	case errors.Is(err, gateway.ErrOutcomeUnknown):
		q.remember(p) // Claim settles it before anything else
		return found{kind: lookAgain}, nil
	case err != nil:
		return found{}, fmt.Errorf("queue %s: claim: %w", q.name, err)
	case !t.Succeeded:
		return found{kind: lookAgain}, nil
	}
	item, attempts := t.Responses[2].Get.Kvs[0], t.Responses[3].Get.Kvs[0].Version
	return q.deliver(ctx, p, item.Value, attempts, t.Header.Revision)
}

// deliver makes the Item of a claim that took effect at claimRev (gotItem), or
// moves the item to the dead letters if it was delivered too often
// (lookAgain). A dead-lettering whose outcome stays unknown is remembered, to
// be settled like a claim.
func (q *WorkQueue) deliver(ctx context.Context, p pendingClaim, val []byte, attempts, claimRev int64) (found, error) {
	it := &Item{q: q, Key: p.key, Value: val, Attempt: int(attempts), claimKey: p.ck, claimRev: claimRev, attemptsKey: p.ak}
	if it.Attempt <= q.maxAttempts {
		return found{kind: gotItem, item: it}, nil
	}
	// Delivered too often: to the dead letters, under the claim.
	err := it.finish(ctx, "dead-letter",
		gateway.OpPut(q.dead+strings.TrimPrefix(p.key, q.items), string(val)),
		gateway.OpDelete(p.key), gateway.OpDelete(p.ak), gateway.OpDelete(p.ck))
	if err != nil && !errors.Is(err, ErrClaimLost) {
		q.remember(p)
		return found{}, err
	}
	if err == nil {
		p.l.Logger().Warn("work item dead-lettered", "queue", q.name, "key", p.key, "deliveries", attempts)
	}
	return found{kind: lookAgain}, nil
}

func (q *WorkQueue) remember(p pendingClaim) {
	q.mu.Lock()
	q.pending = append(q.pending, p)
	q.mu.Unlock()
}

// settle learns the outcome of l's claims of unknown outcome: it delivers the
// item of one that took effect, and forgets those that did not (nonePending
// when none did). Those of ended leases are forgotten: their claims end with
// the lease. A claim it could not read stays remembered, and the error is
// returned.
func (q *WorkQueue) settle(ctx context.Context, l *lease.Lease) (found, error) {
	q.mu.Lock()
	var mine []pendingClaim
	kept := q.pending[:0]
	for _, p := range q.pending {
		switch {
		case p.l.Err() != nil:
		case p.l == l:
			mine = append(mine, p)
		default:
			kept = append(kept, p)
		}
	}
	clear(q.pending[len(kept):])
	q.pending = kept
	q.mu.Unlock()
	for i, p := range mine {
		r, err := q.c.Txn().Then(
			gateway.OpGet(p.ck),
			gateway.OpGet(p.key),
			gateway.OpGet(p.ak, gateway.WithKeysOnly()),
		).Commit(ctx)
		if err != nil {
			for _, p := range mine[i:] {
				q.remember(p)
			}
			return found{}, fmt.Errorf("queue %s: claim: a claim's %w, and reading it back failed: %w", q.name, gateway.ErrOutcomeUnknown, err)
		}
		claim, item, att := r.Responses[0].Get.Kvs, r.Responses[1].Get.Kvs, r.Responses[2].Get.Kvs
		if len(claim) == 0 || string(claim[0].Value) != p.token || claim[0].Lease != l.ID() || len(item) == 0 || len(att) == 0 {
			continue // it did not take effect, or its claim has ended since
		}
		f, err := q.deliver(ctx, p, item[0].Value, att[0].Version, claim[0].CreateRevision)
		if f.kind == gotItem || err != nil {
			for _, p := range mine[i+1:] {
				q.remember(p)
			}
			return f, err
		}
	}
	return found{kind: nonePending}, nil
}

// owned is the compare that holds while this delivery's claim lasts.
func (it *Item) owned() gateway.Cmp {
	return gateway.CmpCreateRevision(it.claimKey, gateway.Equal, it.claimRev)
}

// Ack removes the item: it is done. It fails with ErrClaimLost when the claim
// had ended; the item may then have been delivered to someone else. An Ack
// whose outcome is unknown is sent again (it is fenced by the claim) until ctx
// ends. After any other error the claim may still hold, and holds as long as
// the lease lives: call Ack again, or end the lease, or the item waits.
func (it *Item) Ack(ctx context.Context) error {
	return it.finish(ctx, "ack", gateway.OpDelete(it.Key), gateway.OpDelete(it.attemptsKey), gateway.OpDelete(it.claimKey))
}

// Nack gives the item back, in its place, with its attempts counted. It stays
// hidden for the queue's retry backoff (WithRetryBackoff; by default 1 s after
// the first delivery, doubling up to 5 minutes, with jitter) before it is
// delivered again. It fails with ErrClaimLost when the claim had ended.
func (it *Item) Nack(ctx context.Context) error {
	return it.NackAfter(ctx, it.q.retry.delay(it.Attempt))
}

// NackAfter gives the item back, hidden for d (none when d <= 0). The delay is
// kept by the server: a lease of that TTL holds the item back, so no client's
// clock decides when it comes back. etcd raises a TTL below its minimum (about
// two election timeouts) to that minimum.
func (it *Item) NackAfter(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return it.finish(ctx, "nack", gateway.OpDelete(it.claimKey))
	}
	id, err := it.q.holdLease(ctx, d)
	if err != nil {
		return fmt.Errorf("queue %s: nack %s: %w", it.q.name, it.Key, err)
	}
	return it.finish(ctx, "nack", gateway.OpDelete(it.claimKey),
		gateway.OpPut(it.q.holdKeyOf(it.Key), "", gateway.WithLease(id)))
}

func (it *Item) finish(ctx context.Context, what string, ops ...gateway.Op) error {
	r, unknown, err := fence.Commit(ctx, it.q.c.Txn().If(it.owned()).Then(ops...))
	switch {
	case err != nil:
		return fmt.Errorf("queue %s: %s %s: %w", it.q.name, what, it.Key, err)
	case !r.Succeeded && unknown != nil:
		// The claim is gone: by our earlier attempt, or because it ended.
		// Which one cannot be told.
		return fmt.Errorf("queue %s: %s %s: %w", it.q.name, what, it.Key, unknown)
	case !r.Succeeded:
		return fmt.Errorf("queue %s: %s %s: %w", it.q.name, what, it.Key, ErrClaimLost)
	}
	return nil
}

// DeadLetters returns the items that were delivered too often, with their
// values.
func (q *WorkQueue) DeadLetters(ctx context.Context) ([][]byte, error) {
	r, err := q.c.GetPrefix(ctx, q.dead)
	if err != nil {
		return nil, fmt.Errorf("queue %s: dead letters: %w", q.name, err)
	}
	out := make([][]byte, 0, len(r.Kvs))
	for _, kv := range r.Kvs {
		out = append(out, kv.Value)
	}
	return out, nil
}
