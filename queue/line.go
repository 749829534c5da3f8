package queue

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/await"
	"github.com/etcdgw/etcdgw/lease"
)

// place is a waiting consumer's place in the line: its key, under the
// consumer's lease, and the key's create revision.
type place struct {
	key   string
	rev   int64
	first bool // nobody is ahead: it watches the queue
}

// staleplace is a place whose removal failed, to be removed by the next
// ClaimN under the same lease.
type staleplace struct {
	l   *lease.Lease
	key string
}

// wait waits, in the line, until the queue may have an item to claim after
// rev (the revision of the look that found none). A consumer not yet in the
// line joins it first. The first in line waits for a change that frees an
// item; the others wait for the one ahead to leave.
func (q *WorkQueue) wait(ctx context.Context, l *lease.Lease, p *place, rev int64) error {
	if p.key == "" {
		if err := q.join(ctx, l, p); err != nil {
			return err
		}
	}
	for !p.first {
		ahead, at, err := q.ahead(ctx, p)
		if err != nil {
			return err
		}
		if ahead == "" {
			// First now: the queue may have changed while this consumer
			// waited behind others; look at it before waiting on it.
			p.first = true
			return nil
		}
		if err := await.Change(ctx, q.c, ahead, at, l, gateway.WithFilterPut()); err != nil {
			return err
		}
	}
	return await.Change(ctx, q.c, q.name+"/", rev, l, gateway.WithPrefix(), gateway.WithMatch(q.frees))
}

// join puts the consumer at the end of the line, and reads who is ahead.
func (q *WorkQueue) join(ctx context.Context, l *lease.Lease, p *place) error {
	q.cleanStale(ctx, l)
	key := q.line + strconv.FormatInt(l.ID(), 16) + "-" + strconv.FormatUint(rand.Uint64(), 36)
	r, err := q.c.Txn().Then(
		gateway.OpPut(key, "", gateway.WithLease(l.ID())),
		gateway.OpGet(q.line, gateway.WithPrefix(), gateway.WithKeysOnly(),
			gateway.WithSort(gateway.SortByCreateRevision, gateway.SortDescend), gateway.WithLimit(2)),
	).Commit(ctx)
	if err != nil {
		// The put may have taken effect: remove it later if so.
		q.forget(l, key)
		return err
	}
	*p = place{key: key, rev: r.Header.Revision}
	// The two newest places: this one, and the one just ahead if any.
	p.first = len(r.Responses[1].Get.Kvs) < 2
	return nil
}

// ahead returns the key of the consumer just ahead of p in the line ("" when
// p is first), and the revision it was read at.
func (q *WorkQueue) ahead(ctx context.Context, p *place) (string, int64, error) {
	r, err := q.c.Get(ctx, q.line, gateway.WithPrefix(), gateway.WithKeysOnly(), gateway.WithMaxCreateRev(p.rev-1),
		gateway.WithSort(gateway.SortByCreateRevision, gateway.SortDescend), gateway.WithLimit(1))
	if err != nil {
		return "", 0, err
	}
	if len(r.Kvs) == 0 {
		return "", r.Header.Revision, nil
	}
	return string(r.Kvs[0].Key), r.Header.Revision, nil
}

// leave removes the consumer's place, if it still has one, when ClaimN
// returns. A place left behind would hold the consumers behind it back for as
// long as the lease lives, so the removal outlives ctx (for a few seconds);
// one that fails is remembered and tried again by the next ClaimN under the
// lease. A lease that ends takes the place with it.
func (q *WorkQueue) leave(l *lease.Lease, p *place) {
	if p.key == "" || l.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := q.c.Delete(ctx, p.key); err != nil {
		q.forget(l, p.key)
	}
}

func (q *WorkQueue) forget(l *lease.Lease, key string) {
	q.mu.Lock()
	q.stale = append(q.stale, staleplace{l, key})
	q.mu.Unlock()
}

// cleanStale removes the places of l whose removal failed earlier.
func (q *WorkQueue) cleanStale(ctx context.Context, l *lease.Lease) {
	q.mu.Lock()
	mine := takeMine(&q.stale, func(s staleplace) *lease.Lease { return s.l }, l)
	q.mu.Unlock()
	for _, s := range mine {
		if _, err := q.c.Delete(ctx, s.key); err != nil {
			q.forget(l, s.key)
		}
	}
}

// frees reports whether e, with the other changes of its revision, may have
// freed an item: a new item (not one delayed in the same txn), a hold that
// ended, or a claim that ended without its item (not an Ack or a
// dead-lettering, which delete the item too, nor a Nack that puts a hold).
func (q *WorkQueue) frees(e *gateway.Event, same []gateway.Event) bool {
	k := string(e.Kv.Key)
	switch {
	case e.Type == gateway.EventPut && strings.HasPrefix(k, q.items):
		id := k[len(q.items):]
		return !has(same, gateway.EventPut, q.holds+id)
	case e.Type == gateway.EventDelete && strings.HasPrefix(k, q.holds):
		return true
	case e.Type == gateway.EventDelete && strings.HasPrefix(k, q.claims):
		id := k[len(q.claims):]
		return !has(same, gateway.EventDelete, q.items+id) && !has(same, gateway.EventPut, q.holds+id)
	}
	return false
}

func has(evs []gateway.Event, t gateway.EventType, key string) bool {
	for i := range evs {
		if evs[i].Type == t && string(evs[i].Kv.Key) == key {
			return true
		}
	}
	return false
}

// meta is what an item's metadata key holds.
type meta struct {
	Unique string `json:"unique,omitempty"`
	Error  string `json:"error,omitempty"`
}

func (m meta) encode() string {
	b, _ := json.Marshal(m)
	return string(b)
}

// parseMeta reads metadata; anything unreadable reads as none.
func parseMeta(b []byte) meta {
	var m meta
	_ = json.Unmarshal(b, &m)
	return m
}
