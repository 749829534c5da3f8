package gateway_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
)

func TestClusterSingle(t *testing.T) {
	cl := etcdtest.Single(t)
	c := newClient(t, cl)
	ctx := ctxT(t)

	v := must[gateway.Version](t)(c.Version(ctx))
	eq(t, "server version", v.Server, cl.Version())
	eq(t, "API path", must[string](t)(c.APIPath(ctx)), "/v3")

	ml := must[*gateway.MemberListResponse](t)(c.MemberList(ctx))
	eq(t, "members", len(ml.Members), 1)
	me := ml.Members[0]
	eq(t, "name", me.Name, "m0")
	eqStrings(t, "client URLs", me.ClientURLs, cl.Members[0].ClientURL)
	eqStrings(t, "peer URLs", me.PeerURLs, cl.Members[0].PeerURL)

	st := must[*gateway.StatusResponse](t)(c.Status(ctx))
	eq(t, "status version", st.Version, cl.Version())
	eq(t, "leader is itself", st.Leader, me.ID)
	if st.DbSize == 0 || st.RaftIndex == 0 || st.RaftTerm == 0 {
		t.Fatalf("status not decoded: %+v", st)
	}

	// A learner that never starts: added, updated, not promotable, removed.
	add := must[*gateway.MemberResponse](t)(c.MemberAdd(ctx, []string{"http://127.0.0.1:1"}, true))
	if add.Member == nil || !add.Member.IsLearner || add.Member.ID == 0 {
		t.Fatalf("added member: %+v", add.Member)
	}
	eq(t, "members after add", len(add.Members), 2)
	upd := must[*gateway.MemberResponse](t)(c.MemberUpdate(ctx, add.Member.ID, []string{"http://127.0.0.1:2"}))
	i := slices.IndexFunc(upd.Members, func(m gateway.Member) bool { return m.ID == add.Member.ID })
	if i < 0 {
		t.Fatalf("updated member missing: %+v", upd.Members)
	}
	eqStrings(t, "updated peer URLs", upd.Members[i].PeerURLs, "http://127.0.0.1:2")
	_, err := c.MemberPromote(ctx, add.Member.ID)
	isErr(t, err, gateway.ErrLearnerNotReady)
	rm := must[*gateway.MemberResponse](t)(c.MemberRemove(ctx, add.Member.ID))
	eq(t, "members after remove", len(rm.Members), 1)
	_, err = c.MemberRemove(ctx, add.Member.ID)
	isErr(t, err, gateway.ErrMemberNotFound)

	alarms := must[*gateway.AlarmResponse](t)(c.AlarmList(ctx))
	eq(t, "alarms", len(alarms.Alarms), 0)
	must[*gateway.MaintenanceResponse](t)(c.Defragment(ctx))

	for i := 0; i < 3; i++ {
		must[*gateway.PutResponse](t)(c.Put(ctx, fmt.Sprint("h/", i), "v"))
	}
	if !cl.AtLeast(3, 5) {
		// etcd 3.4's gateway maps HashKV and Hash to the same path and serves
		// only Hash: HashKV is not reachable over HTTP there.
		_, err := c.HashKV(ctx, 0)
		isErr(t, err, gateway.ErrUnimplemented)
		return
	}
	h1 := must[*gateway.HashKVResponse](t)(c.HashKV(ctx, 0))
	h2 := must[*gateway.HashKVResponse](t)(c.HashKV(ctx, 0))
	eq(t, "hash stable", h1.Hash, h2.Hash)
	if h1.Hash == 0 || (cl.AtLeast(3, 6) && h1.HashRevision != h1.Header.Revision) {
		t.Fatalf("hashkv: %+v", h1) // hash_revision is new in 3.6
	}
	must[*gateway.PutResponse](t)(c.Put(ctx, "h/x", "changed"))
	h3 := must[*gateway.HashKVResponse](t)(c.HashKV(ctx, 0))
	if h3.Hash == h1.Hash {
		t.Fatal("hash did not change with the data")
	}
	eq(t, "hash at the old revision", must[*gateway.HashKVResponse](t)(c.HashKV(ctx, h1.Header.Revision)).Hash, h1.Hash)
}

// TestNoSpaceAlarm fills a tiny backend quota: writes fail with ErrNoSpace and the
// alarm shows, until compaction, defragmentation and disarming clear it.
func TestNoSpaceAlarm(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Args: []string{"--quota-backend-bytes=" + fmt.Sprint(256<<10)}})
	c := newClient(t, cl)
	ctx := ctxT(t)
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
	alarms := must[*gateway.AlarmResponse](t)(c.AlarmList(ctx))
	if len(alarms.Alarms) != 1 || alarms.Alarms[0].Alarm != gateway.AlarmNoSpace {
		t.Fatalf("alarms: %+v", alarms.Alarms)
	}
	_, err = c.Put(ctx, "small", "x")
	isErr(t, err, gateway.ErrNoSpace)
	// Reads still work.
	must[*gateway.GetResponse](t)(c.Get(ctx, "big"))

	must[*gateway.CompactResponse](t)(c.Compact(ctx, last, gateway.WithPhysical()))
	must[*gateway.MaintenanceResponse](t)(c.Defragment(ctx))
	must[*gateway.AlarmResponse](t)(c.AlarmDisarm(ctx, alarms.Alarms[0].MemberID, gateway.AlarmNoSpace))
	eq(t, "alarms after disarm", len(must[*gateway.AlarmResponse](t)(c.AlarmList(ctx)).Alarms), 0)
	must[*gateway.PutResponse](t)(c.Put(ctx, "small", "x"))
}

func TestMoveLeader(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Size: 3})
	ctx := ctxT(t)
	clients := make([]*gateway.Client, 3)
	for i := range clients {
		clients[i] = newClient(t, cl, func(cfg *gateway.Config) { cfg.Endpoints = cl.Endpoints()[i : i+1] })
	}
	st := must[*gateway.StatusResponse](t)(clients[0].Status(ctx))
	leader := -1
	var target uint64
	for i, c := range clients {
		s := must[*gateway.StatusResponse](t)(c.Status(ctx))
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
	must[*gateway.MaintenanceResponse](t)(clients[leader].MoveLeader(ctx, target))
	eq(t, "new leader", must[*gateway.StatusResponse](t)(clients[leader].Status(ctx)).Leader, target)
}
