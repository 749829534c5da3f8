package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/etcdgw/etcdgw/gateway"
)

// ErrNotFound: Requeue of a dead letter that is not there (requeued or
// purged already, or never dead).
var ErrNotFound = errors.New("queue: no such item")

// Counts are a work queue's items by state, read at one revision.
type Counts struct {
	// Waiting items can be claimed now.
	Waiting int64
	// Delayed items are hidden until their delay (WithDelay, Nack's backoff)
	// has passed.
	Delayed int64
	// Claimed items are held by a consumer (being worked).
	Claimed int64
	// Dead letters were delivered too often without an Ack.
	Dead int64
	// Revision is the store revision the counts were read at.
	Revision int64
}

// Counts counts the queue's items by state, in one read.
func (q *WorkQueue) Counts(ctx context.Context) (Counts, error) {
	r, err := q.c.Txn().Then(
		gateway.OpGet(q.items, gateway.WithPrefix(), gateway.WithCountOnly()),
		gateway.OpGet(q.claims, gateway.WithPrefix(), gateway.WithCountOnly()),
		gateway.OpGet(q.dead, gateway.WithPrefix(), gateway.WithCountOnly()),
		gateway.OpGet(q.holds, gateway.WithPrefix(), gateway.WithCountOnly()),
	).Commit(ctx)
	if err != nil {
		return Counts{}, fmt.Errorf("queue %s: counts: %w", q.name, err)
	}
	items, claimed, delayed := r.Responses[0].Get.Count, r.Responses[1].Get.Count, r.Responses[3].Get.Count
	// A claim or a hold goes with its item (Ack and dead-lettering delete
	// them in one txn; a claim skips a held item; Nack swaps the claim for a
	// hold in one txn), so the claimed and the delayed are among the items,
	// apart.
	return Counts{Waiting: items - claimed - delayed, Delayed: delayed, Claimed: claimed,
		Dead: r.Responses[2].Get.Count, Revision: r.Header.Revision}, nil
}

// ItemInfo is one item as Items and Peek see it.
type ItemInfo struct {
	// Key is the item's key, as Item.Key.
	Key string
	// Value is what was enqueued.
	Value []byte
	// Priority is the item's priority (lower first).
	Priority uint16
	// Attempts counts its deliveries so far.
	Attempts int
	// Claimant is the lease ID of the consumer that holds it, or 0 while it
	// waits.
	Claimant int64
	// Delayed reports an item hidden until its delay has passed.
	Delayed bool
	// Unique is its unique key (WithUnique), or "".
	Unique string
	// LastError is what its last Nack said (WithError), or "".
	LastError string
}

// Items lists up to limit items (at most 1000) in delivery order, from the
// one after the key after ("" starts at the head), read at one revision. It
// returns the key to pass as after for the next page, or "" after the last.
func (q *WorkQueue) Items(ctx context.Context, after string, limit int) ([]ItemInfo, string, error) {
	limit = pageSize(limit)
	from := q.items
	if after != "" {
		if !strings.HasPrefix(after, q.items) {
			return nil, "", fmt.Errorf("%w: %q is not a key of queue %s", ErrInvalidArgument, after, q.name)
		}
		from = after + "\x00"
	}
	end := string(gateway.PrefixEnd([]byte(q.items)))
	r, err := q.c.Get(ctx, from, gateway.WithRange(end), gateway.WithLimit(int64(limit)))
	if err != nil {
		return nil, "", fmt.Errorf("queue %s: items: %w", q.name, err)
	}
	if len(r.Kvs) == 0 {
		return nil, "", nil
	}
	// The claims and delivery counts of this page's items, at the same
	// revision: their keys have the same suffixes, in the same order.
	first := strings.TrimPrefix(string(r.Kvs[0].Key), q.items)
	last := strings.TrimPrefix(string(r.Kvs[len(r.Kvs)-1].Key), q.items) + "\x00"
	t, err := q.c.Txn().Then(
		gateway.OpGet(q.claims+first, gateway.WithRange(q.claims+last), gateway.WithRev(r.Header.Revision)),
		gateway.OpGet(q.attempts+first, gateway.WithRange(q.attempts+last), gateway.WithKeysOnly(), gateway.WithRev(r.Header.Revision)),
		gateway.OpGet(q.holds+first, gateway.WithRange(q.holds+last), gateway.WithKeysOnly(), gateway.WithRev(r.Header.Revision)),
		gateway.OpGet(q.meta+first, gateway.WithRange(q.meta+last), gateway.WithRev(r.Header.Revision)),
	).Commit(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("queue %s: items: %w", q.name, err)
	}
	claimant := map[string]int64{}
	for _, kv := range t.Responses[0].Get.Kvs {
		claimant[strings.TrimPrefix(string(kv.Key), q.claims)] = kv.Lease
	}
	attempts := map[string]int64{}
	for _, kv := range t.Responses[1].Get.Kvs {
		attempts[strings.TrimPrefix(string(kv.Key), q.attempts)] = kv.Version
	}
	delayed := map[string]bool{}
	for _, kv := range t.Responses[2].Get.Kvs {
		delayed[strings.TrimPrefix(string(kv.Key), q.holds)] = true
	}
	metas := map[string]meta{}
	for _, kv := range t.Responses[3].Get.Kvs {
		metas[strings.TrimPrefix(string(kv.Key), q.meta)] = parseMeta(kv.Value)
	}
	out := make([]ItemInfo, 0, len(r.Kvs))
	for _, kv := range r.Kvs {
		suffix := strings.TrimPrefix(string(kv.Key), q.items)
		m := metas[suffix]
		out = append(out, ItemInfo{Key: string(kv.Key), Value: kv.Value, Priority: priorityOf(suffix),
			Attempts: int(attempts[suffix]), Claimant: claimant[suffix], Delayed: delayed[suffix],
			Unique: m.Unique, LastError: m.Error})
	}
	next := ""
	if r.More {
		next = out[len(out)-1].Key
	}
	return out, next, nil
}

