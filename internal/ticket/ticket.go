// Package ticket is the machinery the locks and elections share: a ticket is a
// key under a prefix, bound to a lease, that takes its place in line by its
// create revision. A Policy says when a ticket is admitted (the oldest key, one
// of the n oldest, no older writer); a waiting ticket watches one key and looks
// again when it changes; release is a delete fenced by the create revision.
//
// The work queue's claims are another thing: see package queue.
package ticket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/await"
	"github.com/etcdgw/etcdgw/internal/fence"
	"github.com/etcdgw/etcdgw/lease"
)

// CleanupTimeout bounds the removal of a waiter's key after its ctx ended.
const CleanupTimeout = 5 * time.Second

// Errors are the sentinels a ticket's errors match. Each package built on
// tickets passes its own, so that its errors print and match its own names
// (mutex.ErrLost, election.ErrLost).
type Errors struct {
	// Busy: TryAcquire was not admitted at once.
	Busy error
	// NotHeld: Release of a ticket that is not held; the cause of Context
	// asked for while not held.
	NotHeld error
	// Released: the cause of Context after Release.
	Released error
	// Lost: the ticket was lost: its lease ended, or its key was deleted.
	Lost error
	// InUse: another ticket of this process holds or awaits the same key.
	InUse error
}

// Policy decides when a ticket is admitted. Each half is a set of reads and the
// decision made from their results, side by side, so that the decision indexes
// the results of the reads it asked for.
type Policy struct {
	// AtCreate is read in the transaction that creates the ticket's key; an
	// admitting verdict takes the ticket in at once. Its Reads get rev 0: the
	// key's revision is not known before that transaction commits.
	AtCreate Check
	// Waiting is read, with the ticket's own key, each time a waiting ticket
	// looks again; its verdict admits it or names what to wait for.
	Waiting Check
	// OnAdmit, if set, runs after an admission that Waiting found, for the
	// ticket created at rev, before Acquire returns (the semaphore marks its key
	// there, to wake the waiter behind it).
	OnAdmit func(ctx context.Context, t *Ticket, rev int64) error
	// OneKey: every contender creates the same key, holding its own value
	// (etcd3gw's and tooz's layout). A ticket that finds the key with another
	// value waits for its deletion and tries again; one that finds its own
	// value holds it (its earlier create took effect). There is no line, so no
	// fairness.
	OneKey bool
}

// Check is a set of reads and the decision from their results.
type Check struct {
	// Reads are the read operations to send, for the ticket created at rev.
	Reads func(rev int64) []gateway.Op
	// Decide reads res, the results of Reads in their order, for the ticket
	// created at rev.
	Decide func(res []gateway.OpResponse, rev int64) Verdict
}

// Verdict is what a check found: the ticket is admitted, or what to wait for.
type Verdict struct {
	// Admitted: the ticket is in; the fields below are unused.
	Admitted bool
	// Key is what to watch: one key, or with Prefix every key under it.
	Key    string
	Prefix bool
	// DeletesOnly watches only deletions (puts do not wake the waiter).
	DeletesOnly bool
}

// admitted is the verdict that admits.
var admitted = Verdict{Admitted: true}

// inUse holds the keys of the tickets this process has taken and not yet
// released. Two ticket objects with the same key (the same lease and name)
// would share one key in etcd, and both would believe they hold it; clientv3's
// Mutex lets two Mutexes on one Session do just that. The key holds the lease
// ID, so one map for the process is as exact as one per lease.
var inUse sync.Map

// Ticket is one key under a lock's or an election's prefix, bound to a lease.
// Its methods are safe for concurrent use.
type Ticket struct {
	l      *lease.Lease
	c      *gateway.Client
	key    string
	policy *Policy
	errs   *Errors

	mu      sync.Mutex
	rev     int64                   // the key's create revision while held; 0 when not held
	seenAt  int64                   // the revision at which the ticket was seen admitted
	resumed bool                    // the last Acquire found the key there already
	lostCtx context.Context         // ends when the ticket is lost or released
	lose    context.CancelCauseFunc // ends lostCtx
	halt    context.CancelFunc      // stops the loss watcher
	joined  chan struct{}           // closed when the loss watcher returns
}

// New returns a ticket for key, held through l, admitted by p, whose errors
// match errs.
func New(l *lease.Lease, key string, p *Policy, errs *Errors) *Ticket {
	return &Ticket{l: l, c: l.Client(), key: key, policy: p, errs: errs}
}

