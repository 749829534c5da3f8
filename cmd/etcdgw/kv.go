package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/etcdgw/etcdgw/gateway"
)

// rangeFlags are the flags that make a key into a range.
type rangeFlags struct {
	prefix, fromKey bool
}

func (r *rangeFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&r.prefix, "prefix", false, "every key starting with KEY")
	fs.BoolVar(&r.fromKey, "from-key", false, "every key from KEY on (byte order)")
}

// options turns KEY [RANGE_END] and the range flags into gateway options.
func (r *rangeFlags) options(args []string) ([]gateway.Option, error) {
	var opts []gateway.Option
	n := 0
	if len(args) > 1 {
		opts = append(opts, gateway.WithRange(args[1]))
		n++
	}
	if r.prefix {
		opts = append(opts, gateway.WithPrefix())
		n++
	}
	if r.fromKey {
		opts = append(opts, gateway.WithFromKey())
		n++
	}
	if n > 1 {
		return nil, usagef("give one of RANGE_END, --prefix and --from-key")
	}
	return opts, nil
}

func init() {
	var get struct {
		rangeFlags
		rev                                  int64
		limit                                int64
		keysOnly, countOnly, valueOnly, serz bool
	}
	flagsOf["get"] = func(fs *flag.FlagSet, _ *invocation) {
		get.register(fs)
		fs.Int64Var(&get.rev, "rev", 0, "read at this revision")
		fs.Int64Var(&get.limit, "limit", 0, "at most this many keys")
		fs.BoolVar(&get.keysOnly, "keys-only", false, "keys without values")
		fs.BoolVar(&get.countOnly, "count-only", false, "the number of keys alone")
		fs.BoolVar(&get.valueOnly, "print-value-only", false, "values without keys (simple output)")
		fs.BoolVar(&get.serz, "consistency-serializable", false, "read the member's own data (no quorum)")
	}
	register(&command{name: "get", args: "KEY [RANGE_END]", summary: "read a key or a range",
		run: func(ctx context.Context, inv *invocation) error {
			if err := inv.want(1, 2); err != nil {
				return err
			}
			opts, err := get.options(inv.args)
			if err != nil {
				return err
			}
			if get.rev != 0 {
				opts = append(opts, gateway.WithRev(get.rev))
			}
			if get.limit != 0 {
				opts = append(opts, gateway.WithLimit(get.limit))
			}
			if get.keysOnly {
				opts = append(opts, gateway.WithKeysOnly())
			}
			if get.countOnly {
				opts = append(opts, gateway.WithCountOnly())
			}
			if get.serz {
				opts = append(opts, gateway.WithSerializable())
			}
			c, err := inv.client()
			if err != nil {
				return err
			}
			r, err := c.Get(ctx, inv.args[0], opts...)
			if err != nil {
				return err
			}
			out := inv.out()
			switch {
			case out.json:
				return out.encode(r)
			case get.countOnly:
				out.line(fmt.Sprint(r.Count))
			case out.table:
				out.row("KEY", "VALUE", "CREATE", "MOD", "VERSION", "LEASE")
				for _, kv := range r.Kvs {
					out.row(string(kv.Key), string(kv.Value), fmt.Sprint(kv.CreateRevision), fmt.Sprint(kv.ModRevision), fmt.Sprint(kv.Version), leaseHex(kv.Lease))
				}
			default:
				for _, kv := range r.Kvs {
					if !get.valueOnly {
						out.line(string(kv.Key))
					}
					if !get.keysOnly {
						out.line(string(kv.Value))
					}
				}
			}
			return out.flush()
		}})

	var put struct {
		lease                   string
		prevKV, ignoreValue, il bool
	}
	flagsOf["put"] = func(fs *flag.FlagSet, _ *invocation) {
		fs.StringVar(&put.lease, "lease", "", "attach the key to this lease (hex ID, as lease grant prints it)")
		fs.BoolVar(&put.prevKV, "prev-kv", false, "print the previous key and value")
		fs.BoolVar(&put.ignoreValue, "ignore-value", false, "keep the current value (update the lease)")
		fs.BoolVar(&put.il, "ignore-lease", false, "keep the current lease")
	}
	register(&command{name: "put", args: "KEY [VALUE]", summary: "write a key (VALUE from stdin when not given)",
		run: func(ctx context.Context, inv *invocation) error {
			args := append(inv.args, inv.after...) // "put KEY -- -value" as in etcdctl
			if len(args) < 1 || len(args) > 2 {
				return usagef("wrong number of arguments (%d); run 'etcdgw help put'", len(args))
			}
			var val string
			switch {
			case len(args) == 2:
				val = args[1]
			case put.ignoreValue:
			default:
				b, err := io.ReadAll(inv.e.stdin)
				if err != nil {
					return err
				}
				val = string(b)
			}
			var opts []gateway.Option
			if put.lease != "" {
				id, err := parseLease(put.lease)
				if err != nil {
					return err
				}
				opts = append(opts, gateway.WithLease(id))
			}
			if put.prevKV {
				opts = append(opts, gateway.WithPrevKV())
			}
			if put.ignoreValue {
				opts = append(opts, gateway.WithIgnoreValue())
			}
			if put.il {
				opts = append(opts, gateway.WithIgnoreLease())
			}
			c, err := inv.client()
			if err != nil {
				return err
			}
			r, err := c.Put(ctx, args[0], val, opts...)
			if err != nil {
				return err
			}
			out := inv.out()
			if out.json {
				return out.encode(r)
			}
			out.line("OK")
			if r.PrevKv != nil {
				out.line(string(r.PrevKv.Key))
				out.line(string(r.PrevKv.Value))
			}
			return out.flush()
		}})

	var del struct {
		rangeFlags
		prevKV bool
	}
	flagsOf["del"] = func(fs *flag.FlagSet, _ *invocation) {
		del.register(fs)
		fs.BoolVar(&del.prevKV, "prev-kv", false, "print the deleted keys and values")
	}
	register(&command{name: "del", args: "KEY [RANGE_END]", summary: "delete a key or a range; prints how many",
		run: func(ctx context.Context, inv *invocation) error {
			if err := inv.want(1, 2); err != nil {
				return err
			}
			opts, err := del.options(inv.args)
			if err != nil {
				return err
			}
			if del.prevKV {
				opts = append(opts, gateway.WithPrevKV())
			}
			c, err := inv.client()
			if err != nil {
				return err
			}
			r, err := c.Delete(ctx, inv.args[0], opts...)
			if err != nil {
				return err
			}
			out := inv.out()
			if out.json {
				return out.encode(r)
			}
			out.line(fmt.Sprint(r.Deleted))
			for _, kv := range r.PrevKvs {
				out.line(string(kv.Key))
				out.line(string(kv.Value))
			}
			return out.flush()
		}})

	var watch struct {
		rangeFlags
		rev    int64
		prevKV bool
	}
	flagsOf["watch"] = func(fs *flag.FlagSet, _ *invocation) {
		watch.register(fs)
		fs.Int64Var(&watch.rev, "rev", 0, "from this revision (default: from now)")
		fs.BoolVar(&watch.prevKV, "prev-kv", false, "print each event's previous value")
	}
	register(&command{name: "watch", args: "KEY [RANGE_END]", summary: "print every change to a key or range until interrupted",
		run: func(ctx context.Context, inv *invocation) error {
			if err := inv.want(1, 2); err != nil {
				return err
			}
			opts, err := watch.options(inv.args)
			if err != nil {
				return err
			}
			if watch.rev != 0 {
				opts = append(opts, gateway.WithRev(watch.rev))
			}
			if watch.prevKV {
				opts = append(opts, gateway.WithPrevKV())
			}
			c, err := inv.client()
			if err != nil {
				return err
			}
			w, err := c.Watch(ctx, inv.args[0], opts...)
			if err != nil {
				return err
			}
			defer w.Stop()
			out := inv.out()
			for r := range w.Events() {
				if out.json {
					if err := out.encode(r); err != nil {
						return err
					}
					continue
				}
				for _, ev := range r.Events {
					out.line(strings.ToUpper(ev.Type.String()))
					out.line(string(ev.Kv.Key))
					if ev.Type == gateway.EventPut {
						out.line(string(ev.Kv.Value))
					}
					if ev.PrevKv != nil {
						out.line(string(ev.PrevKv.Value))
					}
				}
				if err := out.flush(); err != nil {
					return err
				}
			}
			if ctx.Err() != nil {
				return nil // interrupted: the normal end of a watch
			}
			return w.Err()
		}})
}
