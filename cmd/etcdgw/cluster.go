package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
)

func init() {
	register(&command{name: "lease", subs: []*command{
		{name: "grant", args: "TTL", summary: "grant a lease of TTL seconds; prints its hex ID",
			run: func(ctx context.Context, inv *invocation) error {
				if err := inv.want(1, 1); err != nil {
					return err
				}
				var ttl int64
				if _, err := fmt.Sscan(inv.args[0], &ttl); err != nil || ttl <= 0 {
					return usagef("TTL %q: want a number of seconds", inv.args[0])
				}
				c, err := inv.client()
				if err != nil {
					return err
				}
				r, err := c.Grant(ctx, ttl)
				if err != nil {
					return err
				}
				out := inv.out()
				if out.json {
					return out.encode(r)
				}
				out.line(fmt.Sprintf("lease %s granted with TTL(%ds)", leaseHex(r.ID), r.TTL))
				return out.flush()
			}},
		{name: "revoke", args: "ID", summary: "revoke a lease and delete its keys",
			run: leaseCall(func(ctx context.Context, c *gateway.Client, id int64, out *output) error {
				r, err := c.Revoke(ctx, id)
				if err != nil {
					return err
				}
				if out.json {
					return out.encode(r)
				}
				out.line(fmt.Sprintf("lease %s revoked", leaseHex(id)))
				return nil
			})},
		{name: "timetolive", args: "ID", summary: "a lease's remaining TTL (--keys: and its keys)",
			run: leaseCall(func(ctx context.Context, c *gateway.Client, id int64, out *output) error {
				var opts []gateway.Option
				if leaseKeys {
					opts = append(opts, gateway.WithAttachedKeys())
				}
				r, err := c.TimeToLive(ctx, id, opts...)
				if err != nil {
					return err
				}
				if out.json {
					return out.encode(r)
				}
				if r.TTL < 0 {
					out.line(fmt.Sprintf("lease %s already expired", leaseHex(id)))
					return nil
				}
				line := fmt.Sprintf("lease %s granted with TTL(%ds), remaining(%ds)", leaseHex(id), r.GrantedTTL, r.TTL)
				if leaseKeys {
					var keys []string
					for _, k := range r.Keys {
						keys = append(keys, string(k))
					}
					line += fmt.Sprintf(", attached keys(%s)", strings.Join(keys, ", "))
				}
				out.line(line)
				return nil
			})},
		{name: "list", summary: "every lease",
			run: func(ctx context.Context, inv *invocation) error {
				if err := inv.want(0, 0); err != nil {
					return err
				}
				c, err := inv.client()
				if err != nil {
					return err
				}
				r, err := c.Leases(ctx)
				if err != nil {
					return err
				}
				out := inv.out()
				if out.json {
					return out.encode(r)
				}
				out.line(fmt.Sprintf("found %d leases", len(r.Leases)))
				for _, l := range r.Leases {
					out.line(leaseHex(l.ID))
				}
				return out.flush()
			}},
		{name: "keep-alive", args: "ID", summary: "keep a lease alive until interrupted (--once: renew once)",
			run: leaseCall(func(ctx context.Context, c *gateway.Client, id int64, out *output) error {
				for {
					r, err := c.KeepAliveOnce(ctx, id)
					if ctx.Err() != nil {
						return nil // interrupted
					}
					if err != nil {
						return err
					}
					if out.json {
						if err := out.encode(r); err != nil {
							return err
						}
					} else {
						out.line(fmt.Sprintf("lease %s keepalived with TTL(%d)", leaseHex(id), r.TTL))
					}
					if keepOnce {
						return nil
					}
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(time.Duration(r.TTL) * time.Second / 3):
					}
				}
			})},
	}})
	flagsOf["lease timetolive"] = func(fs *flag.FlagSet, _ *invocation) {
		fs.BoolVar(&leaseKeys, "keys", false, "list the keys attached to the lease")
	}
	flagsOf["lease keep-alive"] = func(fs *flag.FlagSet, _ *invocation) {
		fs.BoolVar(&keepOnce, "once", false, "renew once and exit")
	}

	register(&command{name: "member", subs: []*command{
		{name: "list", summary: "the cluster's members",
			run: func(ctx context.Context, inv *invocation) error {
				if err := inv.want(0, 0); err != nil {
					return err
				}
				c, err := inv.client()
				if err != nil {
					return err
				}
				r, err := c.MemberList(ctx)
				if err != nil {
					return err
				}
				out := inv.out()
				if out.json {
					return out.encode(r)
				}
				if out.table {
					out.row("ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER")
				}
				for _, m := range r.Members {
					status := "started"
					if m.Name == "" {
						status = "unstarted"
					}
					out.row(fmt.Sprintf("%x", m.ID), status, m.Name, strings.Join(m.PeerURLs, ","), strings.Join(m.ClientURLs, ","), fmt.Sprint(m.IsLearner))
				}
				return out.flush()
			}},
	}})

	register(&command{name: "endpoint", subs: []*command{
		{name: "status", summary: "each endpoint's status, asked of that member",
			run: perEndpoint(func(ctx context.Context, c *gateway.Client, ep string, out *output) error {
				r, err := c.Status(ctx, gateway.WithEndpoint(ep))
				if err != nil {
					return err
				}
				if out.json {
					return out.encode(struct {
						Endpoint string                  `json:"Endpoint"`
						Status   *gateway.StatusResponse `json:"Status"`
					}{ep, r})
				}
				out.row(ep, fmt.Sprintf("%x", r.Header.MemberID), r.Version, fmt.Sprint(r.DbSize), fmt.Sprint(r.Leader == r.Header.MemberID),
					fmt.Sprint(r.RaftTerm), fmt.Sprint(r.RaftIndex), fmt.Sprint(r.Header.Revision))
				return nil
			}, "ENDPOINT", "ID", "VERSION", "DB SIZE", "IS LEADER", "RAFT TERM", "RAFT INDEX", "REVISION")},
		{name: "health", summary: "whether each endpoint is healthy, asked of that member",
			run: perEndpoint(func(ctx context.Context, c *gateway.Client, ep string, out *output) error {
				start := time.Now()
				err := c.Health(ctx, gateway.WithEndpoint(ep))
				took := time.Since(start).Round(time.Microsecond)
				if out.json {
					msg := ""
					if err != nil {
						msg = err.Error()
					}
					return errors.Join(out.encode(map[string]any{"endpoint": ep, "health": err == nil, "took": took.String(), "error": msg}), err)
				}
				if err != nil {
					out.line(ep + " is unhealthy: " + err.Error())
					return err
				}
				out.line(fmt.Sprintf("%s is healthy: successfully committed proposal: took = %v", ep, took))
				return nil
			})},
	}})
}