// Key is the ticket's key.
func (t *Ticket) Key() string { return t.key }

// Client is the client the ticket talks through (its lease's).
func (t *Ticket) Client() *gateway.Client { return t.c }

// Lease is the lease the ticket's key is bound to.
func (t *Ticket) Lease() *lease.Lease { return t.l }

// Resumed reports whether the last Acquire found its key there already (a
// ticket resumed on the same lease) instead of creating it.
func (t *Ticket) Resumed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.resumed
}

// log is the logger of the ticket's lease.
func (t *Ticket) log() *slog.Logger { return t.l.Logger() }

// lost wraps cause so that it matches the Lost sentinel.
func (t *Ticket) lost(cause error) error { return fmt.Errorf("%w: %w", t.errs.Lost, cause) }

func (t *Ticket) leaseEnded() error { return fmt.Errorf("%s: %w", t.key, t.l.Err()) }

// Acquire creates the ticket's key holding value (keeping an existing one, for
// a ticket resumed on the same lease) and waits until the policy admits it.
// When ctx ends first, the key is removed and ctx's error returned; when the
// lease ends first, the error matches Lost and the lease's error.
func (t *Ticket) Acquire(ctx context.Context, value string) error {
	return t.acquire(ctx, value, false)
}

// TryAcquire is Acquire that does not wait: when the ticket is not admitted at
// once, its key is removed and the error matches Busy.
func (t *Ticket) TryAcquire(ctx context.Context, value string) error {
	return t.acquire(ctx, value, true)
}

func (t *Ticket) acquire(ctx context.Context, value string, try bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t.l.Err() != nil {
		return t.leaseEnded()
	}
	if err := t.claimKey(); err != nil {
		return err
	}
	var c created
	var err error
	for {
		c, err = t.create(ctx, value)
		switch {
		case err != nil:
		case c.other != nil: // OneKey: another holds the key
			if try {
				err = fmt.Errorf("%w: %s", t.errs.Busy, t.key)
				break
			}
			if err = t.block(ctx, Verdict{Key: t.key, DeletesOnly: true}, c.at); err == nil {
				continue
			}
		case c.in:
			t.held(c.rev, 0)
		default:
			err = t.wait(ctx, c.rev, try)
		}
		break
	}
	if err != nil {
		t.unclaimKey()
		if c.rev != 0 || errors.Is(err, gateway.ErrOutcomeUnknown) || ctx.Err() != nil {
			t.remove(c.rev, value)
		}
	}
	return err
}

// unclaimKey undoes claimKey.
func (t *Ticket) unclaimKey() {
	if !t.policy.OneKey {
		inUse.CompareAndDelete(t.key, t)
	}
}

// claimKey registers the ticket's key as this process's (inUse). A OneKey
// ticket needs no registration: its value tells it from every other contender,
// in this process or not.
func (t *Ticket) claimKey() error {
	if t.policy.OneKey {
		return nil
	}
	if prev, loaded := inUse.LoadOrStore(t.key, t); loaded {
		// A ticket whose lease has ended holds nothing any more: a successor
		// on an adopted lease may take its key over.
		if p := prev.(*Ticket); p == t || p.l.Err() == nil || !inUse.CompareAndSwap(t.key, prev, t) {
			return fmt.Errorf("%w: %s", t.errs.InUse, t.key)
		}
	}
	return nil
}

// created is what a create found: the key's create revision (if the key is
// the ticket's own), whether AtCreate admits it, or (OneKey) the key of
// another holder and the revision it was read at.
type created struct {
	rev   int64
	in    bool
	other *gateway.KeyValue
	at    int64
}

