package election

import (
	"context"
	"errors"
	"fmt"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/ticket"
	"github.com/etcdgw/etcdgw/lease"
)

// The errors of elections. Package mutex has an ErrLost of its own, for locks;
// each package's errors match only its own sentinels. ErrNoLeader here is an
// election without candidates; gateway.ErrNoLeader is a member without a Raft
// leader.
var (
	// ErrNotLeader: Proclaim or Resign by a candidate that does not lead; the
	// cause of Context asked for while not leading.
	ErrNotLeader = errors.New("election: not the leader")
	// ErrNoLeader: Leader found no candidate.
	ErrNoLeader = errors.New("election: no leader")
	// ErrLost: leadership (or the campaign) was lost: the lease ended, or the
	// key was deleted by someone else. Campaign returns it when the lease ends
	// while it waits; a leader's Context ends with it as the cause. When the
	// lease ended, the error also matches the lease's (lease.ErrLost or
	// lease.ErrClosed).
	ErrLost = errors.New("election: leadership lost")
	// ErrResigned: the cause of a leader's Context after Resign.
	ErrResigned = errors.New("election: resigned")
	// ErrInUse: another Election object in this process campaigns with the
	// same lease on the same name.
	ErrInUse = errors.New("election: already campaigning in this process")
)

// errBusy is never returned: a campaign always waits.
var errBusy = errors.New("election: busy")

var ticketErrors = &ticket.Errors{Busy: errBusy, NotHeld: ErrNotLeader, Released: ErrResigned, Lost: ErrLost, InUse: ErrInUse}

// Election is one candidate in the election called name. Its methods are safe
// for concurrent use.
type Election struct {
	k    *ticket.Ticket
	name string
}

// New returns a candidate in the election name, campaigning through l. A
// candidate that restarts with the lease it had (lease.WithID) resumes its
// place: Campaign finds its key and keeps its position.
func New(l *lease.Lease, name string) *Election {
	pfx := name + "/"
	return &Election{k: ticket.New(l, fmt.Sprintf("%s%x", pfx, l.ID()), ticket.Exclusive(pfx), ticketErrors), name: name}
}

// Resume makes a candidate that leads in term rev (its Token from before a
// restart, on the same lease: lease.WithID) without campaigning again, as
// clientv3's ResumeElection does, after asking the server: its key must be
// there with that term, first in line. Otherwise it fails at once, with an
// error matching ErrLost when that term is over (the key is gone or newer) and
// ErrNotLeader when another candidate leads; Campaign would wait instead.
func Resume(ctx context.Context, l *lease.Lease, name string, rev int64) (*Election, error) {
	e := New(l, name)
	if err := e.k.Resume(ctx, rev); err != nil {
		return nil, fmt.Errorf("election %s: %w", name, err)
	}
	return e, nil
}

// Campaign waits until this candidate leads, with value as its proclamation.
// When ctx ends first, the candidate's key is removed and ctx's error
// returned; when its lease ends first, the error matches ErrLost.
func (e *Election) Campaign(ctx context.Context, value string) error {
	if err := e.k.Acquire(ctx, value); err != nil {
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
	if err := e.k.Release(ctx); err != nil {
		return fmt.Errorf("election %s: %w", e.name, err)
	}
	return nil
}

// Key is the candidate's key: <name>/<lease ID in hex>.
func (e *Election) Key() string { return e.k.Key() }

// Token is the leader's term: its key's create revision, rising with every new
// leader; a fencing token, as a lock's Token is. It is 0 when this candidate
// does not lead. (clientv3 calls it Rev.)
func (e *Election) Token() int64 { return e.k.Token() }

// IsOwner is a compare that holds only while this candidate leads in its
// current term. Put it in the If of your own transactions.
func (e *Election) IsOwner() gateway.Cmp { return e.k.IsOwner() }

// Lease is the lease the candidate campaigns through.
func (e *Election) Lease() *lease.Lease { return e.k.Lease() }

// Context ends when leadership ends: lease lost or key deleted by someone else
// (cause ErrLost), or resigned (cause ErrResigned). Called while not leading,
// it returns a context that has ended (cause ErrNotLeader).
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

// Held asks the server whether this Election holds its leadership now: its key is there
// with its token and still first in line. It answers for this moment only;
// guard writes with IsOwner rather than checking first.
func (e *Election) Held(ctx context.Context) (bool, error) { return e.k.Held(ctx) }
