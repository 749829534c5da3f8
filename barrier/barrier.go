package barrier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/await"
	"github.com/etcdgw/etcdgw/lease"
)

// cleanupTimeout bounds the removal of a participant's key after its ctx ended.
const cleanupTimeout = 5 * time.Second

// The errors of barriers.
var (
	// ErrHeld: Hold found the barrier held by someone else.
	ErrHeld = errors.New("barrier: held by someone else")
	// ErrInvalidArgument: NewDoubleBarrier was given a count that is not
	// positive.
	ErrInvalidArgument = errors.New("barrier: invalid argument")
)

// Barrier is a key that, while it exists, makes Wait block. Its holder binds
// it to a lease: if the holder crashes, the barrier goes with its lease.
type Barrier struct {
	l   *lease.Lease
	c   *gateway.Client
	key string
}

// New returns the barrier key, to be held through l.
func New(l *lease.Lease, key string) *Barrier { return &Barrier{l: l, c: l.Client(), key: key} }

// Lease is the lease the barrier is held through.
func (b *Barrier) Lease() *lease.Lease { return b.l }

// Hold raises the barrier. It fails with ErrHeld when someone else holds it;
// holding it again through the same lease is not an error.
func (b *Barrier) Hold(ctx context.Context) error {
	r, err := b.c.Txn().
		If(gateway.CmpCreateRevision(b.key, gateway.Equal, 0)).
		Then(gateway.OpPut(b.key, "", gateway.WithLease(b.l.ID()))).
		Else(gateway.OpGet(b.key)).
		Commit(ctx)
	if err != nil {
		return fmt.Errorf("barrier %s: holding: %w", b.key, err)
	}
	if !r.Succeeded {
		if kvs := r.Responses[0].Get.Kvs; len(kvs) == 0 || kvs[0].Lease != b.l.ID() {
			return fmt.Errorf("barrier %s: %w", b.key, ErrHeld)
		}
	}
	return nil
}

// Release lowers the barrier, whoever holds it, and lets every waiter go.
// Releasing a barrier that is down is not an error.
func (b *Barrier) Release(ctx context.Context) error {
	if _, err := b.c.Delete(ctx, b.key); err != nil {
		return fmt.Errorf("barrier %s: releasing: %w", b.key, err)
	}
	return nil
}

// Wait returns when the barrier is down (at once if it is not held), or with
// ctx's error.
func (b *Barrier) Wait(ctx context.Context) error { return Wait(ctx, b.c, b.key) }

// Wait returns when the barrier key is down, or with ctx's error. Waiters need
// no lease.
func Wait(ctx context.Context, c *gateway.Client, key string) error {
	for {
		r, err := c.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("barrier %s: %w", key, err)
		}
		if len(r.Kvs) == 0 {
			return nil
		}
		if err := await.Change(ctx, c, key, r.Header.Revision, nil, gateway.WithFilterPut()); err != nil {
			return fmt.Errorf("barrier %s: %w", key, err)
		}
		// Deleted, or the history was compacted: look again.
	}
}

// DoubleBarrier lets count participants enter together and leave together.
// Each participant's key (<name>/waiters/<lease>_<uuid>) is bound to its
// lease.
//
// If a participant crashes before the barrier opens, its key goes with its
// lease and the others keep waiting in Enter until count live participants
// have entered (or their ctx ends). If it crashes after entering, the others'
// Leave completes once its lease has expired.
type DoubleBarrier struct {
	l      *lease.Lease
	c      *gateway.Client
	name   string
	count  int64
	key    string
	ready  string
	prefix string
}

// NewDoubleBarrier returns a participant in the double barrier name of count
// participants, through l. count must be positive.
func NewDoubleBarrier(l *lease.Lease, name string, count int) (*DoubleBarrier, error) {
	if count <= 0 {
		return nil, fmt.Errorf("%w: %d participants is not positive", ErrInvalidArgument, count)
	}
	pfx := name + "/waiters/"
	return &DoubleBarrier{
		l: l, c: l.Client(), name: name, count: int64(count), prefix: pfx, ready: name + "/ready",
		key: fmt.Sprintf("%s%x_%s", pfx, l.ID(), uuid.NewString()),
	}, nil
}

// Lease is the lease the participant's key is bound to.
func (d *DoubleBarrier) Lease() *lease.Lease { return d.l }

// Enter registers the participant and returns when count participants have
// entered, or with ctx's error (the participant's key is then removed) or the
// lease's.
func (d *DoubleBarrier) Enter(ctx context.Context) error {
	r, err := d.c.Txn().Then(
		gateway.OpPut(d.key, "", gateway.WithLease(d.l.ID())),
		gateway.OpGet(d.prefix, gateway.WithPrefix(), gateway.WithCountOnly()),
		gateway.OpGet(d.ready, gateway.WithCountOnly()),
	).Commit(ctx)
	if err != nil {
		return fmt.Errorf("barrier %s: entering: %w", d.name, err)
	}
	if r.Responses[2].Get.Count > 0 {
		return nil
	}
	if r.Responses[1].Get.Count >= d.count {
		// The last one in opens the barrier for everyone.
		if _, err := d.c.Put(ctx, d.ready, "", gateway.WithLease(d.l.ID())); err != nil {
			return fmt.Errorf("barrier %s: opening: %w", d.name, err)
		}
		return nil
	}
	rev := r.Header.Revision
	for {
		if err := await.Change(ctx, d.c, d.ready, rev, d.l); err != nil {
			d.abandon()
			return fmt.Errorf("barrier %s: waiting to enter: %w", d.name, err)
		}
		// Opened, or the history was compacted: look.
		g, err := d.c.Get(ctx, d.ready, gateway.WithCountOnly())
		if err != nil {
			d.abandon()
			return fmt.Errorf("barrier %s: waiting to enter: %w", d.name, err)
		}
		if g.Count > 0 {
			return nil
		}
		rev = g.Header.Revision
	}
}

// abandon removes the participant's key after its ctx ended.
func (d *DoubleBarrier) abandon() {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	_, _ = d.c.Delete(ctx, d.key)
}

// Leave removes the participant and returns when every participant has left
// (or its lease has expired), or with ctx's error.
func (d *DoubleBarrier) Leave(ctx context.Context) error {
	r, err := d.c.Txn().Then(
		gateway.OpDelete(d.key),
		gateway.OpGet(d.prefix, gateway.WithPrefix(), gateway.WithCountOnly()),
	).Commit(ctx)
	if err != nil {
		return fmt.Errorf("barrier %s: leaving: %w", d.name, err)
	}
	left, rev := r.Responses[1].Get.Count, r.Header.Revision
	for left > 0 {
		if err := await.Change(ctx, d.c, d.prefix, rev, nil, gateway.WithPrefix(), gateway.WithFilterPut()); err != nil {
			return fmt.Errorf("barrier %s: waiting to leave: %w", d.name, err)
		}
		g, err := d.c.Get(ctx, d.prefix, gateway.WithPrefix(), gateway.WithCountOnly())
		if err != nil {
			return fmt.Errorf("barrier %s: waiting to leave: %w", d.name, err)
		}
		left, rev = g.Count, g.Header.Revision
	}
	// The last one out closes the barrier for the next round.
	if _, err := d.c.Delete(ctx, d.ready); err != nil {
		return fmt.Errorf("barrier %s: closing: %w", d.name, err)
	}
	return nil
}
