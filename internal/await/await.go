// Package await waits for the next change to a key or a range, the step every
// lock, election, barrier and queue takes when it cannot go on yet.
package await

import (
	"context"
	"errors"

	"github.com/etcdgw/etcdgw/gateway"
)

// ErrStopped: the stop channel closed before a change came.
var ErrStopped = errors.New("await: stopped")

// Change watches key (with opts: a prefix, filters) from after revision rev
// and returns nil at the first response that carries events. It returns the
// watch's error if the watch ends (a *gateway.CompactedError when that history
// is gone: the caller should look at the state again), ctx's error when ctx
// ends, and ErrStopped when stop closes first. A nil stop never closes.
func Change(ctx context.Context, c *gateway.Client, key string, rev int64, stop <-chan struct{}, opts ...gateway.Option) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := c.Watch(wctx, key, append(opts, gateway.WithRev(rev+1))...)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	defer w.Stop()
	for {
		select {
		case r, ok := <-w.Events():
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return w.Err()
			}
			if len(r.Events) > 0 {
				return nil
			}
		case <-stop:
			return ErrStopped
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
