package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/etcdgw/etcdgw/lease"
	"github.com/etcdgw/etcdgw/queue"
)

func init() {
	var prio uint
	var delay time.Duration
	var unique string
	flagsOf["queue push"] = func(fs *flag.FlagSet, _ *invocation) {
		fs.UintVar(&prio, "priority", 0, "the item's priority: lower goes first (0 to 65535)")
		fs.DurationVar(&delay, "delay", 0, "keep the items hidden this long (by the server's clock)")
		fs.StringVar(&unique, "unique", "", "the item's unique key: refused (exit 1) while another item with it waits or runs; one VALUE only")
	}
	var ttl int64
	var timeout time.Duration
	flagsOf["queue pop"] = func(fs *flag.FlagSet, _ *invocation) {
		fs.Int64Var(&ttl, "ttl", 10, "the claim's lease TTL in seconds")
		fs.DurationVar(&timeout, "timeout", 0, "give up waiting for an item after this long (exit 6); 0 waits for ever")
	}
	var concurrency, maxAttempts int
	var grace, backoff time.Duration
	flagsOf["queue work"] = func(fs *flag.FlagSet, _ *invocation) {
		fs.Int64Var(&ttl, "ttl", 10, "the claims' lease TTL in seconds: how long a crashed worker holds its items")
		fs.IntVar(&concurrency, "concurrency", 1, "items worked at once, each by its own CMD")
		fs.IntVar(&maxAttempts, "max-attempts", queue.DefaultMaxAttempts, "deliveries of an item before it goes to the dead letters")
		fs.DurationVar(&grace, "grace", 10*time.Second, "on Ctrl-C or a lost lease: time between SIGTERM and SIGKILL to the running commands")
		fs.DurationVar(&backoff, "retry-backoff", time.Second, "an item given back is hidden this long after its first delivery, doubling with each (up to 5 minutes); 0: at once")
	}
	register(&command{name: "queue", subs: []*command{
		{name: "push", args: "NAME VALUE...", summary: "enqueue items on the work queue NAME (one transaction)",
			run: func(ctx context.Context, inv *invocation) error {
				if err := inv.want(2, -1); err != nil {
					return err
				}
				if prio > 65535 {
					return usagef("--priority %d: want 0 to 65535", prio)
				}
				if unique != "" && len(inv.args) != 2 {
					return usagef("--unique takes one VALUE")
				}
				q, err := workQueue(inv, 0)
				if err != nil {
					return err
				}
				opts := []queue.EnqueueOption{queue.WithDelay(delay)}
				if unique != "" {
					opts = append(opts, queue.WithUnique(unique))
				}
				if err := q.EnqueueBatch(ctx, inv.args[1:], uint16(prio), opts...); err != nil {
					return err
				}
				out := inv.out()
				out.line(fmt.Sprintf("OK %d", len(inv.args)-1))
				return out.flush()
			}},
		{name: "pop", args: "NAME", summary: "wait for an item, take it (claim and ack) and print it",
			run: func(ctx context.Context, inv *invocation) error {
				if err := inv.want(1, 1); err != nil {
					return err
				}
				q, err := workQueue(inv, 0)
				if err != nil {
					return err
				}
				l, revoke, err := inv.lease(ctx, ttl)
				if err != nil {
					return err
				}
				defer revoke()
				waitCtx, cancel := waitAtMost(ctx, timeout)
				defer cancel()
				it, err := q.Claim(waitCtx, l)
				if err != nil {
					return timedOut(ctx, err, timeout, "no item")
				}
				if err := it.Ack(ctx); err != nil {
					return err
				}
				out := inv.out()
				if out.json {
					return out.encode(map[string]any{"key": it.Key, "value": string(it.Value), "attempt": it.Attempt})
				}
				out.line(string(it.Value))
				return out.flush()
			}},
		{name: "work", args: "NAME -- CMD ARGS...", summary: "run CMD for each item, the item on its stdin: exit 0 acks it, anything else gives it back",
			run: func(ctx context.Context, inv *invocation) error {
				if err := inv.want(1, 1); err != nil {
					return err
				}
				if len(inv.after) == 0 {
					return usagef("queue work needs a command after --")
				}
				if concurrency < 1 {
					return usagef("--concurrency %d: want at least 1", concurrency)
				}
				q, err := workQueue(inv, maxAttempts, queue.WithRetryBackoff(backoff, max(backoff, 5*time.Minute)))
				if err != nil {
					return err
				}
				return work(ctx, inv, q, ttl, concurrency, grace)
			}},
		{name: "len", args: "NAME", summary: "count the items: waiting, delayed, claimed (being worked) and dead",
			run: func(ctx context.Context, inv *invocation) error {
				if err := inv.want(1, 1); err != nil {
					return err
				}
				q, err := workQueue(inv, 0)
				if err != nil {
					return err
				}
				n, err := q.Counts(ctx)
				if err != nil {
					return err
				}
				out := inv.out()
				switch {
				case out.json:
					return out.encode(map[string]int64{"waiting": n.Waiting, "delayed": n.Delayed, "claimed": n.Claimed, "dead": n.Dead, "revision": n.Revision})
				case out.table:
					out.row("WAITING", "DELAYED", "CLAIMED", "DEAD")
					out.row(fmt.Sprint(n.Waiting), fmt.Sprint(n.Delayed), fmt.Sprint(n.Claimed), fmt.Sprint(n.Dead))
				default:
					out.line(fmt.Sprintf("waiting %d, delayed %d, claimed %d, dead %d", n.Waiting, n.Delayed, n.Claimed, n.Dead))
				}
				return out.flush()
			}},
		{name: "peek", args: "NAME", summary: "print the next item a consumer would get, without taking it (nothing when none waits)",
			run: func(ctx context.Context, inv *invocation) error {
				if err := inv.want(1, 1); err != nil {
					return err
				}
				q, err := workQueue(inv, 0)
				if err != nil {
					return err
				}
				it, err := q.Peek(ctx)
				if err != nil || it == nil {
					return err
				}
				out := inv.out()
				if out.json {
					return out.encode(map[string]any{"key": it.Key, "value": string(it.Value), "priority": it.Priority, "attempts": it.Attempts})
				}
				out.line(string(it.Value))
				return out.flush()
			}},
		{name: "dead", args: "NAME [list | requeue [KEY...] | purge]",
			summary: "the dead letters (items delivered --max-attempts times without an ack): list them (key, then value; -w json adds the last error), put them back (all, or the KEYs), or delete them",
			run: func(ctx context.Context, inv *invocation) error {
				if err := inv.want(1, -1); err != nil {
					return err
				}
				action := "list"
				if len(inv.args) > 1 {
					action = inv.args[1]
				}
				keys := inv.args[min(len(inv.args), 2):]
				if action != "requeue" && len(keys) > 0 || action != "list" && action != "requeue" && action != "purge" {
					return usagef("queue dead NAME [list | requeue [KEY...] | purge]")
				}
				q, err := workQueue(inv, 0)
				if err != nil {
					return err
				}
				out := inv.out()
				switch action {
				case "purge":
					n, err := q.Purge(ctx)
					if err != nil {
						return err
					}
					out.line(fmt.Sprintf("purged %d", n))
				case "requeue":
					n := 0
					if len(keys) == 0 {
						if n, err = q.RequeueAll(ctx); err != nil {
							return err
						}
					}
					for _, k := range keys {
						if err := q.Requeue(ctx, k); err != nil {
							return err
						}
						n++
					}
					out.line(fmt.Sprintf("requeued %d", n))
				default:
					var all []queue.DeadLetter
					after := ""
					for {
						page, next, err := q.Dead(ctx, after, 1000)
						if err != nil {
							return err
						}
						all = append(all, page...)
						if next == "" {
							break
						}
						after = next
					}
					if out.json {
						return out.encode(all)
					}
					for _, d := range all {
						out.line(d.Key)
						out.line(string(d.Value))
					}
				}
				return out.flush()
			}},
	}})
}