// priorityOf reads the priority from an item key's suffix "<priority>/<seq>".
func priorityOf(suffix string) uint16 {
	p, _, _ := strings.Cut(suffix, "/")
	n, _ := strconv.ParseUint(p, 10, 16)
	return uint16(n)
}

func pageSize(limit int) int {
	if limit <= 0 || limit > 1000 {
		return 1000
	}
	return limit
}

// Peek returns the first waiting item (neither claimed nor delayed), the one
// a lone consumer's Claim would take, without claiming it; nil when none
// waits.
func (q *WorkQueue) Peek(ctx context.Context) (*ItemInfo, error) {
	after := ""
	for {
		page, next, err := q.Items(ctx, after, 100)
		if err != nil {
			return nil, err
		}
		for i := range page {
			if page[i].Claimant == 0 && !page[i].Delayed {
				return &page[i], nil
			}
		}
		if next == "" {
			return nil, nil
		}
		after = next
	}
}

// DeadLetter is an item that was delivered too often without an Ack.
type DeadLetter struct {
	// Key is the dead letter's key: pass it to Requeue.
	Key string
	// Value is what was enqueued.
	Value []byte
	// LastError is what its last Nack said (WithError), or "".
	LastError string
}

// Dead lists up to limit dead letters (at most 1000) from the one after the
// key after ("" from the first), and returns the key to pass for the next
// page, or "" after the last.
func (q *WorkQueue) Dead(ctx context.Context, after string, limit int) ([]DeadLetter, string, error) {
	from := q.dead
	if after != "" {
		if !strings.HasPrefix(after, q.dead) {
			return nil, "", fmt.Errorf("%w: %q is not a dead letter of queue %s", ErrInvalidArgument, after, q.name)
		}
		from = after + "\x00"
	}
	r, err := q.c.Get(ctx, from, gateway.WithRange(string(gateway.PrefixEnd([]byte(q.dead)))), gateway.WithLimit(int64(pageSize(limit))))
	if err != nil {
		return nil, "", fmt.Errorf("queue %s: dead letters: %w", q.name, err)
	}
	if len(r.Kvs) == 0 {
		return nil, "", nil
	}
	// Their metadata, at the same revision (the same suffixes, in order).
	first := strings.TrimPrefix(string(r.Kvs[0].Key), q.dead)
	last := strings.TrimPrefix(string(r.Kvs[len(r.Kvs)-1].Key), q.dead) + "\x00"
	m, err := q.c.Get(ctx, q.meta+first, gateway.WithRange(q.meta+last), gateway.WithRev(r.Header.Revision))
	if err != nil {
		return nil, "", fmt.Errorf("queue %s: dead letters: %w", q.name, err)
	}
	metas := map[string]meta{}
	for _, kv := range m.Kvs {
		metas[strings.TrimPrefix(string(kv.Key), q.meta)] = parseMeta(kv.Value)
	}
	out := make([]DeadLetter, 0, len(r.Kvs))
	for _, kv := range r.Kvs {
		out = append(out, DeadLetter{Key: string(kv.Key), Value: kv.Value,
			LastError: metas[strings.TrimPrefix(string(kv.Key), q.dead)].Error})
	}
	next := ""
	if r.More {
		next = out[len(out)-1].Key
	}
	return out, next, nil
}

