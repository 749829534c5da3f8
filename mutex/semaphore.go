package mutex

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/lease"
)

// Semaphore lets up to N holders in at once, in the order they asked. Each
// Semaphore object is one would-be holder; its key is <name>/<lease>_<uuid>, so
// many of them can share a lease. Every participant must use the same N.
//
// Waiting does not grow the work per release with the number of waiters: the
// first waiter watches deletions under the name, every later one watches only
// the waiter ahead of it, which marks its key (a put) when it gets in.
type Semaphore struct {
	k  *claim
	kd *kind
	n  int64
}

// NewSemaphore returns a Semaphore of n slots on name, held through l. n must
// be positive.
func NewSemaphore(l *lease.Lease, name string, n int64) (*Semaphore, error) {
	if n <= 0 {
		return nil, fmt.Errorf("mutex: semaphore size %d is not positive", n)
	}
	pfx := name + "/"
	s := &Semaphore{k: newClaim(l, fmt.Sprintf("%s%x_%s", pfx, l.ID(), uuid.NewString())), n: n}
	s.kd = &kind{
		first: []gateway.Op{firstUnder(pfx, n)},
		fast: func(res []gateway.OpResponse, rev int64) bool {
			for _, kv := range res[0].Get.Kvs {
				if kv.CreateRevision == rev {
					return true
				}
			}
			return false
		},
		// The server's count ignores the create-revision filter, so the place
		// in line comes from the first n+1 keys, and the one to wait for from
		// a second read.
		probe: func(rev int64) []gateway.Op { return []gateway.Op{firstUnder(pfx, n+1), lastBefore(pfx, rev)} },
		check: func(res []gateway.OpResponse, rev int64) verdict {
			place := int64(-1)
			for i, kv := range res[0].Get.Kvs {
				if kv.CreateRevision == rev {
					place = int64(i)
				}
			}
			switch {
			case place >= 0 && place < n:
				return verdict{admitted: true}
			case place == n: // first in line: any holder's release lets it in
				return verdict{key: pfx, prefix: true, filterPut: true}
			}
			ahead := res[1].Get.Kvs
			if len(ahead) == 0 { // everyone ahead left between the two reads' view: cannot be, but harmless
				return verdict{admitted: true}
			}
			// Further back: wait for the one ahead to leave or get in.
			return verdict{key: string(ahead[0].Key)}
		},
		admitted: func(ctx context.Context, k *claim, rev int64) error {
			// Tell the waiter behind: a put on our key wakes its watch.
			_, err := k.c.Txn().
				If(gateway.CmpCreateRevision(k.key, gateway.Equal, rev)).
				Then(gateway.OpPut(k.key, "", gateway.WithIgnoreLease())).
				Commit(ctx)
			if err != nil {
				return fmt.Errorf("mutex: marking %s: %w", k.key, err)
			}
			return nil
		},
	}
	return s, nil
}

// Acquire waits until a slot is held; see Mutex.Lock for ctx and lease endings.
func (s *Semaphore) Acquire(ctx context.Context) error { return s.k.acquire(ctx, s.kd, false) }

// TryAcquire takes a slot if one is free and nobody waits, and otherwise
// returns an error matching ErrLocked.
func (s *Semaphore) TryAcquire(ctx context.Context) error { return s.k.acquire(ctx, s.kd, true) }

// Release gives the slot back; see Mutex.Unlock for its errors.
func (s *Semaphore) Release(ctx context.Context) error { return s.k.release(ctx) }

// Key is this holder's key.
func (s *Semaphore) Key() string { return s.k.key }

// Token is the fencing token of the held slot (its key's create revision), 0
// when none is held.
func (s *Semaphore) Token() int64 { return s.k.token() }

// IsOwner is a compare that holds only while this Semaphore holds its slot.
func (s *Semaphore) IsOwner() gateway.Cmp { return s.k.isOwner() }

// Context ends when the held slot is lost or released; see Mutex.Context.
func (s *Semaphore) Context() context.Context { return s.k.context() }

// Done is Context().Done().
func (s *Semaphore) Done() <-chan struct{} { return s.k.context().Done() }
