package gateway_test

import (
	"testing"

	"go.uber.org/goleak"

	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

// endpoints are the client URLs of the member the examples talk to; TestMain
// starts it. In your program they are your etcd members' client URLs.
var endpoints []string

func TestMain(m *testing.M) { goleak.VerifyTestMain(tu.WithServer(m, &endpoints)) }
