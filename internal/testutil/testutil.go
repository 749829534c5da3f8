// Package testutil holds the helpers the recipe packages' tests share: clients
// for an etcdtest cluster, bounded contexts and terse assertions.
package testutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	"github.com/etcdgw/etcdgw/lease"
)

// Client returns a gateway client for endpoints, closed in t.Cleanup.
func Client(t testing.TB, endpoints []string, mod ...func(*gateway.Config)) *gateway.Client {
	t.Helper()
	cfg := gateway.Config{Endpoints: endpoints}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Ctx returns a context bounded well below the test binary's timeout, so that a
// hang fails one test with a clear message instead of killing the run.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Must returns a function that fails t on a non-nil error and passes v on.
func Must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// NoErr fails t if err is not nil.
func NoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Eq fails t unless got == want.
func Eq[T comparable](t testing.TB, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// Is fails t unless errors.Is(err, want) for every want.
func Is(t testing.TB, err error, wants ...error) {
	t.Helper()
	for _, want := range wants {
		if !errors.Is(err, want) {
			t.Fatalf("error = %v, want one matching %v", err, want)
		}
	}
}

// Leader returns the index in cl.Members of the cluster's leader.
func Leader(ctx context.Context, t testing.TB, cl *etcdtest.Cluster) int {
	t.Helper()
	eps := cl.Endpoints()
	c := Client(t, eps)
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, ep := range eps {
		one := Client(t, []string{ep})
		s, err := one.Status(ctx)
		if err == nil && s.Header.MemberID == st.Leader {
			return i
		}
	}
	t.Fatalf("no member is the leader %x", st.Leader)
	return -1
}

// Follower returns the index in cl.Members of a member that is not the leader.
func Follower(ctx context.Context, t testing.TB, cl *etcdtest.Cluster) int {
	t.Helper()
	return (Leader(ctx, t, cl) + 1) % len(cl.Members)
}

// WithServer wraps m for goleak.VerifyTestMain in packages whose examples need
// a server: its Run starts one member, stores its client URLs in *endpoints,
// runs the tests and stops the member, so that the leak check that follows
// sees only what the tests left behind.
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(testutil.WithServer(m, &endpoints)) }
func WithServer(m *testing.M, endpoints *[]string) goleak.TestingM {
	return serverM{m, endpoints}
}

type serverM struct {
	m         *testing.M
	endpoints *[]string
}

func (s serverM) Run() int {
	c, err := etcdtest.Launch(etcdtest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*s.endpoints = c.Endpoints()
	defer c.Stop()
	return s.m.Run()
}

// Except returns the client URLs of every member of cl but the i-th.
func Except(cl *etcdtest.Cluster, i int) []string {
	eps := cl.Endpoints()
	return append(eps[:i:i], eps[i+1:]...)
}

// Lease grants a lease of ttl seconds kept alive through c, closed in
// t.Cleanup.
func Lease(t testing.TB, ctx context.Context, c *gateway.Client, ttl int64) *lease.Lease {
	t.Helper()
	l, err := lease.New(ctx, c, lease.WithTTL(ttl))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	return l
}

// WaitKeys waits until at least n keys exist under prefix, failing t when ctx
// ends first.
func WaitKeys(t testing.TB, ctx context.Context, c *gateway.Client, prefix string, n int64) {
	t.Helper()
	w, err := c.WatchPrefix(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for {
		r, err := c.GetPrefix(ctx, prefix, gateway.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if r.Count >= n {
			return
		}
		select {
		case <-w.Events():
		case <-ctx.Done():
			t.Fatalf("%d keys under %s, want %d", r.Count, prefix, n)
		}
	}
}

// Async runs f(ctx) in a goroutine; its result arrives on the channel.
func Async(ctx context.Context, f func(context.Context) error) chan error {
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	return done
}

// Pending fails t if done delivers within d (0: if it has delivered already):
// what should still be waiting.
func Pending(t testing.TB, what string, done chan error, d time.Duration) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s returned (%v) while it should wait", what, err)
	default:
	}
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case err := <-done:
		t.Fatalf("%s returned (%v) while it should wait", what, err)
	case <-timer.C:
	}
}
