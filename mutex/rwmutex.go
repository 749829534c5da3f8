package mutex

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/ticket"
	"github.com/etcdgw/etcdgw/lease"
)

// RWMutex is a readers-writer lock on a name: readers share it, a writer holds
// it alone. Readers and writers queue in one order, so a writer is not starved
// by readers arriving after it. Readers' keys are <name>/r/<lease>_<uuid>,
// writers' <name>/w/<lease>_<uuid>.
//
// An RWMutex object holds the lock in one mode at a time; Token, IsOwner,
// Context and Done refer to the mode held. Its methods are safe for concurrent
// use.
type RWMutex struct {
	read, write *ticket.Ticket

	mu   sync.Mutex
	held *ticket.Ticket // the ticket that is held or being acquired
}

// NewRWMutex returns an RWMutex on name held through l.
func NewRWMutex(l *lease.Lease, name string) *RWMutex {
	pfx, wpfx := name+"/", name+"/w/"
	id := fmt.Sprintf("%x_%s", l.ID(), uuid.NewString())
	return &RWMutex{
		// A reader is admitted when no writer's key is older than its own.
		read: ticket.New(l, pfx+"r/"+id, &ticket.Policy{
			AtCreate: ticket.Check{
				Reads: func(int64) []gateway.Op { return []gateway.Op{ticket.FirstUnder(wpfx, 1)} },
				Decide: func(res []gateway.OpResponse, rev int64) ticket.Verdict {
					kvs := res[0].Get.Kvs
					return ticket.Verdict{Admitted: len(kvs) == 0 || kvs[0].CreateRevision > rev}
				},
			},
			Waiting: ticket.NoneBefore(wpfx),
		}, ticketErrors),
		// A writer is admitted when no key at all is older than its own.
		write: ticket.New(l, wpfx+id, ticket.Exclusive(pfx), ticketErrors),
	}
}

func (rw *RWMutex) acquire(ctx context.Context, k *ticket.Ticket, try bool) error {
	rw.mu.Lock()
	if rw.held != nil {
		rw.mu.Unlock()
		return fmt.Errorf("%w: this RWMutex already holds or awaits %s", ErrInUse, rw.held.Key())
	}
	rw.held = k
	rw.mu.Unlock()
	acquire := k.Acquire
	if try {
		acquire = k.TryAcquire
	}
	err := acquire(ctx, noValue)
	if err != nil {
		rw.mu.Lock()
		rw.held = nil
		rw.mu.Unlock()
	}
	return err
}

func (rw *RWMutex) release(ctx context.Context, k *ticket.Ticket) error {
	rw.mu.Lock()
	held := rw.held
	rw.mu.Unlock()
	if held != k {
		return fmt.Errorf("%w: %s", ErrNotLocked, k.Key())
	}
	err := k.Release(ctx)
	if k.Token() == 0 {
		rw.mu.Lock()
		rw.held = nil
		rw.mu.Unlock()
	}
	return err
}

// RLock waits until the lock is held for reading; see Mutex.Lock for ctx and
// lease endings.
func (rw *RWMutex) RLock(ctx context.Context) error { return rw.acquire(ctx, rw.read, false) }

// TryRLock takes the lock for reading if no writer holds or awaits it, and
// otherwise returns an error matching ErrLocked.
func (rw *RWMutex) TryRLock(ctx context.Context) error {
	return rw.acquire(ctx, rw.read, true)
}

// RUnlock releases a read lock; see Mutex.Unlock for its errors.
func (rw *RWMutex) RUnlock(ctx context.Context) error { return rw.release(ctx, rw.read) }

// Lock waits until the lock is held for writing; see Mutex.Lock.
func (rw *RWMutex) Lock(ctx context.Context) error { return rw.acquire(ctx, rw.write, false) }

// TryLock takes the lock for writing if nobody holds or awaits it, and
// otherwise returns an error matching ErrLocked.
func (rw *RWMutex) TryLock(ctx context.Context) error {
	return rw.acquire(ctx, rw.write, true)
}

// Unlock releases a write lock; see Mutex.Unlock for its errors.
func (rw *RWMutex) Unlock(ctx context.Context) error { return rw.release(ctx, rw.write) }

func (rw *RWMutex) current() *ticket.Ticket {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.held == nil {
		return rw.read // holds nothing: token 0, ended context
	}
	return rw.held
}

// Key is the key of the lock held now (<name>/r/… or <name>/w/…); holding
// nothing, the reader's key.
func (rw *RWMutex) Key() string { return rw.current().Key() }

// Token is the fencing token of the held lock (read or write), 0 when none is
// held.
func (rw *RWMutex) Token() int64 { return rw.current().Token() }

// IsOwner is a compare that holds only while this RWMutex holds the lock in the
// mode it holds now.
func (rw *RWMutex) IsOwner() gateway.Cmp { return rw.current().IsOwner() }

// Context ends when the held lock is lost or released; see Mutex.Context.
func (rw *RWMutex) Context() context.Context { return rw.current().Context() }

// Done is Context().Done().
func (rw *RWMutex) Done() <-chan struct{} { return rw.Context().Done() }

// Lease is the lease the lock is held through.
func (rw *RWMutex) Lease() *lease.Lease { return rw.read.Lease() }

// Held asks the server whether this RWMutex holds the lock now, in the mode it
// holds: its key is there with its token and still admitted. It answers for
// this moment only; guard writes with IsOwner rather than checking first.
func (rw *RWMutex) Held(ctx context.Context) (bool, error) { return rw.current().Held(ctx) }
