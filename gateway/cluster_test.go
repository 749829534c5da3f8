package gateway_test

import (
	"errors"
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

// TestPerMember: one client reaches each member with WithEndpoint: Status,
// HashKV, AlarmList, Defragment, Health and reads answer for that member alone;
// MoveLeader is refused by a follower and done by the leader; a killed member's
// Health fails while the others stay healthy; a member need not be among the
// client's endpoints.
func TestPerMember(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Size: 3})
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	put := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "pm", "v"))
	ids := map[uint64]*etcdtest.Member{}
	var leader *etcdtest.Member
	var hash uint32
	for _, m := range cl.Members {
		on := gateway.WithEndpoint(m.ClientURL)
		s := tu.Must[*gateway.StatusResponse](t)(c.Status(ctx, on))
		ids[s.Header.MemberID] = m
		if s.Header.MemberID == s.Leader {
			leader = m
		}
		if cl.AtLeast(3, 5) {
			h := tu.Must[*gateway.HashKVResponse](t)(c.HashKV(ctx, put.Header.Revision, on))
			tu.Eq(t, "member answering HashKV", h.Header.MemberID, s.Header.MemberID)
			if hash != 0 && h.Hash != hash {
				t.Fatalf("member %s: hash %d at revision %d, another member's %d", m.Name, h.Hash, put.Header.Revision, hash)
			}
			hash = h.Hash
		}
		tu.Eq(t, "alarms", len(tu.Must[*gateway.AlarmResponse](t)(c.AlarmList(ctx, on)).Alarms), 0)
		tu.Must[*gateway.MaintenanceResponse](t)(c.Defragment(ctx, on)) // its reply names no member
		tu.NoErr(t, c.Health(ctx, on))
		g := tu.Must[*gateway.GetResponse](t)(c.Get(ctx, "pm", on))
		tu.Eq(t, "member answering a read", g.Header.MemberID, s.Header.MemberID)
	}
	tu.Eq(t, "distinct members", len(ids), 3)
	if leader == nil {
		t.Fatal("no member is the leader")
	}
	var follower *etcdtest.Member
	var target uint64
	for id, m := range ids {
		if m != leader {
			follower, target = m, id
		}
	}
	_, err := c.MoveLeader(ctx, target, gateway.WithEndpoint(follower.ClientURL))
	isErr(t, err, gateway.ErrNotLeader)
	tu.Must[*gateway.MaintenanceResponse](t)(c.MoveLeader(ctx, target, gateway.WithEndpoint(leader.ClientURL)))
	tu.Eq(t, "new leader", tu.Must[*gateway.StatusResponse](t)(c.Status(ctx, gateway.WithEndpoint(leader.ClientURL))).Leader, target)

	// A member outside the client's endpoints.
	one := tu.Client(t, []string{cl.Members[0].ClientURL})
	s := tu.Must[*gateway.StatusResponse](t)(one.Status(ctx, gateway.WithEndpoint(cl.Members[2].ClientURL)))
	tu.Eq(t, "member outside the endpoints", ids[s.Header.MemberID], cl.Members[2])
	_, err = one.Status(ctx, gateway.WithEndpoint("ftp://x"))
	if !errors.Is(err, gateway.ErrInvalidConfig) {
		t.Fatalf("a bad URL: %v, want ErrInvalidConfig", err)
	}

	// A member that is down is unhealthy, and only that one: the call is not
	// sent elsewhere.
	victim := leader // no longer the leader
	victim.Kill()
	if err := c.Health(ctx, gateway.WithEndpoint(victim.ClientURL)); err == nil {
		t.Fatal("a killed member is healthy")
	}
	for _, m := range cl.Members {
		if m != victim {
			tu.NoErr(t, c.Health(ctx, gateway.WithEndpoint(m.ClientURL)))
		}
	}
}
