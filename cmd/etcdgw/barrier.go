package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/etcdgw/etcdgw/barrier"
)

func init() {
	var ttl int64
	flagsOf["barrier hold"] = func(fs *flag.FlagSet, _ *invocation) {
		fs.Int64Var(&ttl, "ttl", 10, "the lease's TTL in seconds: a crashed holder's barrier falls after it")
	}
	register(&command{name: "barrier", subs: []*command{
		{name: "hold", args: "NAME", summary: "raise a barrier and keep it up until it is released or etcdgw is interrupted",
			run: func(ctx context.Context, inv *invocation) error {
				if err := inv.want(1, 1); err != nil {
					return err
				}
				l, revoke, err := inv.lease(ctx, ttl)
				if err != nil {
					return err
				}
				defer revoke() // the key is on the lease: revoking lowers the barrier
				b := barrier.New(l, inv.args[0])
				if err := b.Hold(ctx); errors.Is(err, barrier.ErrHeld) {
					return &exitError{code: exitHeld, err: err}
				} else if err != nil {
					return err
				}
				out := inv.out()
				out.line("held " + inv.args[0])
				if err := out.flush(); err != nil {
					return err
				}
				// Until someone releases it (the key goes), the lease is lost,
				// or an interrupt lowers it.
				waitCtx, cancel := context.WithCancel(ctx)
				defer cancel()
				stop := context.AfterFunc(l.Context(), cancel)
				defer stop()
				err = b.Wait(waitCtx)
				switch {
				case ctx.Err() != nil:
					return nil
				case l.Err() != nil:
					return &exitError{code: exitLost, err: fmt.Errorf("barrier %s lost with its lease: %v", inv.args[0], l.Err())}
				}
				return err
			}},
		{name: "release", args: "NAME", summary: "lower a barrier, whoever holds it, and let its waiters go",
			run: func(ctx context.Context, inv *invocation) error {
				if err := inv.want(1, 1); err != nil {
					return err
				}
				c, err := inv.client()
				if err != nil {
					return err
				}
				// What Barrier.Release does: delete the key.
				if _, err := c.Delete(ctx, inv.args[0]); err != nil {
					return err
				}
				out := inv.out()
				out.line("released " + inv.args[0])
				return out.flush()
			}},
		{name: "wait", args: "NAME", summary: "wait until a barrier is down (at once if it is not up)",
			run: func(ctx context.Context, inv *invocation) error {
				if err := inv.want(1, 1); err != nil {
					return err
				}
				c, err := inv.client()
				if err != nil {
					return err
				}
				return barrier.Wait(ctx, c, inv.args[0])
			}},
	}})
}
