// Package fence commits fenced transactions: those whose compares make a second
// application change nothing, so that they may be sent again when the outcome of
// the first attempt is unknown.
package fence

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/etcdgw/etcdgw/gateway"
)

// Pauses between resends after the first: a lost reply is sent again at once,
// but a path that loses every reply (a proxy cutting connections, a member
// that accepts and dies) must not be hammered until ctx ends.
const (
	firstPause = 10 * time.Millisecond
	maxPause   = time.Second
)

// Commit commits t, and commits it again while its outcome is unknown
// (gateway.ErrOutcomeUnknown) and ctx lasts: at once the first time, then
// after pauses that double up to a second. Use it only for a transaction
// whose compares fence it: a create revision, a token, an absent key, so that
// an earlier attempt that did apply makes the next one fail its compare rather
// than apply twice.
//
// unknown is the error of the last attempt whose outcome was unknown, or nil:
// a compare that then fails may have failed because of that attempt, not
// because of someone else. When ctx ends first, the last attempt's error is
// returned as err.
func Commit(ctx context.Context, t *gateway.Txn) (r *gateway.TxnResponse, unknown, err error) {
	var pause *backoff.ExponentialBackOff
	for {
		r, err = t.Commit(ctx)
		if !errors.Is(err, gateway.ErrOutcomeUnknown) || ctx.Err() != nil {
			return r, unknown, err
		}
		if unknown != nil {
			if pause == nil {
				pause = backoff.NewExponentialBackOff()
				pause.InitialInterval, pause.MaxInterval, pause.MaxElapsedTime = firstPause, maxPause, 0
				pause.Multiplier = 2 // the package's default is 1.5
				pause.Reset()
			}
			if !sleep(ctx, pause.NextBackOff()) {
				return r, err, err
			}
		}
		unknown = err
	}
}

// sleep waits d, and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
