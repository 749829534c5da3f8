package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/etcdgw/etcdgw/gateway"
)

// The errors of a Lease. A lock or a leadership held through a lease that ends
// is lost too: its error matches both this package's error and its own
// package's ErrLost (mutex.ErrLost, election.ErrLost).
var (
	// ErrLost matches every error that ends a lease the manager did not end
	// itself: the server reported it gone, or it could not be renewed in time.
	ErrLost = errors.New("lease: lost")
	// ErrExpired: no renewal succeeded before the safety deadline. It also
	// matches ErrLost.
	ErrExpired = errors.New("lease: not renewed in time")
	// ErrInvalidArgument: New was given an option it cannot use (a TTL that
	// is not positive).
	ErrInvalidArgument = errors.New("lease: invalid argument")
	// ErrClosed: the lease was ended by Close or Orphan. (gateway.ErrClosed
	// is a closed Client.)
	ErrClosed = errors.New("lease: closed")
)

// LostError tells why a lease was lost. It matches ErrLost and its Reason:
// gateway.ErrLeaseNotFound when the server said the lease is gone, ErrExpired
// when renewals failed for too long.
type LostError struct {
	// ID is the lease that was lost.
	ID int64
	// Reason is how it was lost: gateway.ErrLeaseNotFound or ErrExpired.
	Reason error
	// Last is the last renewal error, if any.
	Last error
}

// Error names the lease and how it was lost.
func (e *LostError) Error() string {
	s := fmt.Sprintf("lease %x lost: %v", e.ID, e.Reason)
	if e.Last != nil && !errors.Is(e.Reason, e.Last) {
		s += fmt.Sprintf(" (last renewal error: %v)", e.Last)
	}
	return s
}

// Unwrap returns ErrLost and the reason.
func (e *LostError) Unwrap() []error { return []error{ErrLost, e.Reason} }

// DefaultTTL is the TTL New grants when WithTTL is not given, in seconds.
const DefaultTTL = 60

type options struct {
	ttl    int64
	id     int64
	margin time.Duration
	logger *slog.Logger
}

// Option configures New.
type Option func(*options)

// WithTTL sets the TTL to grant, in seconds (default DefaultTTL). The server may
// raise a TTL below its minimum. Ignored when adopting a lease with WithID.
func WithTTL(seconds int64) Option { return func(o *options) { o.ttl = seconds } }

// WithID adopts an existing lease instead of granting one, for a process that
// resumes after a restart. New fails with an error matching
// gateway.ErrLeaseNotFound when the lease is gone.
func WithID(id int64) Option { return func(o *options) { o.id = id } }

// WithMargin sets how long before the server could expire the lease the manager
// declares it lost (default TTL/6). A larger margin gives holders more time to
// stop their work before someone else can take over.
func WithMargin(d time.Duration) Option { return func(o *options) { o.margin = d } }

// WithLogger logs renewal failures at debug level and losses at warn level.
// Without it the lease logs through its client's logger (Config.Logger).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Lease is a lease kept alive in the background. Its methods are safe for
// concurrent use.
type Lease struct {
	c      *gateway.Client
	id     int64
	ttl    time.Duration
	margin time.Duration
	log    *slog.Logger

	ctx    context.Context // cancelled with the lease's end as cause
	end    context.CancelCauseFunc
	stop   chan struct{} // closed by Close and Orphan
	joined chan struct{} // closed when the renewal goroutine has returned
	once   sync.Once

	mu       sync.Mutex
	deadline time.Time
}

// New grants a lease (or adopts one, with WithID) and starts keeping it alive.
// The lease stays alive until Close, Orphan or its loss; ctx bounds only the
// grant.
func New(ctx context.Context, c *gateway.Client, opts ...Option) (*Lease, error) {
	o := options{ttl: DefaultTTL}
	for _, opt := range opts {
		opt(&o)
	}
	if o.ttl <= 0 && o.id == 0 {
		return nil, fmt.Errorf("%w: TTL %d is not positive", ErrInvalidArgument, o.ttl)
	}
	sent := time.Now()
	var ttl int64
	if o.id != 0 {
		r, err := c.KeepAliveOnce(ctx, o.id)
		if err != nil {
			return nil, fmt.Errorf("lease: adopting %x: %w", o.id, err)
		}
		ttl = r.TTL
	} else {
		r, err := c.Grant(ctx, o.ttl)
		if err != nil {
			return nil, fmt.Errorf("lease: granting: %w", err)
		}
		o.id, ttl = r.ID, r.TTL
	}
	l := &Lease{
		c: c, id: o.id, ttl: time.Duration(ttl) * time.Second, margin: o.margin, log: o.logger,
		stop: make(chan struct{}), joined: make(chan struct{}),
	}
	if l.margin <= 0 || l.margin >= l.ttl {
		l.margin = l.ttl / 6
	}
	if l.log == nil {
		l.log = c.Logger()
	}
	l.deadline = sent.Add(l.ttl - l.margin)
	l.ctx, l.end = context.WithCancelCause(context.Background())
	go l.run()
	return l, nil
}