// create puts the key unless it exists (a ticket resumed after a restart, or a
// create whose reply was lost; or, OneKey, another's hold), in one txn with the
// policy's AtCreate reads.
func (t *Ticket) create(ctx context.Context, value string) (created, error) {
	first := t.policy.AtCreate.Reads(0)
	// The key's name is the ticket's alone: creating it again after an unknown
	// outcome finds it there, and reads it.
	r, _, err := fence.Commit(ctx, t.c.Txn().
		If(gateway.CmpCreateRevision(t.key, gateway.Equal, 0)).
		Then(append([]gateway.Op{gateway.OpPut(t.key, value, gateway.WithLease(t.l.ID()))}, first...)...).
		Else(append([]gateway.Op{gateway.OpGet(t.key)}, first...)...))
	if err != nil {
		return created{}, fmt.Errorf("creating %s: %w", t.key, err)
	}
	rev := r.Header.Revision
	if !r.Succeeded {
		kvs := r.Responses[0].Get.Kvs
		if len(kvs) == 0 { // deleted between compare and read: cannot happen in one txn
			return created{}, fmt.Errorf("%s vanished inside a txn", t.key)
		}
		if t.policy.OneKey && string(kvs[0].Value) != value {
			return created{other: &kvs[0], at: r.Header.Revision}, nil
		}
		rev = kvs[0].CreateRevision
	}
	t.mu.Lock()
	t.resumed = !r.Succeeded
	t.mu.Unlock()
	return created{rev: rev, in: t.policy.AtCreate.Decide(r.Responses[1:], rev).Admitted}, nil
}

// wait looks again, and waits, until the ticket at rev is admitted.
func (t *Ticket) wait(ctx context.Context, rev int64, try bool) error {
	for {
		there, v, at, err := t.look(ctx, rev)
		if err != nil {
			return err
		}
		if !there {
			return t.gone(ctx, "while waiting")
		}
		if v.Admitted {
			if t.policy.OnAdmit != nil {
				if err := t.policy.OnAdmit(ctx, t, rev); err != nil {
					return err
				}
			}
			t.held(rev, at)
			return nil
		}
		if try {
			return fmt.Errorf("%w: %s", t.errs.Busy, t.key)
		}
		if err := t.block(ctx, v, at); err != nil {
			return err
		}
	}
}

// block waits for an event on what v names, after revision at, or for ctx or
// the lease to end.
func (t *Ticket) block(ctx context.Context, v Verdict, at int64) error {
	var opts []gateway.Option
	if v.Prefix {
		opts = append(opts, gateway.WithPrefix())
	}
	if v.DeletesOnly {
		opts = append(opts, gateway.WithFilterPut())
	}
	err := await.Change(ctx, t.c, v.Key, at, t.l, opts...)
	switch {
	case err == nil:
		return nil
	case t.l.Err() != nil:
		return t.lost(t.leaseEnded())
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("waiting for %s: %w", v.Key, err)
}

// gone is the error for the ticket's key found deleted (when says at which
// point). It asks the server about the lease: a revocation deletes the key at
// once, before the lease's next renewal could notice, and then the error is the
// lease's end (matching lease.ErrLost). Otherwise someone deleted the key.
func (t *Ticket) gone(ctx context.Context, when string) error {
	err := t.l.Check(ctx)
	switch {
	case t.l.Err() != nil:
		return t.lost(t.leaseEnded())
	case err != nil:
		return t.lost(fmt.Errorf("%s was deleted %s (its lease could not be checked: %v)", t.key, when, err))
	}
	return t.lost(fmt.Errorf("%s was deleted %s by someone else", t.key, when))
}

// held records that the ticket at rev is admitted (seen at revision at).
func (t *Ticket) held(rev, at int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rev, t.seenAt = rev, at
	if t.seenAt == 0 {
		t.seenAt = rev
	}
	t.lostCtx, t.lose, t.halt, t.joined = nil, nil, nil, nil
}

// remove deletes the key created at rev, if it is still that key, after the
// caller's ctx has ended: it uses its own bounded context. A key it cannot
// remove goes with its lease.
func (t *Ticket) remove(rev int64, value string) {
	ctx, cancel := context.WithTimeout(context.Background(), CleanupTimeout)
	defer cancel()
	cmp := gateway.CmpCreateRevision(t.key, gateway.Equal, rev)
	switch {
	case rev == 0 && t.policy.OneKey: // the create's outcome is unknown: the key is ours if it holds our value
		cmp = gateway.CmpValue(t.key, gateway.Equal, value)
	case rev == 0: // the create's outcome is unknown: the key, if any, is ours by name
		cmp = gateway.CmpLease(t.key, gateway.Equal, t.l.ID())
	}
	_, _, _ = fence.Commit(ctx, t.c.Txn().If(cmp).Then(gateway.OpDelete(t.key)))
}

// Resume takes the ticket as held at create revision rev, known from before a
// restart on the same lease, without waiting: the server must show its key with
// that revision, admitted. It fails with an error matching Lost when the key is
// gone or is another one, NotHeld when it is there but not admitted, InUse when
// another ticket of this process holds the key.
func (t *Ticket) Resume(ctx context.Context, rev int64) error {
	if t.l.Err() != nil {
		return t.leaseEnded()
	}
	if err := t.claimKey(); err != nil {
		return err
	}
	there, v, at, err := t.look(ctx, rev)
	switch {
	case err != nil:
	case !there:
		err = t.lost(fmt.Errorf("%s at revision %d is gone", t.key, rev))
	case !v.Admitted:
		err = fmt.Errorf("%w: %s at revision %d is not first in line", t.errs.NotHeld, t.key, rev)
	}
	if err != nil {
		t.unclaimKey()
		return err
	}
	t.mu.Lock()
	t.resumed = true
	t.mu.Unlock()
	t.held(rev, at)
	return nil
}

// Held asks the server whether the ticket holds now: its key exists with the
// create revision it was admitted with, and the policy still admits it. Not
// held as far as this process knows, it is false without asking.
func (t *Ticket) Held(ctx context.Context) (bool, error) {
	rev := t.Token()
	if rev == 0 {
		return false, nil
	}
	there, v, _, err := t.look(ctx, rev)
	return there && v.Admitted, err
}

// look reads, in one txn, the ticket's own key and the policy's Waiting reads
// for the ticket created at rev: whether the key is still there with that
// revision, the policy's verdict, and the revision read at.
func (t *Ticket) look(ctx context.Context, rev int64) (there bool, v Verdict, at int64, err error) {
	r, err := t.c.Txn().Then(append([]gateway.Op{gateway.OpGet(t.key)}, t.policy.Waiting.Reads(rev)...)...).Commit(ctx)
	if err != nil {
		return false, Verdict{}, 0, fmt.Errorf("checking %s: %w", t.key, err)
	}
	own := r.Responses[0].Get.Kvs
	if len(own) == 0 || own[0].CreateRevision != rev {
		return false, Verdict{}, r.Header.Revision, nil
	}
	return true, t.policy.Waiting.Decide(r.Responses[1:], rev), r.Header.Revision, nil
}

// Token is the create revision of the held key, 0 when not held.
func (t *Ticket) Token() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rev
}

