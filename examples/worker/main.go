// Command worker is one replica of a small replicated service built on etcdgw's
// public API alone, the program `make demo` runs three of:
//
//   - the replicas elect a leader (package election); the first leader
//     enqueues the jobs (package queue), exactly once however many leaders
//     follow;
//   - every replica claims jobs from the work queue, does them, and writes
//     each result in a transaction guarded by the fencing token of a lock
//     (package mutex): a replica that lost its lock without noticing cannot
//     write;
//   - it acks a job only after its result is written; a replica that dies
//     holding a job leaves it to be claimed again when its lease ends.
//
// Each line it prints is an event, "<unix ms> <replica> <event> [details]",
// which the demo reads for its timeline and checks.
//
// Point it at your own cluster:
//
//	go run ./examples/worker -endpoints http://10.0.0.1:2379,http://10.0.0.2:2379 -name a
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/etcdgw/etcdgw/election"
	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/lease"
	"github.com/etcdgw/etcdgw/mutex"
	"github.com/etcdgw/etcdgw/queue"
)

// The keys the replicas share.
const (
	leaderName = "demo/leader"
	jobsQueue  = "demo/jobs"
	enqueued   = "demo/enqueued" // created by the one leader that enqueues
	resultLock = "demo/results-lock"
	results    = "demo/results/"
)

func main() {
	endpoints := flag.String("endpoints", "http://127.0.0.1:2379", "comma-separated client URLs")
	name := flag.String("name", "", "this replica's name (default: the host name and PID)")
	jobs := flag.Int("jobs", 60, "how many jobs the first leader enqueues")
	ttl := flag.Int64("ttl", 3, "lease TTL in seconds: how long a dead replica holds its jobs and leadership")
	work := flag.Duration("work", 100*time.Millisecond, "how long one job takes")
	flag.Parse()
	if *name == "" {
		host, _ := os.Hostname()
		*name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	w := &worker{name: *name, jobs: *jobs, work: *work}
	if err := w.run(ctx, strings.Split(*endpoints, ","), *ttl); err != nil && ctx.Err() == nil {
		w.event("error", err.Error())
		os.Exit(1)
	}
	w.event("exit")
}

type worker struct {
	name string
	jobs int
	work time.Duration
	mu   sync.Mutex // one event line at a time
}

// event prints one event line.
func (w *worker) event(what string, details ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	line := fmt.Sprintf("%d %s %s", time.Now().UnixMilli(), w.name, what)
	for _, d := range details {
		line += fmt.Sprintf(" %v", d)
	}
	fmt.Println(line)
}

func (w *worker) run(ctx context.Context, endpoints []string, ttl int64) error {
	c, err := gateway.New(gateway.Config{Endpoints: endpoints, RequestTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer c.Close()
	q, err := queue.NewWorkQueue(c, jobsQueue)
	if err != nil {
		return err
	}
	// A session is one lease: a replica that loses its lease (its cluster
	// could not renew it in time) drops its leadership, claims and lock with
	// it, and starts a new session.
	for ctx.Err() == nil {
		err := w.session(ctx, c, q, ttl)
		if ctx.Err() != nil {
			break
		}
		w.event("session-ended", err)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// session campaigns and works jobs through one lease, until it is lost or ctx
// ends.
func (w *worker) session(ctx context.Context, c *gateway.Client, q *queue.WorkQueue, ttl int64) error {
	l, err := lease.New(ctx, c, lease.WithTTL(ttl))
	if err != nil {
		return err
	}
	defer l.Close(context.Background())
	w.event("session", "lease", fmt.Sprintf("%x", l.ID()))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(l.Context(), cancel)()

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := w.lead(ctx, c, l, q); err != nil && ctx.Err() == nil {
			w.event("error", "leading:", err)
		}
	}()
	m := mutex.New(l, resultLock)
	for ctx.Err() == nil {
		it, err := q.Claim(ctx, l)
		if err != nil {
			if ctx.Err() == nil {
				// A member down, a leader being elected: try again shortly.
				w.event("retry", "claim:", err)
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		// The item is ours until it is acked or the session ends: a failed
		// step (a write whose outcome is unknown, say) is tried again on the
		// same item, never left behind with the item still claimed.
		for ctx.Err() == nil {
			err := w.do(ctx, c, m, it)
			if err == nil {
				break
			}
			if ctx.Err() == nil {
				w.event("retry", string(it.Value)+":", err)
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	return context.Cause(l.Context())
}

// lead campaigns; the replica that wins enqueues the jobs if no leader has.
// The marker and the jobs are two requests: a leader that dies between them
// leaves the jobs unenqueued (the demo kills the leader after it enqueued);
// a service would enqueue inside the marker's transaction.
func (w *worker) lead(ctx context.Context, c *gateway.Client, l *lease.Lease, q *queue.WorkQueue) error {
	e := election.New(l, leaderName)
	if err := e.Campaign(ctx, w.name); err != nil {
		return err
	}
	w.event("leader", "term", e.Token())
	var first bool
	err := retry(ctx, func() (err error) { first, err = c.Create(ctx, enqueued, w.name); return err })
	if err != nil || !first {
		return err
	}
	vals := make([]string, w.jobs)
	for i := range vals {
		vals[i] = fmt.Sprintf("job-%03d", i)
	}
	// One transaction per 50 jobs: a txn holds at most the server's
	// --max-txn-ops operations (128 by default).
	for len(vals) > 0 {
		n := min(len(vals), 50)
		if err := q.EnqueueBatch(ctx, vals[:n], 0); err != nil {
			return err
		}
		vals = vals[n:]
	}
	w.event("enqueued", w.jobs)
	<-ctx.Done() // lead until the session ends
	return nil
}

// retry runs f until it succeeds or ctx ends.
func retry(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// do works a job, writes its result under the results lock's fencing token,
// then acks it.
func (w *worker) do(ctx context.Context, c *gateway.Client, m *mutex.Mutex, it *queue.Item) error {
	job := string(it.Value)
	select {
	case <-time.After(w.work):
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := m.Lock(ctx); err != nil {
		return err
	}
	// The write happens only if this replica's lock key is still the one
	// that holds: a stale holder's write is refused by the server.
	r, err := c.Txn().
		If(m.IsOwner()).
		Then(gateway.OpPut(results+job, fmt.Sprintf("%s token %d", w.name, m.Token()))).
		Commit(ctx)
	unlockErr := m.Unlock(ctx)
	if err != nil {
		return err
	}
	if !r.Succeeded {
		w.event("stale", job, "token", m.Token())
		return nil // the job stays claimed until the lease ends, then comes back
	}
	if unlockErr != nil && !errors.Is(unlockErr, mutex.ErrLost) {
		return unlockErr
	}
	if err := it.Ack(ctx); err != nil {
		if errors.Is(err, queue.ErrClaimLost) {
			w.event("claim-lost", job)
			return nil
		}
		return err
	}
	w.event("acked", job, "token", m.Token(), "attempt", it.Attempt)
	return nil
}