func workQueue(inv *invocation, maxAttempts int, opts ...queue.WorkOption) (*queue.WorkQueue, error) {
	c, err := inv.client()
	if err != nil {
		return nil, err
	}
	if maxAttempts > 0 {
		opts = append(opts, queue.WithMaxAttempts(maxAttempts))
	}
	return queue.NewWorkQueue(c, inv.args[0], opts...)
}

// work runs n workers that claim items and run the command on each, until
// interrupted or the lease is lost.
func work(ctx context.Context, inv *invocation, q *queue.WorkQueue, ttl int64, n int, grace time.Duration) error {
	l, revoke, err := inv.lease(ctx, ttl)
	if err != nil {
		return err
	}
	defer revoke()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(l.Context(), cancel)()
	var mu sync.Mutex // one line of output at a time
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				it, err := q.Claim(ctx, l)
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
						cancel()
					}
					return
				}
				code := runItem(ctx, inv, it, grace, &mu)
				fctx, fcancel := inv.ending()
				if code == 0 {
					err = it.Ack(fctx)
				} else {
					err = it.Nack(fctx, queue.WithError(fmt.Errorf("%s exited %d", inv.after[0], code)))
				}
				fcancel()
				mu.Lock()
				fmt.Fprintf(inv.e.stderr, "etcdgw queue work: %s exit %d (%s)\n", it.Key, code, map[bool]string{true: "acked", false: "given back"}[code == 0])
				mu.Unlock()
				if err != nil && !errors.Is(err, queue.ErrClaimLost) {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	if err := l.Err(); err != nil && !errors.Is(err, lease.ErrClosed) {
		return &exitError{code: exitLost, err: fmt.Errorf("the claims' lease was lost: %v", err)}
	}
	return nil
}

// runItem runs the command with the item on its stdin and returns its exit
// code; if ctx ends first, it stops it (SIGTERM, then SIGKILL after grace).
func runItem(ctx context.Context, inv *invocation, it *queue.Item, grace time.Duration, mu *sync.Mutex) int {
	cmd := exec.Command(inv.after[0], inv.after[1:]...)
	cmd.Stdin = strings.NewReader(string(it.Value))
	cmd.Stdout, cmd.Stderr = lockedWriter{inv.e.stdout, mu}, lockedWriter{inv.e.stderr, mu}
	cmd.Env = append(os.Environ(), "ETCDGW_QUEUE_ITEM="+it.Key, "ETCDGW_QUEUE_ATTEMPT="+strconv.Itoa(it.Attempt),
		"ETCDGW_QUEUE_LAST_ERROR="+it.LastError)
	if err := cmd.Start(); err != nil {
		mu.Lock()
		fmt.Fprintf(inv.e.stderr, "etcdgw queue work: cannot start %s: %v\n", inv.after[0], err)
		mu.Unlock()
		return exitFailed
	}
	return waitOrStop(cmd, ctx.Done(), grace)
}

// lockedWriter serializes the writes of concurrent commands.
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
