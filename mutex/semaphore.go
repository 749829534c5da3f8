package mutex

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/ticket"
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
	k *ticket.Ticket
}

// NewSemaphore returns a Semaphore of n slots on name, held through l. n must
// be positive.
func NewSemaphore(l *lease.Lease, name string, n int) (*Semaphore, error) {
	if n <= 0 {
		return nil, fmt.Errorf("%w: semaphore size %d is not positive", ErrInvalidArgument, n)
	}
	pfx := name + "/"
	key := fmt.Sprintf("%s%x_%s", pfx, l.ID(), uuid.NewString())
	return &Semaphore{k: ticket.New(l, key, semaphorePolicy(pfx, int64(n)), ticketErrors)}, nil
}

// semaphorePolicy admits a key among the n oldest under pfx.
func semaphorePolicy(pfx string, n int64) *ticket.Policy {
	return &ticket.Policy{
		AtCreate: ticket.Check{
			Reads: func(int64) []gateway.Op { return []gateway.Op{ticket.FirstUnder(pfx, n)} },
			Decide: func(res []gateway.OpResponse, rev int64) ticket.Verdict {
				for _, kv := range res[0].Get.Kvs {
					if kv.CreateRevision == rev {
						return ticket.Verdict{Admitted: true}
					}
				}
				return ticket.Verdict{}
			},
		},
		// The server's count ignores the create-revision filter, so the place
		// in line comes from the first n+1 keys, and the one to wait for from
		// a second read.
		Waiting: ticket.Check{
			Reads: func(rev int64) []gateway.Op {
				return []gateway.Op{ticket.FirstUnder(pfx, n+1), ticket.LastBefore(pfx, rev)}
			},
			Decide: func(res []gateway.OpResponse, rev int64) ticket.Verdict {
				first, ahead := res[0].Get.Kvs, res[1].Get.Kvs
				place := int64(-1)
				for i, kv := range first {
					if kv.CreateRevision == rev {
						place = int64(i)
					}
				}
				switch {
				case place >= 0 && place < n:
					return ticket.Verdict{Admitted: true}
				case place == n: // first in line: any holder's release lets it in
					return ticket.Verdict{Key: pfx, Prefix: true, DeletesOnly: true}
				case len(ahead) == 0: // everyone ahead left between the two reads' view: cannot be, but harmless
					return ticket.Verdict{Admitted: true}
				}
				// Further back: wait for the one ahead to leave or get in.
				return ticket.Verdict{Key: string(ahead[0].Key)}
			},
		},
		OnAdmit: func(ctx context.Context, t *ticket.Ticket, rev int64) error {
			// Tell the waiter behind: a put on our key wakes its watch.
			_, err := t.Client().Txn().
				If(gateway.CmpCreateRevision(t.Key(), gateway.Equal, rev)).
				Then(gateway.OpPut(t.Key(), "", gateway.WithIgnoreLease())).
				Commit(ctx)
			if err != nil {
				return fmt.Errorf("mutex: marking %s: %w", t.Key(), err)
			}
			return nil
		},
	}
}

// Acquire waits until a slot is held; see Mutex.Lock for ctx and lease endings.
func (s *Semaphore) Acquire(ctx context.Context) error { return s.k.Acquire(ctx, noValue) }

// TryAcquire takes a slot if one is free and nobody waits, and otherwise
// returns an error matching ErrLocked.
func (s *Semaphore) TryAcquire(ctx context.Context) error { return s.k.TryAcquire(ctx, noValue) }

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

// Lease is the lease the slot is held through.
func (s *Semaphore) Lease() *lease.Lease { return s.k.Lease() }

// Held asks the server whether this Semaphore holds its slot now: its key is there
// with its token and still first in line. It answers for this moment only;
// guard writes with IsOwner rather than checking first.
func (s *Semaphore) Held(ctx context.Context) (bool, error) { return s.k.Held(ctx) }
