package testutil

import (
	"context"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
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
