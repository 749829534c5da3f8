package gateway_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
)

// endpoints are the client URLs of the member the examples talk to; TestMain
// starts it. In your program they are your etcd members' client URLs.
var endpoints []string

func TestMain(m *testing.M) {
	c, err := etcdtest.Launch(etcdtest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	endpoints = c.Endpoints()
	code := m.Run()
	c.Stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// newClient returns a client for the cluster's endpoints, closed in t.Cleanup.
func newClient(t testing.TB, c *etcdtest.Cluster, mod ...func(*gateway.Config)) *gateway.Client {
	t.Helper()
	return newClientFor(t, c.Endpoints(), mod...)
}

// newClientFor returns a client for the given endpoints, closed in t.Cleanup.
func newClientFor(t testing.TB, endpoints []string, mod ...func(*gateway.Config)) *gateway.Client {
	t.Helper()
	cfg := gateway.Config{Endpoints: endpoints}
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