// Requeue puts the dead letter key back in the queue, in its old place, with
// its deliveries counted from zero. It fails with ErrNotFound when the dead
// letter is not there.
func (q *WorkQueue) Requeue(ctx context.Context, key string) error {
	if !strings.HasPrefix(key, q.dead) {
		return fmt.Errorf("%w: %q is not a dead letter of queue %s", ErrInvalidArgument, key, q.name)
	}
	r, err := q.c.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("queue %s: requeue: %w", q.name, err)
	}
	if len(r.Kvs) == 0 {
		return fmt.Errorf("queue %s: requeue %s: %w", q.name, key, ErrNotFound)
	}
	n, err := q.requeue(ctx, r.Kvs)
	if err == nil && n == 0 {
		err = fmt.Errorf("queue %s: requeue %s: %w", q.name, key, ErrNotFound)
	}
	return err
}

// RequeueAll puts every dead letter back in the queue and returns how many.
func (q *WorkQueue) RequeueAll(ctx context.Context) (int, error) {
	total := 0
	for {
		r, err := q.c.Get(ctx, q.dead, gateway.WithPrefix(), gateway.WithLimit(requeueBatch))
		if err != nil {
			return total, fmt.Errorf("queue %s: requeue: %w", q.name, err)
		}
		if len(r.Kvs) == 0 {
			return total, nil
		}
		n, err := q.requeue(ctx, r.Kvs)
		total += n
		if err != nil {
			return total, err
		}
	}
}

// requeueBatch is how many dead letters RequeueAll reads at a time.
const requeueBatch = 100

// requeue moves the dead letters kvs (as read) back, each only if it is
// unchanged since: one txn per letter, so that one requeued meanwhile does
// not hold the others back. It returns how many it moved.
func (q *WorkQueue) requeue(ctx context.Context, kvs []gateway.KeyValue) (int, error) {
	n := 0
	for _, kv := range kvs {
		suffix := strings.TrimPrefix(string(kv.Key), q.dead)
		r, err := q.c.Txn().
			If(gateway.CmpModRevision(string(kv.Key), gateway.Equal, kv.ModRevision)).
			Then(gateway.OpPut(q.items+suffix, string(kv.Value)), gateway.OpDelete(string(kv.Key))).
			Commit(ctx)
		if err != nil {
			return n, fmt.Errorf("queue %s: requeue %s: %w", q.name, kv.Key, err)
		}
		if r.Succeeded {
			n++
		}
	}
	return n, nil
}

// Purge deletes every dead letter, with its metadata, and returns how many.
func (q *WorkQueue) Purge(ctx context.Context) (int, error) {
	total := 0
	for {
		r, err := q.c.Get(ctx, q.dead, gateway.WithPrefix(), gateway.WithKeysOnly(), gateway.WithLimit(requeueBatch))
		if err != nil {
			return total, fmt.Errorf("queue %s: purge: %w", q.name, err)
		}
		if len(r.Kvs) == 0 {
			return total, nil
		}
		ops := make([]gateway.Op, 0, len(r.Kvs))
		for _, kv := range r.Kvs {
			suffix := strings.TrimPrefix(string(kv.Key), q.dead)
			// A letter requeued meanwhile keeps its metadata.
			ops = append(ops, gateway.OpTxn(
				[]gateway.Cmp{gateway.CmpModRevision(string(kv.Key), gateway.Equal, kv.ModRevision)},
				[]gateway.Op{gateway.OpDelete(string(kv.Key)), gateway.OpDelete(q.meta + suffix)}, nil))
		}
		t, err := q.c.Txn().Then(ops...).Commit(ctx)
		if err != nil {
			return total, fmt.Errorf("queue %s: purge: %w", q.name, err)
		}
		for _, resp := range t.Responses {
			if resp.Txn != nil && resp.Txn.Succeeded {
				total++
			}
		}
	}
}
