package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
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
// Keys: items under <name>/items/<priority>/<sequence> (EnqueueTxn's add a
// suffix), claims under <name>/claims/, delivery counts under
// <name>/attempts/ (a key's version), holds of delayed items under
// <name>/holds/ (on leases whose TTL is the delay), an item's unique key and
// last error under <name>/meta/, unique keys under <name>/unique/, dead
// letters under <name>/dead/, waiting consumers under <name>/waiting/, the
// sequence at <name>/seq.
//
// Ordering: items are claimed by priority, then oldest first. A single
// consumer sees them in that order; an item given back (or whose consumer
// died) keeps its place and comes before newer ones. With many consumers, each
// claims in that order, but they finish in any order.
//
// Consumers that find nothing to claim wait in a line (keys under their
// leases, ordered by creation, like a lock's waiters). Only the first watches
// the queue, and it wakes only for a change that may free an item: a new
// item, a delay that ended, a claim given back or whose lease ended (not an
// Ack, another consumer's claim, or a Nack with a delay). When it claims, it
// leaves the line in the same request, which wakes the next one, who looks
// at the queue in turn. So an item wakes about two consumers, however many
// wait (Wakeups counts them); a consumer whose lease ends leaves the line
// with it.
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
	meta        string // <name>/meta/: an item's unique key and last error
	unique      string // <name>/unique/: a unique key, naming the item that has it
	line        string // <name>/waiting/: the line of consumers waiting for an item
	maxAttempts int
	retry       backoffPolicy
	wakeups     atomic.Int64

	mu      sync.Mutex
	pending []pendingClaim // claims of unknown outcome, not yet settled
	stale   []staleplace   // places in the line whose removal failed
}

// pendingClaim is a claim whose outcome is not known yet. Its token, the claim
// key's value, tells it from any other claim of the item.
type pendingClaim struct {
	l                      *lease.Lease
	key, ck, ak, mk, token string
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
		holds: name + "/holds/", meta: name + "/meta/", unique: name + "/unique/", line: name + "/waiting/",
		maxAttempts: DefaultMaxAttempts, retry: defaultRetry}
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

// ErrDuplicate: an enqueue WithUnique whose unique key another item has
// (waiting, delayed or claimed).
var ErrDuplicate = errors.New("queue: an item with this unique key waits or runs")

// Enqueue adds an item of priority prio (lower first). WithDelay keeps it
// hidden for a while; WithUnique refuses it (ErrDuplicate) while another item
// with the same unique key waits or runs.
func (q *WorkQueue) Enqueue(ctx context.Context, val string, prio uint16, opts ...EnqueueOption) error {
	return q.EnqueueBatch(ctx, []string{val}, prio, opts...)
}

// EnqueueBatch adds items of one priority in one transaction: all or none. See
// PriorityQueue.EnqueueBatch for the size limit (a delayed item takes two
// operations, a unique one three). WithDelay keeps them hidden for a while;
// WithUnique takes a batch of one item.
func (q *WorkQueue) EnqueueBatch(ctx context.Context, vals []string, prio uint16, opts ...EnqueueOption) error {
	x, err := q.extra(ctx, "enqueue", len(vals), opts)
	if err != nil || len(vals) == 0 {
		return err
	}
	return enqueue(ctx, q.c, q.items, q.seq, prio, vals, x)
}

// EnqueueTxn returns what enqueues vals inside the caller's own transaction:
// add the compares to its If and the operations to its Then, and the items
// exist if, and only if, that transaction commits (River's transactional
// enqueue: a job for a row that is written, never for one that is not).
//
// The items take their place after those enqueued before this call (it reads
// the queue's sequence), in the order of vals, without holding the sequence:
// other producers go on meanwhile, and the caller's transaction fails only for
// its own compares. WithUnique adds a compare that fails while another item
// has the unique key (read q.UniqueKey(key) in the Else branch to tell);
// WithDelay grants the hold's lease now (it expires unused if the transaction
// does not commit).
func (q *WorkQueue) EnqueueTxn(ctx context.Context, vals []string, prio uint16, opts ...EnqueueOption) ([]gateway.Cmp, []gateway.Op, error) {
	x, err := q.extra(ctx, "enqueue", len(vals), opts)
	if err != nil {
		return nil, nil, err
	}
	r, err := q.c.Get(ctx, q.seq)
	if err != nil {
		return nil, nil, fmt.Errorf("queue %s: enqueue: %w", q.name, err)
	}
	var next int64
	if len(r.Kvs) > 0 {
		if next, err = strconv.ParseInt(string(r.Kvs[0].Value), 10, 64); err != nil {
			return nil, nil, fmt.Errorf("queue %s: enqueue: sequence %s holds %q", q.name, q.seq, r.Kvs[0].Value)
		}
	}
	// After the last item enqueued so far ("…/<n>" < "…/<n>-…" < "…/<n+1>").
	tag := strconv.FormatUint(rand.Uint64(), 36)
	ops := make([]gateway.Op, 0, len(vals))
	for i, v := range vals {
		key := fmt.Sprintf("%s%05d/%020d-%s.%06d", q.items, prio, max(next-1, 0), tag, i)
		ops = append(ops, gateway.OpPut(key, v))
		if x.with != nil {
			ops = append(ops, x.with(key)...)
		}
	}
	return x.cmps, ops, nil
}

