// Package fence commits fenced transactions: those whose compares make a second
// application change nothing, so that they may be sent again when the outcome of
// the first attempt is unknown.
package fence

import (
	"context"
	"errors"

	"github.com/etcdgw/etcdgw/gateway"
)

// Commit commits t, and commits it again while its outcome is unknown
// (gateway.ErrOutcomeUnknown) and ctx lasts. Use it only for a transaction
// whose compares fence it: a create revision, a token, an absent key, so that
// an earlier attempt that did apply makes the next one fail its compare rather
// than apply twice.
//
// unknown is the error of the last attempt whose outcome was unknown, or nil:
// a compare that then fails may have failed because of that attempt, not
// because of someone else. When ctx ends first, the last attempt's error is
// returned as err.
func Commit(ctx context.Context, t *gateway.Txn) (r *gateway.TxnResponse, unknown, err error) {
	for {
		r, err = t.Commit(ctx)
		if !errors.Is(err, gateway.ErrOutcomeUnknown) || ctx.Err() != nil {
			return r, unknown, err
		}
		unknown = err
	}
}
