package testutil

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/etcdgw/etcdgw/internal/etcdtest"
	"go.uber.org/goleak"
)

// Leader returns the member of cl that leads it.
func Leader(t testing.TB, ctx context.Context, cl *etcdtest.Cluster) *etcdtest.Member {
	t.Helper()
	st, err := Client(t, cl.Endpoints()).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range cl.Members {
		s, err := Client(t, []string{m.ClientURL}).Status(ctx)
		if err == nil && s.Header.MemberID == st.Leader {
			return m
		}
	}
	t.Fatalf("no member is the leader %x", st.Leader)
	return nil
}

// Follower returns a member of cl that does not lead it.
func Follower(t testing.TB, ctx context.Context, cl *etcdtest.Cluster) *etcdtest.Member {
	t.Helper()
	leader := Leader(t, ctx, cl)
	for _, m := range cl.Members {
		if m != leader {
			return m
		}
	}
	t.Fatal("a cluster of one member has no follower")
	return nil
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
	defer c.Terminate()
	return s.m.Run()
}

// Except returns the client URLs of every member of cl but m.
func Except(cl *etcdtest.Cluster, m *etcdtest.Member) []string {
	var eps []string
	for _, o := range cl.Members {
		if o != m {
			eps = append(eps, o.ClientURL)
		}
	}
	return eps
}
