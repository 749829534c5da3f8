package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/etcdgw/etcdgw/election"
	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/lease"
	"github.com/etcdgw/etcdgw/mutex"
)

// holdFlags are what lock and elect share: the lease, the wait and the
// command's stop.
type holdFlags struct {
	ttl     int64
	timeout time.Duration
	grace   time.Duration
}

func (h *holdFlags) register(fs *flag.FlagSet) {
	fs.Int64Var(&h.ttl, "ttl", 10, "the lease's TTL in seconds: how long a crashed holder keeps it")
	fs.DurationVar(&h.timeout, "timeout", 0, "give up waiting after this long (exit 6); 0 waits for ever")
	fs.DurationVar(&h.grace, "grace", 10*time.Second, "when the lock or leadership is lost, or on Ctrl-C: time between SIGTERM and SIGKILL to the command")
}

func init() {
	var lk struct {
		holdFlags
		try bool
	}
	flagsOf["lock"] = func(fs *flag.FlagSet, _ *invocation) {
		lk.register(fs)
		fs.BoolVar(&lk.try, "try", false, "do not wait: exit 4 at once if another holds the lock")
	}
	register(&command{name: "lock", args: "NAME [-- CMD ARGS...]",
		summary: "hold a lock (etcdctl lock's keys); with CMD, run it while holding, else hold until interrupted",
		run: func(ctx context.Context, inv *invocation) error {
			if err := inv.want(1, 1); err != nil {
				return err
			}
			name := inv.args[0]
			return hold(ctx, inv, lk.holdFlags, func(ctx context.Context, l *lease.Lease, out *output) (held, error) {
				m := mutex.New(l, name)
				var err error
				if lk.try {
					err = m.TryLock(ctx)
					if errors.Is(err, mutex.ErrLocked) {
						return nil, &exitError{code: exitHeld, err: fmt.Errorf("lock %s is held by another", name)}
					}
				} else {
					stop := inv.progress(ctx, "lock "+name, name, l)
					err = m.Lock(ctx)
					stop()
				}
				if err != nil {
					return nil, err
				}
				if out.json {
					err = out.encode(map[string]any{"key": m.Key(), "token": m.Token()})
				} else {
					out.line(m.Key())
					out.line(fmt.Sprintf("token %d", m.Token()))
				}
				return lockHeld{m}, errors.Join(err, out.flush())
			})
		}})

	var el struct {
		holdFlags
		observe bool
	}
	flagsOf["elect"] = func(fs *flag.FlagSet, _ *invocation) {
		el.register(fs)
		fs.BoolVar(&el.observe, "observe", false, "print every change of leader, \"no leader\" included, until interrupted")
		fs.BoolVar(&el.observe, "l", false, "the same as --observe (etcdctl elect -l)")
	}
	register(&command{name: "elect", args: "NAME [VALUE] [-- CMD ARGS...]",
		summary: "campaign to lead (etcdctl elect's keys); with CMD, run it while leading; --observe watches the leader",
		run: func(ctx context.Context, inv *invocation) error {
			if el.observe {
				if err := inv.want(1, 1); err != nil {
					return err
				}
				return observe(ctx, inv, inv.args[0])
			}
			if err := inv.want(2, 2); err != nil {
				return err
			}
			name, value := inv.args[0], inv.args[1]
			return hold(ctx, inv, el.holdFlags, func(ctx context.Context, l *lease.Lease, out *output) (held, error) {
				e := election.New(l, name)
				stop := inv.progress(ctx, "leadership of "+name, name, l)
				err := e.Campaign(ctx, value)
				stop()
				if err != nil {
					return nil, err
				}
				if out.json {
					err = out.encode(map[string]any{"key": e.Key(), "value": value, "term": e.Token()})
				} else {
					out.line(e.Key())
					out.line(value)
				}
				return electHeld{e}, errors.Join(err, out.flush())
			})
		}})
}

// held is a lock or a leadership being held.
type held interface {
	key() string
	token() int64
	lost() <-chan struct{}
	release(ctx context.Context) error
}

type lockHeld struct{ m *mutex.Mutex }

func (h lockHeld) key() string                       { return h.m.Key() }
func (h lockHeld) token() int64                      { return h.m.Token() }
func (h lockHeld) lost() <-chan struct{}             { return h.m.Done() }
func (h lockHeld) release(ctx context.Context) error { return h.m.Unlock(ctx) }

type electHeld struct{ e *election.Election }

func (h electHeld) key() string                       { return h.e.Key() }
func (h electHeld) token() int64                      { return h.e.Token() }
func (h electHeld) lost() <-chan struct{}             { return h.e.Done() }
func (h electHeld) release(ctx context.Context) error { return h.e.Resign(ctx) }

