package mutex

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/claim"
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
	k  *claim.Claim
	kd *claim.Kind
	n  int64
}

// NewSemaphore returns a Semaphore of n slots on name, held through l. n must
// be positive.
func NewSemaphore(l *lease.Lease, name string, n int64) (*Semaphore, error) {
	if n <= 0 {
		return nil, fmt.Errorf("mutex: semaphore size %d is not positive", n)
	}
	pfx := name + "/"
	s := &Semaphore{k: claim.New(l, fmt.Sprintf("%s%x_%s", pfx, l.ID(), uuid.NewString())), n: n}
	s.kd = &claim.Kind{
		First: []gateway.Op{claim.FirstUnder(pfx, n)},
		Fast: func(res []gateway.OpResponse, rev int64) bool {
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
		Probe: func(rev int64) []gateway.Op {
			return []gateway.Op{claim.FirstUnder(pfx, n+1), claim.LastBefore(pfx, rev)}
		},
		Check: func(res []gateway.OpResponse, rev int64) claim.Verdict {
			place := int64(-1)
			for i, kv := range res[0].Get.Kvs {
				if kv.CreateRevision == rev {
					place = int64(i)
				}
			}
			switch {
			case place >= 0 && place < n:
				return claim.Verdict{Admitted: true}
			case place == n: // first in line: any holder's release lets it in
				return claim.Verdict{Key: pfx, Prefix: true, FilterPut: true}
			}
			ahead := res[1].Get.Kvs
			if len(ahead) == 0 { // everyone ahead left between the two reads' view: cannot be, but harmless
				return claim.Verdict{Admitted: true}
			}
			// Further back: wait for the one ahead to leave or get in.
			return claim.Verdict{Key: string(ahead[0].Key)}
		},
		Admitted: func(ctx context.Context, k *claim.Claim, rev int64) error {
			// Tell the waiter behind: a put on our key wakes its watch.
			_, err := k.Client().Txn().
				If(gateway.CmpCreateRevision(k.Key(), gateway.Equal, rev)).
				Then(gateway.OpPut(k.Key(), "", gateway.WithIgnoreLease())).
				Commit(ctx)
			if err != nil {
				return fmt.Errorf("mutex: marking %s: %w", k.Key(), err)
			}
			return nil
		},
	}
	return s, nil
}

// Acquire waits until a slot is held; see Mutex.Lock for ctx and lease endings.
func (s *Semaphore) Acquire(ctx context.Context) error { return s.k.Acquire(ctx, s.kd, false, "") }

// TryAcquire takes a slot if one is free and nobody waits, and otherwise
// returns an error matching ErrLocked.
func (s *Semaphore) TryAcquire(ctx context.Context) error { return s.k.Acquire(ctx, s.kd, true, "") }

// Release gives the slot back; see Mutex.Unlock for its errors.
func (s *Semaphore) Release(ctx context.Context) error { return s.k.Release(ctx) }

// Key is this holder's key.
func (s *Semaphore) Key() string { return s.k.Key() }

// Token is the fencing token of the held slot (its key's create revision), 0
// when none is held.
func (s *Semaphore) Token() int64 { return s.k.Token() }

// IsOwner is a compare that holds only while this Semaphore holds its slot.
func (s *Semaphore) IsOwner() gateway.Cmp { return s.k.IsOwner() }

// Context ends when the held slot is lost or released; see Mutex.Context.
func (s *Semaphore) Context() context.Context { return s.k.Context() }

// Done is Context().Done().
func (s *Semaphore) Done() <-chan struct{} { return s.k.Context().Done() }
