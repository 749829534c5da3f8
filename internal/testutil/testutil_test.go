package testutil_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLeaderAndFollower(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Size: 3})
	ctx := tu.Ctx(t)
	leader, follower := tu.Leader(t, ctx, cl), tu.Follower(t, ctx, cl)
	if leader == follower {
		t.Fatalf("follower %s is the leader", follower.Name)
	}
	tu.Eq(t, "members but the follower", len(tu.Except(cl, follower)), 2)
	c := tu.Client(t, []string{leader.ClientURL})
	st := tu.Must[*gateway.StatusResponse](t)(c.Status(ctx))
	tu.Eq(t, "the leader's own view", st.Leader, st.Header.MemberID)
	fc := tu.Client(t, []string{follower.ClientURL})
	fst := tu.Must[*gateway.StatusResponse](t)(fc.Status(ctx))
	if fst.Header.MemberID == fst.Leader {
		t.Fatal("the follower says it leads")
	}
}
