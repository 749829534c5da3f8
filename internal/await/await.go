// Package await waits for the next change to a key or a range, the step every
// lock, election, barrier and queue takes when it cannot go on yet.
package await

import (
	"context"
	"fmt"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/lease"
)

// Change waits, through gateway.Client.Await (one shared watch stream per
// scope per client), until key (with opts: a prefix, filters) may have changed
// after revision rev, and then returns nil: the caller reads the state again.
//
// It returns an error matching the lease's error (lease.ErrLost or
// lease.ErrClosed) when l ends first (a nil l never does), ctx's error when ctx
// ends, and the watch's error when the server refuses it.
func Change(ctx context.Context, c *gateway.Client, key string, rev int64, l *lease.Lease, opts ...gateway.Option) error {
	if l == nil {
		return c.Await(ctx, key, rev, opts...)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(l.Context(), cancel)
	defer stop()
	err := c.Await(wctx, key, rev, opts...)
	if err != nil && ctx.Err() == nil && l.Err() != nil {
		return fmt.Errorf("waiting for %s: %w", key, l.Err())
	}
	return err
}
