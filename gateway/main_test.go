package gateway_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

// endpoints are the client URLs of the member the examples talk to; TestMain
// starts it. In your program they are your etcd members' client URLs.
var endpoints []string

func TestMain(m *testing.M) { goleak.VerifyTestMain(tu.WithServer(m, &endpoints)) }

// newClient returns a client for the cluster's endpoints, closed in t.Cleanup.
func newClient(t testing.TB, c *etcdtest.Cluster, mod ...func(*gateway.Config)) *gateway.Client {
	t.Helper()
	return newClientFor(t, c.Endpoints(), mod...)
}

// newClientFor returns a client for the given endpoints, closed in t.Cleanup.
func newClientFor(t testing.TB, endpoints []string, mod ...func(*gateway.Config)) *gateway.Client {
	t.Helper()
	return tu.Client(t, endpoints, mod...)
}

// ctxT returns a context bounded well below the test binary's timeout.
func ctxT(t testing.TB) context.Context { return tu.Ctx(t) }

func must[T any](t testing.TB) func(T, error) T { return tu.Must[T](t) }