// IsOwner is the compare that holds only while this ticket's key exists with
// the create revision it was admitted with. Not held, it never holds (a
// missing key's create revision is 0, never below it).
func (t *Ticket) IsOwner() gateway.Cmp {
	if rev := t.Token(); rev != 0 {
		return gateway.CmpCreateRevision(t.key, gateway.Equal, rev)
	}
	return gateway.CmpCreateRevision(t.key, gateway.Less, 0)
}

// Context returns a context that ends when the ticket is lost or released,
// starting the watch on the own key the first time it is asked for.
func (t *Ticket) Context() context.Context {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lostCtx != nil {
		return t.lostCtx
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	t.lostCtx, t.lose = ctx, cancel
	if t.rev == 0 {
		cancel(t.errs.NotHeld)
		return ctx
	}
	wctx, halt := context.WithCancel(t.l.Context())
	t.halt, t.joined = halt, make(chan struct{})
	go t.watchLoss(wctx, t.rev, t.seenAt, t.joined, cancel)
	return ctx
}

// watchLoss ends the ticket's context when its key is deleted or its lease
// ends. ctx ends with the lease or when Release halts the watcher.
func (t *Ticket) watchLoss(ctx context.Context, rev, from int64, joined chan struct{}, lose context.CancelCauseFunc) {
	defer close(joined)
	retry := backoff.NewExponentialBackOff()
	retry.MaxElapsedTime = 0
	for {
		// ctx is the lease's: its end ends the wait.
		_ = await.Change(ctx, t.c, t.key, from, nil, gateway.WithFilterPut())
		switch {
		case t.l.Err() != nil:
			t.signalLoss(lose, t.lost(t.leaseEnded()))
			return
		case ctx.Err() != nil: // stopped by Release, which set the cause
			return
		}
		// A deletion, a compacted history, or a watch that failed (the client
		// cannot reach anyone): whichever it was, look at the key itself, then
		// watch again from there.
		r, gerr := t.c.Get(ctx, t.key)
		if gerr == nil {
			if len(r.Kvs) == 0 || r.Kvs[0].CreateRevision != rev {
				t.signalLoss(lose, t.gone(ctx, "while held"))
				return
			}
			from = r.Header.Revision
			retry.Reset()
			continue
		}
		t.log().Debug("loss watcher cannot read its key; trying again", "key", t.key, "err", gerr)
		select {
		case <-time.After(retry.NextBackOff()):
		case <-ctx.Done():
		}
	}
}

// signalLoss ends the held ticket's context with cause, and logs it.
func (t *Ticket) signalLoss(end context.CancelCauseFunc, cause error) {
	t.log().Warn("lost", "key", t.key, "err", cause)
	end(cause)
}

// Release deletes the key, fenced by its create revision so that a late or
// repeated release never deletes a newer ticket's key. It returns an error
// matching NotHeld when the ticket is not held, and one matching Lost when it
// had been lost (the key is removed if it was still there).
func (t *Ticket) Release(ctx context.Context) error {
	t.mu.Lock()
	rev, lose, halt, joined, lostCtx := t.rev, t.lose, t.halt, t.joined, t.lostCtx
	t.mu.Unlock()
	if rev == 0 {
		return fmt.Errorf("%w: %s", t.errs.NotHeld, t.key)
	}
	var wasLost error
	if lostCtx != nil && lostCtx.Err() != nil {
		wasLost = context.Cause(lostCtx)
	}
	if t.l.Err() != nil && wasLost == nil {
		wasLost = t.lost(t.leaseEnded())
	}
	if lose != nil {
		lose(t.errs.Released)
	}
	if halt != nil {
		halt()
		<-joined
	}
	r, _, err := fence.Commit(ctx, t.c.Txn().
		If(gateway.CmpCreateRevision(t.key, gateway.Equal, rev)).
		Then(gateway.OpDelete(t.key)))
	if err != nil && wasLost == nil {
		// Still held as far as anyone knows; the caller may try again.
		t.mu.Lock()
		t.lostCtx, t.lose, t.halt, t.joined = nil, nil, nil, nil
		t.mu.Unlock()
		return fmt.Errorf("releasing %s: %w", t.key, err)
	}
	t.mu.Lock()
	t.rev, t.seenAt = 0, 0
	t.mu.Unlock()
	t.unclaimKey()
	switch {
	case wasLost != nil:
		return wasLost
	case !r.Succeeded:
		return t.gone(ctx, "before it was released")
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

// Oldest is the check that admits a ticket whose key is the oldest under pfx.
// Its verdict names nothing to wait for: it is an AtCreate check.
func Oldest(pfx string) Check {
	return Check{
		Reads: func(int64) []gateway.Op { return []gateway.Op{FirstUnder(pfx, 1)} },
		Decide: func(res []gateway.OpResponse, rev int64) Verdict {
			kvs := res[0].Get.Kvs
			return Verdict{Admitted: len(kvs) > 0 && kvs[0].CreateRevision == rev}
		},
	}
}

// NoneBefore is the check that admits a ticket when no key under pfx is older
// than its own, and otherwise waits for the deletion of the one created just
// before it (so that a release wakes one waiter, not all).
func NoneBefore(pfx string) Check {
	return Check{
		Reads: func(rev int64) []gateway.Op { return []gateway.Op{LastBefore(pfx, rev)} },
		Decide: func(res []gateway.OpResponse, _ int64) Verdict {
			kvs := res[0].Get.Kvs
			if len(kvs) == 0 {
				return admitted
			}
			return Verdict{Key: string(kvs[0].Key), DeletesOnly: true}
		},
	}
}

// OneKeyPolicy is the policy of a lock that is one key for every contender
// (etcd3gw's and tooz's layout): whoever creates it holds it.
func OneKeyPolicy() *Policy {
	in := Check{
		Reads:  func(int64) []gateway.Op { return nil },
		Decide: func([]gateway.OpResponse, int64) Verdict { return admitted },
	}
	return &Policy{AtCreate: in, Waiting: in, OneKey: true}
}

// Exclusive is the policy of a ticket admitted when its key is the oldest under
// pfx: a mutex, a writer, a candidate for leadership. It is the algorithm of
// etcd's Go concurrency package: the create txn reads the oldest key, and a
// waiter watches the key created just before its own.
func Exclusive(pfx string) *Policy {
	return &Policy{AtCreate: Oldest(pfx), Waiting: NoneBefore(pfx)}
}
