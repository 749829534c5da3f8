package mutex

import (
	"context"
	"crypto/rand"

	"github.com/google/uuid"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/ticket"
	"github.com/etcdgw/etcdgw/lease"
)

// KeyLock is a lock that is one key: whoever creates it, under a lease and
// holding a token of its own, holds the lock, and it is released by a delete
// that compares the token. It is the layout of the Python client etcd3gw's
// Lock and of tooz's etcd3gw driver, so that a Go service and a Python service
// locking the same name exclude each other. NewEtcd3gwLock and NewToozLock make
// one in either layout.
//
// On top of those, and without breaking them for the Python side: Lock waits
// by watching the key's deletion (etcd3gw only tries; tooz polls), the lock can
// be lost and says so (Context), the release is fenced by the key's create
// revision as well as by the token, and Token is a fencing token. Unlike Mutex
// it is not fair: when the key goes, every waiter races to create it.
//
// Its methods are safe for concurrent use. One KeyLock object holds the lock
// at most once at a time.
type KeyLock struct {
	k     *ticket.Ticket
	token string
}

// NewEtcd3gwLock returns the lock etcd3gw's client.lock(name) takes: the key
// /locks/<name>, holding a token that is a UUID in text.
func NewEtcd3gwLock(l *lease.Lease, name string) *KeyLock {
	return newKeyLock(l, "/locks/"+name, uuid.NewString())
}

// NewToozLock returns the lock tooz's etcd3gw driver takes for name: the key
// /tooz/locks<name> (tooz puts no separator), holding 16 random bytes.
func NewToozLock(l *lease.Lease, name string) *KeyLock {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return newKeyLock(l, "/tooz/locks"+name, string(b[:]))
}

func newKeyLock(l *lease.Lease, key, token string) *KeyLock {
	return &KeyLock{k: ticket.New(l, key, ticket.OneKeyPolicy(), ticketErrors), token: token}
}

// Lock waits until the key is created by this lock, ctx ends or the lease
// ends; see Mutex.Lock for what each ending leaves and returns.
func (k *KeyLock) Lock(ctx context.Context) error { return k.k.Acquire(ctx, k.token) }

// TryLock takes the lock if the key is free and otherwise returns an error
// matching ErrLocked, leaving nothing behind.
func (k *KeyLock) TryLock(ctx context.Context) error { return k.k.TryAcquire(ctx, k.token) }

// Unlock deletes the key if it is still this lock's (same create revision,
// same token); see Mutex.Unlock for its errors.
func (k *KeyLock) Unlock(ctx context.Context) error { return k.k.Release(ctx) }

// Key is the lock's key.
func (k *KeyLock) Key() string { return k.k.Key() }

// Value is the token the key holds while this lock holds it, as the Python
// side compares it on release.
func (k *KeyLock) Value() string { return k.token }

// Token is the fencing token of the held lock (the key's create revision), 0
// when it is not held.
func (k *KeyLock) Token() int64 { return k.k.Token() }

// IsOwner is a compare that holds only while this lock holds the key with its
// current token.
func (k *KeyLock) IsOwner() gateway.Cmp { return k.k.IsOwner() }

// Context ends when the held lock is lost or released; see Mutex.Context.
func (k *KeyLock) Context() context.Context { return k.k.Context() }

// Done is Context().Done().
func (k *KeyLock) Done() <-chan struct{} { return k.k.Context().Done() }

// Lease is the lease the key is bound to.
func (k *KeyLock) Lease() *lease.Lease { return k.k.Lease() }

// Held asks the server whether this lock holds the key now.
func (k *KeyLock) Held(ctx context.Context) (bool, error) { return k.k.Held(ctx) }
