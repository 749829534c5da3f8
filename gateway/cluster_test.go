package gateway_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

func TestClusterSingle(t *testing.T) {
	cl := etcdtest.Single(t)
	c := tu.Client(t, cl.Endpoints())
	ctx := tu.Ctx(t)

	v := tu.Must[gateway.Version](t)(c.Version(ctx))
	tu.Eq(t, "server version", v.Server, cl.Version())
	tu.Eq(t, "API path", tu.Must[string](t)(c.APIPath(ctx)), "/v3")

	ml := tu.Must[*gateway.MemberListResponse](t)(c.MemberList(ctx))
	tu.Eq(t, "members", len(ml.Members), 1)
	me := ml.Members[0]
	tu.Eq(t, "name", me.Name, "m0")
	eqStrings(t, "client URLs", me.ClientURLs, cl.Members[0].ClientURL)
	eqStrings(t, "peer URLs", me.PeerURLs, cl.Members[0].PeerURL)

	st := tu.Must[*gateway.StatusResponse](t)(c.Status(ctx))
	tu.Eq(t, "status version", st.Version, cl.Version())
	tu.Eq(t, "leader is itself", st.Leader, me.ID)
	if st.DbSize == 0 || st.RaftIndex == 0 || st.RaftTerm == 0 {
		t.Fatalf("status not decoded: %+v", st)
	}

	// A learner that never starts: added, updated, not promotable, removed.
	add := tu.Must[*gateway.MemberResponse](t)(c.MemberAdd(ctx, []string{"http://127.0.0.1:1"}, true))
	if add.Member == nil || !add.Member.IsLearner || add.Member.ID == 0 {
		t.Fatalf("added member: %+v", add.Member)
	}
	tu.Eq(t, "members after add", len(add.Members), 2)
	upd := tu.Must[*gateway.MemberResponse](t)(c.MemberUpdate(ctx, add.Member.ID, []string{"http://127.0.0.1:2"}))
	i := slices.IndexFunc(upd.Members, func(m gateway.Member) bool { return m.ID == add.Member.ID })
	if i < 0 {
		t.Fatalf("updated member missing: %+v", upd.Members)
	}
	eqStrings(t, "updated peer URLs", upd.Members[i].PeerURLs, "http://127.0.0.1:2")
	_, err := c.MemberPromote(ctx, add.Member.ID)
	isErr(t, err, gateway.ErrLearnerNotReady)
	rm := tu.Must[*gateway.MemberResponse](t)(c.MemberRemove(ctx, add.Member.ID))
	tu.Eq(t, "members after remove", len(rm.Members), 1)
	_, err = c.MemberRemove(ctx, add.Member.ID)
	isErr(t, err, gateway.ErrMemberNotFound)

	alarms := tu.Must[*gateway.AlarmResponse](t)(c.AlarmList(ctx))
	tu.Eq(t, "alarms", len(alarms.Alarms), 0)
	tu.Must[*gateway.MaintenanceResponse](t)(c.Defragment(ctx))

	for i := 0; i < 3; i++ {
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, fmt.Sprint("h/", i), "v"))
	}
	if !cl.AtLeast(3, 5) {
		// etcd 3.4's gateway maps HashKV and Hash to the same path and serves
		// only Hash: HashKV is not reachable over HTTP there.
		_, err := c.HashKV(ctx, 0)
		isErr(t, err, gateway.ErrUnimplemented)
		return
	}
	h1 := tu.Must[*gateway.HashKVResponse](t)(c.HashKV(ctx, 0))
	h2 := tu.Must[*gateway.HashKVResponse](t)(c.HashKV(ctx, 0))
	tu.Eq(t, "hash stable", h1.Hash, h2.Hash)
	if h1.Hash == 0 || (cl.AtLeast(3, 6) && h1.HashRevision != h1.Header.Revision) {
		t.Fatalf("hashkv: %+v", h1) // hash_revision is new in 3.6
	}
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "h/x", "changed"))
	h3 := tu.Must[*gateway.HashKVResponse](t)(c.HashKV(ctx, 0))
	if h3.Hash == h1.Hash {
		t.Fatal("hash did not change with the data")
	}
	tu.Eq(t, "hash at the old revision", tu.Must[*gateway.HashKVResponse](t)(c.HashKV(ctx, h1.Header.Revision)).Hash, h1.Hash)
}

// TestNoSpaceAlarm fills a tiny backend quota: writes fail with ErrNoSpace and the
// alarm shows, until compaction, defragmentation and disarming clear it.
func TestNoSpaceAlarm(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Args: []string{"--quota-backend-bytes=" + fmt.Sprint(256<<10)}})
	c := tu.Client(t, cl.Endpoints())
	ctx := tu.Ctx(t)
	val := string(make([]byte, 64<<10))
	var err error
	var last int64
	for i := 0; i < 100 && err == nil; i++ {
		var r *gateway.PutResponse
		if r, err = c.Put(ctx, "big", val); err == nil {
			last = r.Header.Revision
		}
	}
	isErr(t, err, gateway.ErrNoSpace)
	alarms := tu.Must[*gateway.AlarmResponse](t)(c.AlarmList(ctx))
	if len(alarms.Alarms) != 1 || alarms.Alarms[0].Alarm != gateway.AlarmNoSpace {
		t.Fatalf("alarms: %+v", alarms.Alarms)
	}
	_, err = c.Put(ctx, "small", "x")
	isErr(t, err, gateway.ErrNoSpace)
	// Reads still work.
	tu.Must[*gateway.GetResponse](t)(c.Get(ctx, "big"))

	tu.Must[*gateway.CompactResponse](t)(c.Compact(ctx, last, gateway.WithPhysical()))
	tu.Must[*gateway.MaintenanceResponse](t)(c.Defragment(ctx))
	tu.Must[*gateway.AlarmResponse](t)(c.AlarmDisarm(ctx, alarms.Alarms[0].MemberID, gateway.AlarmNoSpace))
	tu.Eq(t, "alarms after disarm", len(tu.Must[*gateway.AlarmResponse](t)(c.AlarmList(ctx)).Alarms), 0)
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "small", "x"))
}

func TestMoveLeader(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Size: 3})
	ctx := tu.Ctx(t)
	clients := make([]*gateway.Client, 3)
	for i := range clients {
		clients[i] = tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) { cfg.Endpoints = cl.Endpoints()[i : i+1] })
	}
	st := tu.Must[*gateway.StatusResponse](t)(clients[0].Status(ctx))
	leader := -1
	var target uint64
	for i, c := range clients {
		s := tu.Must[*gateway.StatusResponse](t)(c.Status(ctx))
		if s.Header.MemberID == st.Leader {
			leader = i
		} else {
			target = s.Header.MemberID
		}
	}
	if leader < 0 {
		t.Fatal("no member is the leader")
	}
	follower := clients[(leader+1)%3]
	_, err := follower.MoveLeader(ctx, target)
	isErr(t, err, gateway.ErrNotLeader)
	tu.Must[*gateway.MaintenanceResponse](t)(clients[leader].MoveLeader(ctx, target))
	tu.Eq(t, "new leader", tu.Must[*gateway.StatusResponse](t)(clients[leader].Status(ctx)).Leader, target)
}
