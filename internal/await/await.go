// Package await waits for the next change to a key or a range, the step every
// lock, election, barrier and queue takes when it cannot go on yet.
package await

import (
	"context"
	"errors"
	"fmt"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/lease"
)

// Change watches key (with opts: a prefix, filters) from after revision rev
// until something may have changed, and then returns nil: the caller reads the
// state again. That is after the first response that carries events, and also
// when the history from rev has been compacted away (the state may have changed
// unseen; reading it again is the only answer either way).
//
// It returns an error matching the lease's error (lease.ErrLost or
// lease.ErrClosed) when l ends first (a nil l never does), ctx's error when ctx
// ends, and the watch's error when the watch ends for another reason. The
// watch is stopped and joined before it returns.
func Change(ctx context.Context, c *gateway.Client, key string, rev int64, l *lease.Lease, opts ...gateway.Option) error {
	var leaseDone <-chan struct{}
	if l != nil {
		leaseDone = l.Done()
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := c.Watch(wctx, key, append(opts, gateway.WithRev(rev+1))...)
	if err != nil {
		return settle(ctx, err)
	}
	defer w.Stop()
	for {
		select {
		case r, ok := <-w.Events():
			if !ok {
				return settle(ctx, w.Err())
			}
			if len(r.Events) > 0 {
				return nil
			}
		case <-leaseDone:
			return fmt.Errorf("waiting for %s: %w", key, l.Err())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// settle turns a watch that could not start or ended into Change's result.
func settle(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, gateway.ErrCompacted):
		return nil
	}
	return err
}