// ID is the lease's ID, to attach keys to it (gateway.WithLease).
func (l *Lease) ID() int64 { return l.id }

// TTL is the lease's TTL as the server granted it.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Client is the gateway client the lease is renewed through.
func (l *Lease) Client() *gateway.Client { return l.c }

// Logger is the logger the lease logs through (WithLogger, or its client's);
// the locks, elections and queues held through it log there too.
func (l *Lease) Logger() *slog.Logger { return l.log }

// Done is closed when the lease ends: lost, closed or orphaned.
func (l *Lease) Done() <-chan struct{} { return l.ctx.Done() }

// Context is cancelled when the lease ends; context.Cause gives Err.
func (l *Lease) Context() context.Context { return l.ctx }

// Err is nil while the lease is kept alive. Once it has ended, Err is a
// *LostError (matching ErrLost) or an error matching ErrClosed.
func (l *Lease) Err() error {
	if l.ctx.Err() == nil {
		return nil
	}
	return context.Cause(l.ctx)
}

// Deadline is the time until which the lease is certainly alive on the server
// as far as this process knows: the last successful renewal's send time plus
// the TTL, less the safety margin. It is zero once the lease has ended.
func (l *Lease) Deadline() time.Time {
	if l.ctx.Err() != nil {
		return time.Time{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deadline
}

// Check asks the server whether the lease still exists, without renewing it.
// When the server says it is gone (revoked, or expired while this process
// could not renew it), the lease ends at once, as it would at its next renewal,
// and Check returns that *LostError. It returns nil while the lease exists, the
// lease's Err once it has ended, and otherwise the error that kept it from
// asking; that error leaves the lease as it was.
func (l *Lease) Check(ctx context.Context) error {
	if err := l.Err(); err != nil {
		return err
	}
	_, err := l.c.TimeToLive(ctx, l.id)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gateway.ErrLeaseNotFound):
		l.lose(&LostError{ID: l.id, Reason: err})
		return l.Err()
	}
	return fmt.Errorf("lease: checking %x: %w", l.id, err)
}

// Close stops renewing the lease and revokes it, which deletes every key
// attached to it. Revoking a lease that is already gone is not an error. Close
// may be called more than once.
func (l *Lease) Close(ctx context.Context) error {
	l.halt(fmt.Errorf("lease %x: %w", l.id, ErrClosed))
	if _, err := l.c.Revoke(ctx, l.id); err != nil && !errors.Is(err, gateway.ErrLeaseNotFound) {
		return fmt.Errorf("lease: revoking %x: %w", l.id, err)
	}
	return nil
}

// Orphan stops renewing the lease without revoking it: the lease and its keys
// stay until the server expires it, or until a process adopts it (WithID) and
// keeps it alive.
func (l *Lease) Orphan() {
	l.halt(fmt.Errorf("lease %x: orphaned: %w", l.id, ErrClosed))
}

// halt ends the lease with cause, unless it has ended already, and waits for the
// renewal goroutine.
func (l *Lease) halt(cause error) {
	l.once.Do(func() {
		l.end(cause)
		close(l.stop)
	})
	<-l.joined
}

// run renews the lease until it is halted or lost.
func (l *Lease) run() {
	defer close(l.joined)
	retry := backoff.NewExponentialBackOff()
	retry.InitialInterval = 100 * time.Millisecond
	retry.MaxInterval = max(l.ttl/6, retry.InitialInterval)
	retry.MaxElapsedTime = 0 // the deadline ends the retries
	l.mu.Lock()
	deadline := l.deadline
	l.mu.Unlock()
	expire := time.NewTimer(time.Until(deadline))
	defer expire.Stop()
	tick := time.NewTimer(l.ttl / 3)
	defer tick.Stop()
	var last error
	for {
		select {
		case <-l.stop:
			return
		case <-expire.C:
			l.lose(&LostError{ID: l.id, Reason: ErrExpired, Last: last})
			return
		case <-tick.C:
		}
		sent := time.Now()
		ctx, cancel := context.WithDeadline(l.ctx, deadline)
		r, err := l.c.KeepAliveOnce(ctx, l.id)
		cancel()
		switch {
		case err == nil:
			last = nil
			retry.Reset()
			ttl := time.Duration(r.TTL) * time.Second
			deadline = sent.Add(ttl - l.margin)
			l.mu.Lock()
			l.deadline = deadline
			l.mu.Unlock()
			expire.Reset(time.Until(deadline))
			tick.Reset(ttl / 3)
		case errors.Is(err, gateway.ErrLeaseNotFound):
			l.lose(&LostError{ID: l.id, Reason: err})
			return
		case l.ctx.Err() != nil: // halted while renewing
			return
		default:
			last = err
			l.log.Debug("lease renewal failed", "lease", fmt.Sprintf("%x", l.id), "err", err)
			tick.Reset(retry.NextBackOff())
		}
	}
}

func (l *Lease) lose(err *LostError) {
	l.once.Do(func() {
		l.log.Warn("lease lost", "lease", fmt.Sprintf("%x", l.id), "err", err)
		l.end(err)
		close(l.stop)
	})
}
