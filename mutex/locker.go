package mutex

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/ticket"
)

// Locker is a sync.Locker on a name, for code that takes one (a sync.Cond, a
// library). Unlike clientv3's NewLocker it never panics: Lock retries until it
// holds the lock, with a lease of its own granted anew for each try, so a lost
// lease or an unreachable cluster delays it and does not break it; and every
// error it meets, in Lock or in Unlock, goes to the onError given to
// NewLocker.
//
// Prefer Mutex where a ctx and an error can be passed: a Locker cannot be
// cancelled, and learns that it lost the lock only at Unlock (onError then
// gets an error matching ErrLost). It is safe for concurrent use; as with
// sync.Mutex, any goroutine may Unlock what another locked.
type Locker struct {
	c       *gateway.Client
	name    string
	ttl     int64
	onError func(error)

	mu   sync.Mutex
	held *Mutex
}

var _ sync.Locker = (*Locker)(nil)

// NewLocker returns a Locker on name, whose leases last ttl seconds. onError
// receives every error Lock and Unlock meet; nil drops them.
func NewLocker(c *gateway.Client, name string, ttl int64, onError func(error)) *Locker {
	if onError == nil {
		onError = func(error) {}
	}
	return &Locker{c: c, name: name, ttl: ttl, onError: onError}
}

// Lock waits until the lock is held, retrying through any error with a
// growing backoff (50 ms up to 5 s).
func (l *Locker) Lock() {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval, bo.MaxElapsedTime = 50*time.Millisecond, 5*time.Second, 0
	for {
		m, err := Acquire(context.Background(), l.c, l.name, l.ttl)
		if err == nil {
			l.mu.Lock()
			l.held = m
			l.mu.Unlock()
			return
		}
		l.onError(fmt.Errorf("mutex: Locker %s: %w", l.name, err))
		time.Sleep(bo.NextBackOff())
	}
}

// Unlock releases the lock and revokes its lease, within
// ticket.CleanupTimeout. An Unlock without a Lock reports ErrNotLocked; a lock
// lost while held reports ErrLost (the lock is free either way).
func (l *Locker) Unlock() {
	l.mu.Lock()
	m := l.held
	l.held = nil
	l.mu.Unlock()
	if m == nil {
		l.onError(fmt.Errorf("mutex: Locker %s: %w", l.name, ErrNotLocked))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), ticket.CleanupTimeout)
	defer cancel()
	if err := m.Unlock(ctx); err != nil {
		l.onError(fmt.Errorf("mutex: Locker %s: %w", l.name, err))
	}
}