// hold takes a lease, acquires with take, then runs the command after "--"
// (or waits for an interrupt) while holding, and releases. The lease is
// revoked on the way out whatever happened, so no key outlives the command.
func hold(ctx context.Context, inv *invocation, f holdFlags, take func(context.Context, *lease.Lease, *output) (held, error)) error {
	if f.ttl < 2 {
		return usagef("--ttl %d: want at least 2 seconds", f.ttl)
	}
	l, revoke, err := inv.lease(ctx, f.ttl)
	if err != nil {
		return err
	}
	defer revoke()
	waitCtx, cancel := waitAtMost(ctx, f.timeout)
	defer cancel()
	h, err := take(waitCtx, l, inv.out())
	if err != nil {
		return timedOut(ctx, err, f.timeout, "gave up waiting: not held")
	}
	release := func() error {
		rctx, cancel := inv.ending()
		defer cancel()
		return h.release(rctx)
	}
	if len(inv.after) == 0 {
		select {
		case <-ctx.Done(): // interrupted: the way to let go
			return release()
		case <-h.lost():
			return &exitError{code: exitLost, err: fmt.Errorf("%s lost: %v", h.key(), context.Cause(l.Context()))}
		}
	}
	code, lostErr := runHolding(ctx, inv, h, f.grace)
	if lostErr != nil {
		return &exitError{code: exitLost, err: lostErr}
	}
	if err := release(); err != nil {
		fmt.Fprintf(inv.e.stderr, "etcdgw %s: release: %v\n", inv.path, err)
	}
	if ctx.Err() != nil {
		return &exitError{code: exitInterrupted}
	}
	return &exitError{code: code}
}

// runHolding runs the command after "--" with the key and token in its
// environment, and stops it (SIGTERM, then SIGKILL after grace) if the hold
// is lost or etcdgw is interrupted. It returns the command's exit code, or
// why the hold was lost.
func runHolding(ctx context.Context, inv *invocation, h held, grace time.Duration) (int, error) {
	cmd := exec.Command(inv.after[0], inv.after[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inv.e.stdin, inv.e.stdout, inv.e.stderr
	cmd.Env = append(os.Environ(), "ETCDGW_LOCK_KEY="+h.key(), "ETCDGW_LOCK_TOKEN="+strconv.FormatInt(h.token(), 10))
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("cannot start %s: %w (still holding; releasing)", inv.after[0], err)
	}
	var lost error
	stop, finished, watcher := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watcher)
		select {
		case <-h.lost():
			lost = fmt.Errorf("%s lost while %s ran; it was stopped", h.key(), inv.after[0])
		case <-ctx.Done():
		case <-finished:
			return
		}
		close(stop)
	}()
	code := waitOrStop(cmd, stop, grace)
	close(finished)
	<-watcher
	return code, lost
}

// waitOrStop waits for a started command to exit and returns its exit code;
// once stop is closed, it sends the command SIGTERM, then SIGKILL after
// grace.
func waitOrStop(cmd *exec.Cmd, stop <-chan struct{}, grace time.Duration) int {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitCode(err)
	case <-stop:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-done:
		return exitCode(err)
	case <-t.C:
		_ = cmd.Process.Kill()
		return exitCode(<-done)
	}
}

// exitCode is a finished command's exit status (128+signal when killed).
func exitCode(err error) int {
	var x *exec.ExitError
	if errors.As(err, &x) {
		if ws, ok := x.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return x.ExitCode()
	}
	if err != nil {
		return exitFailed
	}
	return exitOK
}

// observe prints each change of the election's leader until interrupted.
func observe(ctx context.Context, inv *invocation, name string) error {
	c, err := inv.client()
	if err != nil {
		return err
	}
	out := inv.out()
	for ld := range election.Observe(ctx, c, name) {
		switch {
		case out.json:
			if err := out.encode(ld); err != nil {
				return err
			}
		case ld.Leader == nil:
			out.line("no leader")
		default:
			out.line(string(ld.Leader.Key))
			out.line(string(ld.Leader.Value))
		}
	}
	return nil
}

// progress shows, on a terminal, what the command waits for, how many are
// queued ahead of it under name (a lock's or an election's) and for how long;
// it prints nothing when stderr is not a terminal. The returned func stops it
// and clears the line.
func (inv *invocation) progress(ctx context.Context, what, name string, l *lease.Lease) (stop func()) {
	if !isTerminal(inv.e.stderr) {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				fmt.Fprint(inv.e.stderr, "\r\033[K")
				return
			case <-t.C:
				ahead := ""
				if n, err := aheadOf(ctx, l.Client(), name, l.ID()); err == nil {
					ahead = fmt.Sprintf(", %d ahead", n)
				}
				fmt.Fprintf(inv.e.stderr, "\r\033[Kwaiting for %s%s, %v", what, ahead, time.Since(start).Round(time.Second))
			}
		}
	}()
	return func() { cancel(); <-done }
}

// aheadOf counts the contenders queued before the key of lease id under the
// lock or election name (keys NAME/<lease in hex>, as etcdctl's).
func aheadOf(ctx context.Context, c *gateway.Client, name string, id int64) (int, error) {
	r, err := c.Get(ctx, name+"/", gateway.WithPrefix(), gateway.WithKeysOnly(),
		gateway.WithSort(gateway.SortByCreateRevision, gateway.SortAscend))
	if err != nil {
		return 0, err
	}
	mine := fmt.Sprintf("%s/%x", name, id)
	for i, kv := range r.Kvs {
		if string(kv.Key) == mine {
			return i, nil
		}
	}
	return 0, errors.New("not queued")
}
