package gateway_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newClient returns a client for the cluster's endpoints, closed in t.Cleanup.
func newClient(t testing.TB, c *etcdtest.Cluster, mod ...func(*gateway.Config)) *gateway.Client {
	t.Helper()
	cfg := gateway.Config{Endpoints: c.Endpoints()}
	for _, m := range mod {
		m(&cfg)
	}
	cl, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// ctxT returns a context bounded well below the test binary's timeout, so that a
// hang fails one test with a clear message instead of killing the run.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
