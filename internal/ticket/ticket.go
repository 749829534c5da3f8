// Package claim is the machinery the locks and elections share: a key under a
// prefix, bound to a lease, queued by create revision, admitted by a check and
// waited for with a watch on one key, released with a fenced delete.
package claim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/await"
	"github.com/etcdgw/etcdgw/lease"
)

// The errors below are re-exported by the packages built on claims.
var (
	// ErrLocked: TryLock found the lock held by someone else (or, for a
	// semaphore, all of its slots taken).
	ErrLocked = errors.New("etcdgw: locked by another holder")
	// ErrNotLocked: Unlock of a lock that is not held, or the cause of a lock's
	// Context after Unlock.
	ErrNotLocked = errors.New("etcdgw: not locked")
	// ErrLost: the lock was lost: its lease ended, or its key was deleted by
	// someone else. Lock returns it when the lease ends while waiting; Unlock
	// returns it when the lock had been lost before.
	ErrLost = errors.New("etcdgw: lock lost")
	// ErrInUse: the key this lock would use is already held or awaited by
	// another lock object in this process (same lease, same name).
	ErrInUse = errors.New("etcdgw: already held or awaited in this process")
)

// CleanupTimeout bounds the removal of a waiter's key after its ctx ended.
const CleanupTimeout = 5 * time.Second

// inUse holds the keys of the claims this process has made and not yet
// released, so that two lock objects on the same lease and name do not both
// believe they hold the lock.
var inUse sync.Map

// Verdict is what a check found: admitted, the own key gone, or what to wait for.
type Verdict struct {
	Admitted bool
	// Otherwise wait: watch Key (or, with Prefix, every key under it), for
	// deletions only with FilterPut.
	Key       string
	Prefix    bool
	FilterPut bool
}

// Kind is what makes a mutex, a reader, a writer or a semaphore slot: the
// operations the create txn carries to admit at once, and the check that
// decides afterwards.
type Kind struct {
	// First are read operations added to the create txn; Fast decides from
	// their results whether the claim at rev is admitted right away.
	First []gateway.Op
	Fast  func(res []gateway.OpResponse, rev int64) bool
	// Check decides for the claim at rev from the results of Probe, read in
	// one txn with the claim's own key.
	Check func(res []gateway.OpResponse, rev int64) Verdict
	// Probe are the read operations Check needs, given rev.
	Probe func(rev int64) []gateway.Op
	// Admitted, if set, runs after a slow admission (the semaphore marks its
	// key).
	Admitted func(ctx context.Context, k *Claim, rev int64) error
}

// Claim is one key under a lock's or an election's prefix, bound to a lease.
type Claim struct {
	l   *lease.Lease
	c   *gateway.Client
	key string

	mu      sync.Mutex
	rev     int64                   // the key's create revision while held; 0 when not held
	acqRev  int64                   // the revision at which the claim was seen admitted
	resumed bool                    // the last Acquire found the key there already
	lostCtx context.Context         // ends when the claim is lost or released
	lose    context.CancelCauseFunc // ends lostCtx
	halt    context.CancelFunc      // stops the loss watcher
	joined  chan struct{}           // closed when the loss watcher returns
}

// New returns a claim of key held through l.
func New(l *lease.Lease, key string) *Claim {
	return &Claim{l: l, c: l.Client(), key: key}
}

// Key is the claim's key.
func (k *Claim) Key() string { return k.key }

// Client is the client the claim talks through (its lease's).
func (k *Claim) Client() *gateway.Client { return k.c }

// Lease is the lease the claim's key is bound to.
func (k *Claim) Lease() *lease.Lease { return k.l }

// Resumed reports whether the last Acquire found its key there already (a
// claim resumed on the same lease) instead of creating it.
func (k *Claim) Resumed() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.resumed
}

func (k *Claim) leaseEnded() error {
	return fmt.Errorf("etcdgw: %s: %w", k.key, k.l.Err())
}

