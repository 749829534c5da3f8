// Package election elects one leader among candidates, over etcd's gateway.
//
// It uses the key layout and algorithm of etcd's Go concurrency package: each
// candidate's key is <name>/<lease ID in hex>, holding its value, and the
// candidate with the oldest key leads. A clientv3 concurrency.Election and
// `etcdctl elect` take part in the same election.
//
// Unlike clientv3, Campaign re-checks its own key after waiting and fails if its
// lease was lost meanwhile (etcd issue 11007, "two leaders"); a leader gets a
// context that ends when its leadership does (lease lost, key deleted,
// resigned), in the spirit of client-go's OnStartedLeading(ctx); and Observe
// reports "no leader" too, survives compaction and member failover, and never
// reports an older leader after a newer one.
package election

import (
	"context"
	"errors"
	"fmt"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/claim"
	"github.com/etcdgw/etcdgw/lease"
)

var (
	// ErrNotLeader: Proclaim or Resign by a candidate that does not lead.
	ErrNotLeader = errors.New("election: not the leader")
	// ErrNoLeader: Leader found no candidate.
	ErrNoLeader = errors.New("election: no leader")
	// ErrLost: leadership (or the campaign) was lost: the lease ended, or the
	// key was deleted by someone else. Campaign returns it when the lease ends
	// while it waits; a leader's Context ends with it.
	ErrLost = claim.ErrLost
	// ErrInUse: another Election object in this process campaigns with the
	// same lease on the same name.
	ErrInUse = claim.ErrInUse
)

// Election is one candidate in the election called name. Its methods are safe
// for concurrent use.
type Election struct {
	k    *claim.Claim
	kd   *claim.Kind
	name string
}

// New returns a candidate in the election name, campaigning through l. A
// candidate that restarts with the lease it had (lease.WithID) resumes its
// place: Campaign finds its key and keeps its position.
func New(l *lease.Lease, name string) *Election {
	pfx := name + "/"
	return &Election{k: claim.New(l, fmt.Sprintf("%s%x", pfx, l.ID())), kd: claim.Exclusive(pfx), name: name}
}

// Campaign waits until this candidate leads, with value as its proclamation.
// When ctx ends first, the candidate's key is removed and ctx's error
// returned; when its lease ends first, the error matches ErrLost.
func (e *Election) Campaign(ctx context.Context, value string) error {
	if err := e.k.Acquire(ctx, e.kd, false, value); err != nil {
		return fmt.Errorf("election %s: %w", e.name, err)
	}
	if e.k.Resumed() { // the key was there with its old value
		return e.Proclaim(ctx, value)
	}
	return nil
}

// Proclaim changes the leader's value without giving up leadership. It fails
// with ErrNotLeader when this candidate does not lead.
func (e *Election) Proclaim(ctx context.Context, value string) error {
	if e.k.Token() == 0 {
		return fmt.Errorf("election %s: %w", e.name, ErrNotLeader)
	}
	r, err := e.k.Client().Txn().
		If(e.k.IsOwner()).
		Then(gateway.OpPut(e.k.Key(), value, gateway.WithIgnoreLease())).
		Commit(ctx)
	if err != nil {
		return fmt.Errorf("election %s: proclaiming: %w", e.name, err)
	}
	if !r.Succeeded {
		return fmt.Errorf("election %s: %w: the leader's key is gone", e.name, ErrNotLeader)
	}
	return nil
}

// Resign gives up leadership (the next candidate takes over). It fails with
// ErrNotLeader when this candidate does not lead, and with an error matching
// ErrLost when leadership had been lost before.
func (e *Election) Resign(ctx context.Context) error {
	err := e.k.Release(ctx)
	if errors.Is(err, claim.ErrNotLocked) {
		return fmt.Errorf("election %s: %w", e.name, ErrNotLeader)
	}
	return err
}

// Key is the candidate's key: <name>/<lease ID in hex>.
func (e *Election) Key() string { return e.k.Key() }

// Rev is the leader's term: its key's create revision, rising with every new
// leader; a fencing token. It is 0 when this candidate does not lead.
func (e *Election) Rev() int64 { return e.k.Token() }

// IsLeader is a compare that holds only while this candidate leads in its
// current term. Put it in the If of your own transactions.
func (e *Election) IsLeader() gateway.Cmp { return e.k.IsOwner() }

// Context ends when leadership ends: lease lost, key deleted by someone else
// (cause ErrLost), or resigned (cause claim's not-locked error). Called while
// not leading, it returns a context that has ended.
func (e *Election) Context() context.Context { return e.k.Context() }

// Done is Context().Done().
func (e *Election) Done() <-chan struct{} { return e.k.Context().Done() }

// Leader returns the current leader of this candidate's election.
func (e *Election) Leader(ctx context.Context) (*gateway.KeyValue, error) {
	return Leader(ctx, e.k.Client(), e.name)
}

// Observe reports the leadership of this candidate's election; see Observe.
func (e *Election) Observe(ctx context.Context) <-chan Leadership {
	return Observe(ctx, e.k.Client(), e.name)
}

// Leader returns the current leader of the election name (its key, value and
// term as CreateRevision), or an error matching ErrNoLeader.
func Leader(ctx context.Context, c *gateway.Client, name string) (*gateway.KeyValue, error) {
	r, err := c.Get(ctx, name+"/", gateway.WithPrefix(),
		gateway.WithSort(gateway.SortByCreateRevision, gateway.SortAscend), gateway.WithLimit(1))
	if err != nil {
		return nil, fmt.Errorf("election %s: %w", name, err)
	}
	if len(r.Kvs) == 0 {
		return nil, fmt.Errorf("election %s: %w", name, ErrNoLeader)
	}
	return &r.Kvs[0], nil
}
