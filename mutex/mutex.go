package mutex

import (
	"context"
	"fmt"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/ticket"
	"github.com/etcdgw/etcdgw/lease"
)

// Mutex is a lock on a name, held through a lease. A Mutex is not re-entrant;
// one lease holds at most one Mutex per name at a time (the key is the lease's
// ID). Its methods are safe for concurrent use.
type Mutex struct {
	k     *ticket.Ticket
	owned bool // the lease is the Mutex's own (Acquire): Unlock revokes it
}

// New returns a Mutex on name held through l. It talks to etcd through
// l.Client().
func New(l *lease.Lease, name string) *Mutex {
	pfx := name + "/"
	return &Mutex{k: ticket.New(l, fmt.Sprintf("%s%x", pfx, l.ID()), ticket.Exclusive(pfx), ticketErrors)}
}

// Acquire grants a lease of ttl seconds and locks name with it: etcd3gw's
// lock(id, ttl) in one call. opts shape the lease further (lease.WithLogger,
// lease.WithID to resume one, …). Unlock releases the lock and revokes the
// lease; when Acquire fails, the lease is revoked before it returns.
func Acquire(ctx context.Context, c *gateway.Client, name string, ttl int64, opts ...lease.Option) (*Mutex, error) {
	l, err := lease.New(ctx, c, append([]lease.Option{lease.WithTTL(ttl)}, opts...)...)
	if err != nil {
		return nil, err
	}
	m := New(l, name)
	m.owned = true
	if err := m.Lock(ctx); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ticket.CleanupTimeout)
		defer cancel()
		_ = l.Close(cctx)
		return nil, err
	}
	return m, nil
}

// Lock waits until the lock is held, ctx ends or the lease ends. When ctx ends
// first, the waiter's key is removed and ctx's error returned; when the lease
// ends first, the error matches ErrLost and the lease's error (lease.ErrLost
// or lease.ErrClosed). A lease that had ended before gives its error at once.
func (m *Mutex) Lock(ctx context.Context) error { return m.k.Acquire(ctx, noValue) }

// TryLock takes the lock if it is free and otherwise returns an error matching
// ErrLocked, leaving nothing behind.
func (m *Mutex) TryLock(ctx context.Context) error { return m.k.TryAcquire(ctx, noValue) }

// Unlock releases the lock. It returns an error matching ErrNotLocked when the
// lock is not held (never locked, or unlocked already), and one matching
// ErrLost when it had been lost (the key is removed if it was still there). The
// delete is fenced by the key's create revision: it never removes a newer
// holder's key, and it is sent again when its outcome is unknown. A Mutex from
// Acquire also revokes its lease.
func (m *Mutex) Unlock(ctx context.Context) error {
	err := m.k.Release(ctx)
	if m.owned {
		if cerr := m.k.Lease().Close(ctx); err == nil {
			err = cerr
		}
	}
	return err
}

// Key is the Mutex's key: <name>/<lease ID in hex>.
func (m *Mutex) Key() string { return m.k.Key() }

// Token is the fencing token of the held lock: its key's create revision. Each
// acquisition of the lock has a greater token than every earlier one. It is 0
// when the lock is not held.
func (m *Mutex) Token() int64 { return m.k.Token() }

// IsOwner is a compare that holds only while this Mutex holds the lock with
// its current token. Put it in the If of your own transactions.
func (m *Mutex) IsOwner() gateway.Cmp { return m.k.IsOwner() }

// Context ends when the held lock is lost (its lease ended, or its key was
// deleted by someone else) or released; context.Cause says which (ErrLost or
// ErrNotLocked). Called while not holding the lock, it returns a context that
// has ended. The first call starts a watch on the key.
func (m *Mutex) Context() context.Context { return m.k.Context() }

// Done is Context().Done().
func (m *Mutex) Done() <-chan struct{} { return m.k.Context().Done() }

// Lease is the lease the lock is held through.
func (m *Mutex) Lease() *lease.Lease { return m.k.Lease() }

// noValue is what a lock's key holds: nothing (clientv3 and etcdctl put
// nothing there either).
const noValue = ""

// Held asks the server whether this Mutex holds its lock now: its key is there
// with its token and still first in line. It answers for this moment only;
// guard writes with IsOwner rather than checking first.
func (m *Mutex) Held(ctx context.Context) (bool, error) { return m.k.Held(ctx) }