// Acquire creates the claim's key with value (keeping an existing one, for a
// claim resumed on the same lease) and waits until kd admits it, or with try
// gives up at once with ErrLocked. When ctx ends first, the key is removed.
func (k *Claim) Acquire(ctx context.Context, kd *Kind, try bool, value string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if k.l.Err() != nil {
		return k.leaseEnded()
	}
	if prev, loaded := inUse.LoadOrStore(k.key, k); loaded {
		// A claim whose lease has ended holds nothing any more: a successor
		// on an adopted lease may take its key over.
		if p := prev.(*Claim); p == k || p.l.Err() == nil || !inUse.CompareAndSwap(k.key, prev, k) {
			return fmt.Errorf("%w: %s", ErrInUse, k.key)
		}
	}
	rev, fast, err := k.create(ctx, kd, value)
	if err != nil {
		inUse.CompareAndDelete(k.key, k)
		if rev != 0 || errors.Is(err, gateway.ErrOutcomeUnknown) || ctx.Err() != nil {
			k.remove(rev)
		}
		return err
	}
	if fast {
		k.held(rev, 0)
		return nil
	}
	err = k.wait(ctx, kd, rev, try)
	if err != nil {
		inUse.CompareAndDelete(k.key, k)
		k.remove(rev)
		return err
	}
	return nil
}

// create puts the key unless it exists (a claim resumed after a restart, or a
// create whose reply was lost), in one txn with kd's fast admission reads.
func (k *Claim) create(ctx context.Context, kd *Kind, value string) (rev int64, fast bool, err error) {
	for {
		r, err := k.c.Txn().
			If(gateway.CmpCreateRevision(k.key, gateway.Equal, 0)).
			Then(append([]gateway.Op{gateway.OpPut(k.key, value, gateway.WithLease(k.l.ID()))}, kd.First...)...).
			Else(append([]gateway.Op{gateway.OpGet(k.key)}, kd.First...)...).
			Commit(ctx)
		if errors.Is(err, gateway.ErrOutcomeUnknown) && ctx.Err() == nil {
			continue // the key's name is ours alone: creating it again is safe
		}
		if err != nil {
			return 0, false, fmt.Errorf("creating %s: %w", k.key, err)
		}
		rev = r.Header.Revision
		k.mu.Lock()
		k.resumed = !r.Succeeded
		k.mu.Unlock()
		if !r.Succeeded {
			kvs := r.Responses[0].Get.Kvs
			if len(kvs) == 0 { // deleted between compare and read: cannot happen in one txn
				return 0, false, fmt.Errorf("%s vanished inside a txn", k.key)
			}
			rev = kvs[0].CreateRevision
		}
		return rev, kd.Fast(r.Responses[1:], rev), nil
	}
}

// wait re-checks and waits until the claim at rev is admitted.
func (k *Claim) wait(ctx context.Context, kd *Kind, rev int64, try bool) error {
	for {
		r, err := k.c.Txn().Then(append([]gateway.Op{gateway.OpGet(k.key)}, kd.Probe(rev)...)...).Commit(ctx)
		if err != nil {
			return fmt.Errorf("checking %s: %w", k.key, err)
		}
		own := r.Responses[0].Get.Kvs
		if len(own) == 0 || own[0].CreateRevision != rev {
			return k.gone(ctx, "while waiting")
		}
		v := kd.Check(r.Responses[1:], rev)
		if v.Admitted {
			if kd.Admitted != nil {
				if err := kd.Admitted(ctx, k, rev); err != nil {
					return err
				}
			}
			k.held(rev, r.Header.Revision)
			return nil
		}
		if try {
			return fmt.Errorf("%w: %s", ErrLocked, k.key)
		}
		if err := k.block(ctx, v, r.Header.Revision); err != nil {
			return err
		}
	}
}