// UniqueKey is the key that holds the unique key u while an item has it; its
// value is the item's key.
func (q *WorkQueue) UniqueKey(u string) string { return q.unique + u }

// extra makes what an enqueue of n items with opts adds to its txn: a hold
// under a lease of the delay's TTL, a unique key and the item's metadata.
func (q *WorkQueue) extra(ctx context.Context, what string, n int, opts []EnqueueOption) (extra, error) {
	var o enqueueOptions
	for _, opt := range opts {
		opt(&o)
	}
	var x extra
	if o.unique != "" && n != 1 {
		return x, fmt.Errorf("queue %s: %s: %w: WithUnique takes one item, not %d", q.name, what, ErrInvalidArgument, n)
	}
	var hold int64
	if o.delay > 0 && n > 0 {
		id, err := q.holdLease(ctx, o.delay)
		if err != nil {
			return x, fmt.Errorf("queue %s: %s: %w", q.name, what, err)
		}
		hold = id
	}
	if hold == 0 && o.unique == "" {
		return x, nil
	}
	x.with = func(key string) []gateway.Op {
		id := strings.TrimPrefix(key, q.items)
		var ops []gateway.Op
		if hold != 0 {
			ops = append(ops, gateway.OpPut(q.holds+id, "", gateway.WithLease(hold)))
		}
		if o.unique != "" {
			ops = append(ops, gateway.OpPut(q.unique+o.unique, key), gateway.OpPut(q.meta+id, meta{Unique: o.unique}.encode()))
		}
		return ops
	}
	if o.unique != "" {
		uk := q.unique + o.unique
		x.cmps = []gateway.Cmp{gateway.CmpCreateRevision(uk, gateway.Equal, 0)}
		x.els = []gateway.Op{gateway.OpGet(uk, gateway.WithKeysOnly())}
		x.refused = func(t *gateway.TxnResponse) error {
			if len(t.Responses) > 0 && t.Responses[0].Get != nil && len(t.Responses[0].Get.Kvs) > 0 {
				return fmt.Errorf("queue %s: %s: unique key %q: %w", q.name, what, o.unique, ErrDuplicate)
			}
			return nil
		}
	}
	return x, nil
}

// Item is a claimed item.
type Item struct {
	q *WorkQueue
	// Key is the item's key; it stays the same across deliveries.
	Key string
	// Value is what was enqueued.
	Value []byte
	// Attempt counts this delivery: 1 the first time.
	Attempt int
	// Unique is the item's unique key (WithUnique), or "".
	Unique string
	// LastError is what the last Nack of the item said (WithError), or "".
	LastError string

	claimKey    string // the key that holds this delivery's claim, under the consumer's lease
	claimRev    int64  // the claim key's create revision: the claim's fence
	claimLease  int64  // the lease the claim key is under
	attemptsKey string // the key whose version counts the item's deliveries
}

// MaxClaim is the most items one ClaimN takes.
const MaxClaim = 64

// Claim waits for an unclaimed item and claims it under l, until ctx or the
// lease ends.
func (q *WorkQueue) Claim(ctx context.Context, l *lease.Lease) (*Item, error) {
	its, err := q.ClaimN(ctx, l, 1)
	if err != nil {
		return nil, err
	}
	return its[0], nil
}