var leaseKeys, keepOnce bool

// leaseCall is a lease subcommand that takes one ID.
func leaseCall(f func(ctx context.Context, c *gateway.Client, id int64, out *output) error) func(context.Context, *invocation) error {
	return func(ctx context.Context, inv *invocation) error {
		if err := inv.want(1, 1); err != nil {
			return err
		}
		id, err := parseLease(inv.args[0])
		if err != nil {
			return err
		}
		c, err := inv.client()
		if err != nil {
			return err
		}
		out := inv.out()
		if err := f(ctx, c, id, out); err != nil {
			return err
		}
		return out.flush()
	}
}

// perEndpoint runs f against each endpoint on its own (not round robin), and
// fails if any failed, after trying them all.
func perEndpoint(f func(ctx context.Context, c *gateway.Client, ep string, out *output) error, header ...string) func(context.Context, *invocation) error {
	return func(ctx context.Context, inv *invocation) error {
		if err := inv.want(0, 0); err != nil {
			return err
		}
		c, err := inv.client()
		if err != nil {
			return err
		}
		out := inv.out()
		if out.table && len(header) > 0 {
			out.row(header...)
		}
		var failed int
		var last error
		for _, ep := range c.Endpoints() {
			if err := f(ctx, c, ep, out); err != nil {
				failed++
				last = err
				if !out.json && !out.table && len(header) > 0 {
					fmt.Fprintf(inv.e.stderr, "etcdgw %s: %s: %v\n", inv.path, ep, err)
				}
			}
		}
		if err := out.flush(); err != nil {
			return err
		}
		if failed > 0 {
			return &exitError{code: codeOf(last), err: fmt.Errorf("%d of %d endpoints failed", failed, len(c.Endpoints()))}
		}
		return nil
	}
}

// codeOf is the exit code an error would get.
func codeOf(err error) int {
	if errors.Is(err, gateway.ErrUnavailable) || errors.Is(err, gateway.ErrNoLeader) {
		return exitUnavailable
	}
	return exitFailed
}