// block waits for an event on what v names, after revision at, or for ctx or
// the lease to end.
func (k *Claim) block(ctx context.Context, v Verdict, at int64) error {
	var opts []gateway.Option
	if v.Prefix {
		opts = append(opts, gateway.WithPrefix())
	}
	if v.FilterPut {
		opts = append(opts, gateway.WithFilterPut())
	}
	err := await.Change(ctx, k.c, v.Key, at, k.l.Done(), opts...)
	switch {
	case err == nil, errors.Is(err, gateway.ErrCompacted):
		return nil // check again: a history that is gone does not change the state
	case errors.Is(err, await.ErrStopped):
		return k.Lost(k.leaseEnded())
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("waiting for %s: %w", v.Key, err)
}

// gone is the error for the claim's key found deleted (when says at which
// point). It asks the server about the lease: a revocation deletes the key at
// once, before the lease's next renewal could notice, and then the error is the
// lease's end (matching lease.ErrLost). Otherwise someone deleted the key.
func (k *Claim) gone(ctx context.Context, when string) error {
	err := k.l.Check(ctx)
	switch {
	case k.l.Err() != nil:
		return k.Lost(k.leaseEnded())
	case err != nil:
		return k.Lost(fmt.Errorf("%s was deleted %s (its lease could not be checked: %v)", k.key, when, err))
	}
	return k.Lost(fmt.Errorf("%s was deleted %s by someone else", k.key, when))
}

// Lost wraps cause so that it matches ErrLost.
func (k *Claim) Lost(cause error) error {
	return fmt.Errorf("%w: %w", ErrLost, cause)
}

// held records that the claim at rev is admitted (seen at revision at).
func (k *Claim) held(rev, at int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rev, k.acqRev = rev, at
	if k.acqRev == 0 {
		k.acqRev = rev
	}
	k.lostCtx, k.lose, k.halt, k.joined = nil, nil, nil, nil
}

// remove deletes the key created at rev, if it is still that key, after the
// caller's ctx has ended: it uses its own bounded context. A key it cannot
// remove goes with its lease.
func (k *Claim) remove(rev int64) {
	ctx, cancel := context.WithTimeout(context.Background(), CleanupTimeout)
	defer cancel()
	cmp := gateway.CmpCreateRevision(k.key, gateway.Equal, rev)
	if rev == 0 { // the create's outcome is unknown: the key, if any, is ours by name
		cmp = gateway.CmpLease(k.key, gateway.Equal, k.l.ID())
	}
	for ctx.Err() == nil {
		_, err := k.c.Txn().If(cmp).Then(gateway.OpDelete(k.key)).Commit(ctx)
		if err == nil || !errors.Is(err, gateway.ErrOutcomeUnknown) {
			return
		}
	}
}

// Token is the create revision of the held key, 0 when not held.
func (k *Claim) Token() int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rev
}

// IsOwner is the compare that holds only while this claim's key exists with
// the create revision it was admitted with. Not held, it never holds (a
// missing key's create revision is 0, never below it).
func (k *Claim) IsOwner() gateway.Cmp {
	if rev := k.Token(); rev != 0 {
		return gateway.CmpCreateRevision(k.key, gateway.Equal, rev)
	}
	return gateway.CmpCreateRevision(k.key, gateway.Less, 0)
}