// ClaimN waits for unclaimed items and claims up to n of them (1 to
// MaxClaim) under l, in one request, until ctx or the lease ends. It returns
// as soon as it has claimed at least one. Each item is claimed on its own
// terms (a nested transaction each), so items another consumer took at the
// same moment are only left out; two live consumers never hold one item.
func (q *WorkQueue) ClaimN(ctx context.Context, l *lease.Lease, n int) ([]*Item, error) {
	if n < 1 || n > MaxClaim {
		return nil, fmt.Errorf("queue %s: claim: %w: %d items (1 to %d)", q.name, ErrInvalidArgument, n, MaxClaim)
	}
	var p place // this call's place in the line of waiting consumers
	defer q.leave(l, &p)
	for {
		if err := l.Err(); err != nil {
			return nil, fmt.Errorf("queue %s: claim: %w", q.name, err)
		}
		f, err := q.settle(ctx, l)
		if err == nil && f.kind == nonePending {
			f, err = q.tryClaim(ctx, l, n, p.key)
			if f.lineLeft {
				p = place{}
			}
		}
		if err != nil {
			return nil, err
		}
		switch f.kind {
		case gotItem:
			return f.items, nil
		case queueEmpty:
			if err := q.wait(ctx, l, &p, f.rev); err != nil {
				return nil, fmt.Errorf("queue %s: claim: %w", q.name, err)
			}
			q.wakeups.Add(1)
		}
		// lookAgain: at once.
	}
}

// Wakeups counts how often a Claim through this WorkQueue, having found
// nothing to claim, woke up to look at the queue again: a gauge of how well
// waiting consumers are kept from waking for nothing.
func (q *WorkQueue) Wakeups() int64 { return q.wakeups.Load() }

// found is what one look at the queue found.
type found struct {
	kind     foundKind
	items    []*Item // gotItem: the claimed items
	rev      int64   // queueEmpty: the revision to wait for a change after
	lineLeft bool    // the look also removed the consumer's place in the line
}

type foundKind int