// Context returns a context that ends when the claim is lost or released,
// starting the watch on the own key the first time it is asked for.
func (k *Claim) Context() context.Context {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lostCtx != nil {
		return k.lostCtx
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	k.lostCtx, k.lose = ctx, cancel
	if k.rev == 0 {
		cancel(ErrNotLocked)
		return ctx
	}
	wctx, halt := context.WithCancel(k.l.Context())
	k.halt, k.joined = halt, make(chan struct{})
	go k.watchLoss(wctx, k.rev, k.acqRev, k.joined, cancel)
	return ctx
}

// watchLoss ends the claim's context when its key is deleted or its lease ends.
// ctx ends with the lease or when release halts the watcher.
func (k *Claim) watchLoss(ctx context.Context, rev, from int64, joined chan struct{}, lose context.CancelCauseFunc) {
	defer close(joined)
	retry := backoff.NewExponentialBackOff()
	retry.MaxElapsedTime = 0
	for {
		err := await.Change(ctx, k.c, k.key, from, nil, gateway.WithFilterPut())
		switch {
		case k.l.Err() != nil:
			lose(k.Lost(k.leaseEnded()))
			return
		case ctx.Err() != nil: // stopped by Unlock, which set the cause
			return
		case err == nil:
			lose(k.gone(ctx, "while held"))
			return
		}
		// The watch failed (compaction, or the client cannot reach anyone):
		// look at the key itself, then watch again from there.
		r, gerr := k.c.Get(ctx, k.key)
		if gerr == nil {
			if len(r.Kvs) == 0 || r.Kvs[0].CreateRevision != rev {
				lose(k.gone(ctx, "while held"))
				return
			}
			from = r.Header.Revision
			retry.Reset()
			continue
		}
		select {
		case <-time.After(retry.NextBackOff()):
		case <-ctx.Done():
		}
	}
}

// Release deletes the key, fenced by its create revision so that a late or
// repeated release never deletes a newer claim's key.
func (k *Claim) Release(ctx context.Context) error {
	k.mu.Lock()
	rev, lose, halt, joined, lostCtx := k.rev, k.lose, k.halt, k.joined, k.lostCtx
	k.mu.Unlock()
	if rev == 0 {
		return fmt.Errorf("%w: %s", ErrNotLocked, k.key)
	}
	var wasLost error
	if lostCtx != nil && lostCtx.Err() != nil {
		wasLost = context.Cause(lostCtx)
	}
	if k.l.Err() != nil && wasLost == nil {
		wasLost = k.Lost(k.leaseEnded())
	}
	if lose != nil {
		lose(ErrNotLocked)
	}
	if halt != nil {
		halt()
		<-joined
	}
	var r *gateway.TxnResponse
	var err error
	for {
		r, err = k.c.Txn().
			If(gateway.CmpCreateRevision(k.key, gateway.Equal, rev)).
			Then(gateway.OpDelete(k.key)).
			Commit(ctx)
		if errors.Is(err, gateway.ErrOutcomeUnknown) && ctx.Err() == nil {
			continue // fenced: sending it again cannot delete anyone else's key
		}
		break
	}
	if err != nil && wasLost == nil {
		// Still held as far as anyone knows; the caller may try again.
		k.mu.Lock()
		k.lostCtx, k.lose, k.halt, k.joined = nil, nil, nil, nil
		k.mu.Unlock()
		return fmt.Errorf("unlocking %s: %w", k.key, err)
	}
	k.mu.Lock()
	k.rev, k.acqRev = 0, 0
	k.mu.Unlock()
	inUse.CompareAndDelete(k.key, k)
	switch {
	case wasLost != nil:
		return wasLost
	case !r.Succeeded:
		return k.gone(ctx, "before Unlock")
	}
	return nil
}

// LastBefore reads the key under pfx created last before rev.
func LastBefore(pfx string, rev int64) gateway.Op {
	return gateway.OpGet(pfx, gateway.WithPrefix(), gateway.WithMaxCreateRev(rev-1),
		gateway.WithSort(gateway.SortByCreateRevision, gateway.SortDescend), gateway.WithLimit(1), gateway.WithKeysOnly())
}

// FirstUnder reads the n keys under pfx created first.
func FirstUnder(pfx string, n int64) gateway.Op {
	return gateway.OpGet(pfx, gateway.WithPrefix(), gateway.WithSort(gateway.SortByCreateRevision, gateway.SortAscend),
		gateway.WithLimit(n), gateway.WithKeysOnly())
}

// WaitForLast admits when the probe found no key, and otherwise waits for the
// deletion of the key it found.
func WaitForLast(res []gateway.OpResponse, _ int64) Verdict {
	kvs := res[0].Get.Kvs
	if len(kvs) == 0 {
		return Verdict{Admitted: true}
	}
	return Verdict{Key: string(kvs[0].Key), FilterPut: true}
}

// Exclusive is the kind of a claim admitted when its key is the oldest under
// pfx: a mutex, a writer, a candidate for leadership. It is the algorithm of
// etcd's Go concurrency package: the create txn reads the oldest key, and a
// waiter watches the key created just before its own.
func Exclusive(pfx string) *Kind {
	return &Kind{
		First: []gateway.Op{FirstUnder(pfx, 1)},
		Fast: func(res []gateway.OpResponse, rev int64) bool {
			kvs := res[0].Get.Kvs
			return len(kvs) > 0 && kvs[0].CreateRevision == rev
		},
		Probe: func(rev int64) []gateway.Op { return []gateway.Op{LastBefore(pfx, rev)} },
		Check: WaitForLast,
	}
}