const (
	// gotItem: items are claimed; deliver them.
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

// tryClaim claims up to n of the first unclaimed items, if there are any. A
// consumer with a place in the line (line) gives it up in the same request.
func (q *WorkQueue) tryClaim(ctx context.Context, l *lease.Lease, n int, line string) (found, error) {
	r, err := q.c.Txn().Then(
		gateway.OpGet(q.claims, gateway.WithPrefix(), gateway.WithKeysOnly()),
		gateway.OpGet(q.items, gateway.WithPrefix(), gateway.WithLimit(window), gateway.WithKeysOnly()),
		gateway.OpGet(q.holds, gateway.WithPrefix(), gateway.WithKeysOnly()),
	).Commit(ctx)
	if err != nil {
		return found{}, fmt.Errorf("queue %s: claim: %w", q.name, err)
	}
	claimed, kvs, held := r.Responses[0].Get.Kvs, r.Responses[1].Get.Kvs, r.Responses[2].Get.Kvs
	if busy := len(claimed) + len(held); busy+n > window { // more claimed and hidden items than the window: read further
		if kvs, _, err = head(ctx, q.c, q.items, 2*int64(busy+n)); err != nil {
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
	cands := pick(free, n, len(taken))
	// Claim each if it is still there, unclaimed and not held, count the
	// delivery (the attempts key's version), and read it: a nested txn per
	// item, so that one lost to another consumer leaves the others claimed.
	subs := make([]gateway.Op, 0, len(cands)+1)
	ps := make([]pendingClaim, len(cands))
	for i, cand := range cands {
		key := string(cand.Key)
		id := strings.TrimPrefix(key, q.items)
		ps[i] = pendingClaim{l: l, key: key, ck: q.claims + id, ak: q.attempts + id, mk: q.meta + id,
			token: strconv.FormatUint(rand.Uint64(), 36)}
		subs = append(subs, gateway.OpTxn([]gateway.Cmp{
			gateway.CmpCreateRevision(key, gateway.Equal, cand.CreateRevision),
			gateway.CmpCreateRevision(ps[i].ck, gateway.Equal, 0),
			gateway.CmpCreateRevision(q.holds+id, gateway.Equal, 0),
		}, []gateway.Op{
			gateway.OpPut(ps[i].ck, ps[i].token, gateway.WithLease(l.ID())),
			gateway.OpPut(ps[i].ak, ""),
			gateway.OpGet(key),
			gateway.OpGet(ps[i].ak, gateway.WithKeysOnly()),
			gateway.OpGet(ps[i].mk),
		}, nil))
	}
	if line != "" {
		subs = append(subs, gateway.OpDelete(line))
	}
	t, err := q.c.Txn().Then(subs...).Commit(ctx)
	switch {
	case errors.Is(err, gateway.ErrOutcomeUnknown):
		for _, p := range ps {
			q.remember(p) // Claim settles them before anything else
		}
		return found{kind: lookAgain}, nil
	case err != nil:
		return found{}, fmt.Errorf("queue %s: claim: %w", q.name, err)
	}
	f := found{kind: lookAgain, lineLeft: line != ""}
	for i, p := range ps {
		sub := t.Responses[i].Txn
		if sub == nil || !sub.Succeeded {
			continue
		}
		it, err := q.deliver(ctx, p, sub.Responses[2].Get.Kvs[0].Value, sub.Responses[3].Get.Kvs[0].Version, sub.Responses[4].Get.Kvs, t.Header.Revision)
		if err != nil {
			// The items already claimed stay claimed until the lease
			// ends; hand them over rather than lose track of them.
			if len(f.items) > 0 {
				break
			}
			return found{}, err
		}
		if it != nil {
			f.items = append(f.items, it)
		}
	}
	if len(f.items) > 0 {
		f.kind = gotItem
	}
	return f, nil
}

// pick chooses up to n of the free items (in queue order) for a consumer to
// claim. Alone (nothing taken), it takes the first n. Otherwise it takes n at
// random among the first taken+n, so that consumers racing for the head do not
// all collide, and returns them in queue order.
func pick(free []gateway.KeyValue, n, taken int) []gateway.KeyValue {
	pool := free[:min(len(free), taken+n)]
	if len(pool) <= n {
		return pool
	}
	idx := rand.Perm(len(pool))[:n]
	slices.Sort(idx)
	out := make([]gateway.KeyValue, n)
	for i, j := range idx {
		out[i] = pool[j]
	}
	return out
}

// deliver makes the Item of a claim that took effect at claimRev, or moves
// the item to the dead letters if it was delivered too often (nil Item). A
// dead-lettering whose outcome stays unknown is remembered, to be settled
// like a claim.
func (q *WorkQueue) deliver(ctx context.Context, p pendingClaim, val []byte, attempts int64, meta []gateway.KeyValue, claimRev int64) (*Item, error) {
	it := &Item{q: q, Key: p.key, Value: val, Attempt: int(attempts), claimKey: p.ck, claimRev: claimRev, claimLease: p.l.ID(), attemptsKey: p.ak}
	if len(meta) > 0 {
		m := parseMeta(meta[0].Value)
		it.Unique, it.LastError = m.Unique, m.Error
	}
	if it.Attempt <= q.maxAttempts {
		return it, nil
	}
	// Delivered too often: to the dead letters, under the claim. The item's
	// metadata (its last error) stays, for the dead letter.
	ops := append([]gateway.Op{
		gateway.OpPut(q.dead+strings.TrimPrefix(p.key, q.items), string(val)),
		gateway.OpDelete(p.key), gateway.OpDelete(p.ak), gateway.OpDelete(p.ck),
	}, it.releaseUnique()...)
	err := q.finish(ctx, "dead-letter", []*Item{it}, func(*Item) []gateway.Op { return ops })
	if err != nil && !errors.Is(err, ErrClaimLost) {
		q.remember(p)
		return nil, err
	}
	if err == nil {
		p.l.Logger().Warn("work item dead-lettered", "queue", q.name, "key", p.key, "deliveries", attempts, "last_error", it.LastError)
	}
	return nil, nil
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
	mine := takeMine(&q.pending, func(p pendingClaim) *lease.Lease { return p.l }, l)
	q.mu.Unlock()
	for i, p := range mine {
		r, err := q.c.Txn().Then(
			gateway.OpGet(p.ck),
			gateway.OpGet(p.key),
			gateway.OpGet(p.ak, gateway.WithKeysOnly()),
			gateway.OpGet(p.mk),
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
		it, err := q.deliver(ctx, p, item[0].Value, att[0].Version, r.Responses[3].Get.Kvs, claim[0].CreateRevision)
		if it != nil || err != nil {
			for _, p := range mine[i+1:] {
				q.remember(p)
			}
			if err != nil {
				return found{}, err
			}
			return found{kind: gotItem, items: []*Item{it}}, nil
		}
	}
	return found{kind: nonePending}, nil
}

// takeMine removes from list the entries of l, which it returns, and those of
// leases that ended, which are over: a lease's keys end with it.
func takeMine[T any](list *[]T, leaseOf func(T) *lease.Lease, l *lease.Lease) []T {
	var mine []T
	kept := (*list)[:0]
	for _, e := range *list {
		switch el := leaseOf(e); {
		case el.Err() != nil:
		case el == l:
			mine = append(mine, e)
		default:
			kept = append(kept, e)
		}
	}
	clear((*list)[len(kept):])
	*list = kept
	return mine
}

// owned is the compare that holds while this delivery's claim lasts.
func (it *Item) owned() gateway.Cmp {
	return gateway.CmpCreateRevision(it.claimKey, gateway.Equal, it.claimRev)
}

// releaseUnique is the op that frees the item's unique key, if it still names
// this item.
func (it *Item) releaseUnique() []gateway.Op {
	if it.Unique == "" {
		return nil
	}
	uk := it.q.unique + it.Unique
	return []gateway.Op{gateway.OpTxn(
		[]gateway.Cmp{gateway.CmpValue(uk, gateway.Equal, it.Key)},
		[]gateway.Op{gateway.OpDelete(uk)}, nil)}
}

// ackOps are the operations that remove a done item.
func (it *Item) ackOps() []gateway.Op {
	return append([]gateway.Op{gateway.OpDelete(it.Key), gateway.OpDelete(it.attemptsKey), gateway.OpDelete(it.claimKey),
		gateway.OpDelete(it.q.meta + strings.TrimPrefix(it.Key, it.q.items))}, it.releaseUnique()...)
}

// Ack removes the item: it is done. It fails with ErrClaimLost when the claim
// had ended; the item may then have been delivered to someone else. An Ack
// whose outcome is unknown is sent again (it is fenced by the claim) until ctx
// ends; a resend that finds the claim gone while its lease lives means the
// earlier attempt took effect, and Ack returns nil. After any other error the
// claim may still hold, and holds as long as the lease lives: call Ack again,
// or end the lease, or the item waits.
func (it *Item) Ack(ctx context.Context) error {
	return it.q.AckAll(ctx, []*Item{it})
}

// AckAll acknowledges items in one request (in requests of up to 64 items),
// each on its own claim. When some fail, the error is a *BatchError with each
// item's error (matching ErrClaimLost, or gateway.ErrOutcomeUnknown when an
// earlier attempt may have acknowledged it), and the others are done; for a
// single item, that item's error. An item whose claim a resent request finds
// gone counts as done while the claim's lease lives: only the earlier attempt
// can have removed the claim then.
func (q *WorkQueue) AckAll(ctx context.Context, items []*Item) error {
	return q.finish(ctx, "ack", items, (*Item).ackOps)
}

// NackOption shapes a Nack.
type NackOption func(*nackOptions)

type nackOptions struct {
	errMsg string
	set    bool
}

// WithError records why the delivery failed: the next delivery's
// Item.LastError, and a dead letter's, and what Items lists.
func WithError(err error) NackOption {
	return func(o *nackOptions) {
		if err != nil {
			o.errMsg, o.set = err.Error(), true
		}
	}
}

// Nack gives the item back, in its place, with its attempts counted. It stays
// hidden for the queue's retry backoff (WithRetryBackoff; by default 1 s after
// the first delivery, doubling up to 5 minutes, with jitter) before it is
// delivered again. It fails with ErrClaimLost when the claim had ended.
func (it *Item) Nack(ctx context.Context, opts ...NackOption) error {
	return it.NackAfter(ctx, it.q.retry.delay(it.Attempt), opts...)
}

// NackAfter gives the item back, hidden for d (none when d <= 0). The delay is
// kept by the server: a lease of that TTL holds the item back, so no client's
// clock decides when it comes back. etcd raises a TTL below its minimum (about
// two election timeouts) to that minimum.
func (it *Item) NackAfter(ctx context.Context, d time.Duration, opts ...NackOption) error {
	return it.q.nack(ctx, []*Item{it}, func(*Item) time.Duration { return d }, opts)
}

// NackAll gives items back in one request (in requests of up to 64 items),
// each hidden for the retry backoff of its own attempt; errors as AckAll's.
func (q *WorkQueue) NackAll(ctx context.Context, items []*Item, opts ...NackOption) error {
	return q.nack(ctx, items, func(it *Item) time.Duration { return q.retry.delay(it.Attempt) }, opts)
}

func (q *WorkQueue) nack(ctx context.Context, items []*Item, delay func(*Item) time.Duration, opts []NackOption) error {
	var o nackOptions
	for _, opt := range opts {
		opt(&o)
	}
	// One hold lease per whole-second TTL.
	ttls := make(map[*Item]int64, len(items))
	leases := map[int64]int64{}
	for _, it := range items {
		if d := delay(it); d > 0 {
			ttl := holdTTL(d)
			ttls[it] = ttl
			if _, ok := leases[ttl]; !ok {
				r, err := q.c.Grant(ctx, ttl)
				if err != nil {
					return fmt.Errorf("queue %s: nack: %w", q.name, err)
				}
				leases[ttl] = r.ID
			}
		}
	}
	return q.finish(ctx, "nack", items, func(it *Item) []gateway.Op {
		id := strings.TrimPrefix(it.Key, q.items)
		ops := []gateway.Op{gateway.OpDelete(it.claimKey)}
		if ttl, ok := ttls[it]; ok {
			ops = append(ops, gateway.OpPut(q.holds+id, "", gateway.WithLease(leases[ttl])))
		}
		if o.set {
			ops = append(ops, gateway.OpPut(q.meta+id, meta{Unique: it.Unique, Error: o.errMsg}.encode()))
		}
		return ops
	})
}

// finishBatch is how many items one request of AckAll or NackAll carries.
const finishBatch = 64

// BatchError is the error of AckAll or NackAll when some items failed.
// errors.Is and errors.As see each item's error.
type BatchError struct {
	// Errs holds one error per item passed, in their order: nil for an item
	// that is done.
	Errs []error
}

// Error lists the items that failed, with their errors.
func (e *BatchError) Error() string {
	var msgs []string
	for _, err := range e.Errs {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	return fmt.Sprintf("%d of %d items failed: %s", len(msgs), len(e.Errs), strings.Join(msgs, "; "))
}

// Unwrap returns the items' errors.
func (e *BatchError) Unwrap() []error {
	var errs []error
	for _, err := range e.Errs {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// finish applies each item's ops on its own claim (a nested txn each), in
// requests of finishBatch. A single item's error is returned as it is; for
// more, a *BatchError.
func (q *WorkQueue) finish(ctx context.Context, what string, items []*Item, ops func(*Item) []gateway.Op) error {
	errs := make([]error, len(items))
	failed := 0
	for from := 0; from < len(items); from += finishBatch {
		batch := items[from:min(len(items), from+finishBatch)]
		subs := make([]gateway.Op, len(batch))
		for i, it := range batch {
			subs[i] = gateway.OpTxn([]gateway.Cmp{it.owned()}, ops(it), nil)
		}
		r, unknown, err := fence.Commit(ctx, q.c.Txn().Then(subs...))
		// Whether a claim's lease lives, asked once per lease, after this
		// request's compares: an answer must come later than the compare it
		// explains, so a later request asks again.
		alive := map[int64]bool{}
		for i, it := range batch {
			var e error
			switch {
			case err != nil:
				e = err
			case r.Responses[i].Txn != nil && r.Responses[i].Txn.Succeeded:
				continue
			case unknown != nil:
				// The claim is gone: by our earlier attempt, or because it
				// ended with its lease.
				lives, asked := alive[it.claimLease]
				if !asked {
					lives = q.leaseLives(ctx, it.claimLease)
					alive[it.claimLease] = lives
				}
				if lives {
					continue // not with its lease: the earlier attempt took effect
				}
				e = unknown
			default:
				e = ErrClaimLost
			}
			errs[from+i] = fmt.Errorf("queue %s: %s %s: %w", q.name, what, it.Key, e)
			failed++
		}
	}
	switch {
	case failed == 0:
		return nil
	case len(items) == 1:
		return errs[0]
	}
	return &BatchError{Errs: errs}
}

// leaseLives says whether the server holds lease id. A claim key under a lease
// that lives was not deleted by the lease's end; nothing but the claim's own
// Ack, Nack or dead-lettering deletes it otherwise. The leader answers after it
// has applied what it has committed, so a lease that lives now lived when an
// earlier compare found the claim gone. Any error, a lease not found
// included, says no: the outcome then stays unknown.
func (q *WorkQueue) leaseLives(ctx context.Context, id int64) bool {
	_, err := q.c.TimeToLive(ctx, id)
	return err == nil
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
