package election_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/etcdgw/etcdgw/election"
	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
	"github.com/etcdgw/etcdgw/lease"
)

// endpoints are the client URLs of the member the examples talk to; TestMain
// starts it. In your program they are your etcd members' client URLs.
var endpoints []string

func TestMain(m *testing.M) { goleak.VerifyTestMain(tu.WithServer(m, &endpoints)) }

// observed returns the next leadership state, failing t if none comes.
func observed(t testing.TB, ctx context.Context, ch <-chan election.Leadership) election.Leadership {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatal("Observe ended")
		}
		return l
	case <-ctx.Done():
		t.Fatal("no leadership change observed")
	}
	panic("unreachable")
}

func leaderValue(l election.Leadership) string {
	if l.Leader == nil {
		return "<none>"
	}
	return string(l.Leader.Value)
}

func TestElection(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	_, err := election.Leader(ctx, c, "el")
	tu.Is(t, err, election.ErrNoLeader)
	octx, stopObserving := context.WithCancel(ctx)
	obs := election.Observe(octx, c, "el")
	tu.Eq(t, "first observation", leaderValue(observed(t, ctx, obs)), "<none>")

	a := election.New(tu.Lease(t, ctx, c, 30), "el")
	b := election.New(tu.Lease(t, ctx, c, 30), "el")
	tu.Is(t, a.Proclaim(ctx, "x"), election.ErrNotLeader)
	tu.Is(t, a.Resign(ctx), election.ErrNotLeader)
	tu.NoErr(t, a.Campaign(ctx, "a1"))
	tu.Eq(t, "observed", leaderValue(observed(t, ctx, obs)), "a1")
	term := a.Token()
	leading := a.Context()
	bDone := tu.Async(ctx, func(ctx context.Context) error { return b.Campaign(ctx, "b1") })
	tu.NoErr(t, a.Proclaim(ctx, "a2"))
	tu.Eq(t, "observed after Proclaim", leaderValue(observed(t, ctx, obs)), "a2")
	kv := tu.Must[*gateway.KeyValue](t)(b.Leader(ctx))
	tu.Eq(t, "leader", string(kv.Value), "a2")
	tu.Eq(t, "term", kv.CreateRevision, term)
	tu.Is(t, b.Proclaim(ctx, "b?"), election.ErrNotLeader)

	tu.NoErr(t, a.Resign(ctx))
	if leading.Err() == nil {
		t.Fatal("the leader's context did not end on Resign")
	}
	tu.Is(t, context.Cause(leading), election.ErrResigned)
	tu.NoErr(t, <-bDone)
	next := observed(t, ctx, obs)
	tu.Eq(t, "observed after Resign", leaderValue(next), "b1")
	if next.Leader.CreateRevision <= term {
		t.Fatalf("new term %d after %d", next.Leader.CreateRevision, term)
	}
	// A guarded write works for the leader only.
	r := tu.Must[*gateway.TxnResponse](t)(c.Txn().If(b.IsOwner()).Then(gateway.OpPut("el-data", "b")).Commit(ctx))
	tu.Eq(t, "leader's guarded write", r.Succeeded, true)
	r = tu.Must[*gateway.TxnResponse](t)(c.Txn().If(a.IsOwner()).Then(gateway.OpPut("el-data", "a")).Commit(ctx))
	tu.Eq(t, "old leader's guarded write", r.Succeeded, false)

	// A campaign whose ctx ends leaves no key.
	cctx, cancel := context.WithCancel(ctx)
	aDone := tu.Async(cctx, func(ctx context.Context) error { return a.Campaign(ctx, "a3") })
	tu.WaitKeys(t, ctx, c, "el/", 2)
	cancel()
	tu.Is(t, <-aDone, context.Canceled)
	tu.Eq(t, "candidates", tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, "el/", gateway.WithCountOnly())).Count, int64(1))

	tu.NoErr(t, b.Resign(ctx))
	tu.Eq(t, "observed after the last Resign", leaderValue(observed(t, ctx, obs)), "<none>")
	stopObserving()
	for range obs { // closed when its ctx ends
	}
}

// TestResume: a candidate that restarts with its lease keeps its place and
// proclaims its new value.
// TestHeld: Held asks the server whether the candidate leads now.
func TestHeld(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	a := election.New(tu.Lease(t, ctx, c, 30), "held-el")
	tu.Eq(t, "before Campaign", tu.Must[bool](t)(a.Held(ctx)), false)
	tu.NoErr(t, a.Campaign(ctx, "a"))
	tu.Eq(t, "leading", tu.Must[bool](t)(a.Held(ctx)), true)
	tu.NoErr(t, a.Resign(ctx))
	tu.Eq(t, "after Resign", tu.Must[bool](t)(a.Held(ctx)), false)
}

// TestNamespaced: an election through a namespace view lives there: its
// observers see its leader by the view's key, and the same name elsewhere is
// another election.
func TestNamespaced(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	raw := tu.Client(t, cl.Endpoints())
	a, b := raw.WithNamespace("ns-a/"), raw.WithNamespace("ns-b/")
	ea := election.New(tu.Lease(t, ctx, a, 30), "svc")
	eb := election.New(tu.Lease(t, ctx, b, 30), "svc")
	tu.NoErr(t, ea.Campaign(ctx, "leader-a"))
	tu.NoErr(t, eb.Campaign(ctx, "leader-b")) // another namespace: another election
	obsCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	l := <-election.Observe(obsCtx, a, "svc")
	tu.Eq(t, "observed leader", string(l.Leader.Value), "leader-a")
	tu.Eq(t, "observed key", string(l.Leader.Key), ea.Key())
	kv := tu.Must[*gateway.KeyValue](t)(election.Leader(ctx, b, "svc"))
	tu.Eq(t, "b's leader", string(kv.Value), "leader-b")
	tu.NoErr(t, ea.Resign(ctx))
	tu.NoErr(t, eb.Resign(ctx))
}

func TestResume(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	l := tu.Must[*lease.Lease](t)(lease.New(ctx, c, lease.WithTTL(30)))
	e := election.New(l, "res")
	tu.NoErr(t, e.Campaign(ctx, "before"))
	term := e.Token()
	l.Orphan() // the process "restarts"
	adopted := tu.Must[*lease.Lease](t)(lease.New(ctx, c, lease.WithID(l.ID())))
	defer adopted.Close(ctx)
	e2 := election.New(adopted, "res")
	tu.NoErr(t, e2.Campaign(ctx, "after"))
	tu.Eq(t, "term kept", e2.Token(), term)
	kv := tu.Must[*gateway.KeyValue](t)(election.Leader(ctx, c, "res"))
	tu.Eq(t, "proclaimed", string(kv.Value), "after")
	tu.NoErr(t, e2.Resign(ctx))
}

// TestResumeTerm: after a restart on the same lease, Resume takes up the term
// it had without campaigning, and refuses a term that is over or one that does
// not lead.
func TestResumeTerm(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	restart := func(l *lease.Lease) *lease.Lease {
		l.Orphan()
		return tu.Must[*lease.Lease](t)(lease.New(ctx, c, lease.WithID(l.ID())))
	}
	l := tu.Must[*lease.Lease](t)(lease.New(ctx, c, lease.WithTTL(30)))
	e := election.New(l, "rt")
	tu.NoErr(t, e.Campaign(ctx, "before"))
	term := e.Token()

	l = restart(l)
	e2 := tu.Must[*election.Election](t)(election.Resume(ctx, l, "rt", term))
	tu.Eq(t, "term", e2.Token(), term)
	tu.Eq(t, "leading", tu.Must[bool](t)(e2.Held(ctx)), true)
	r := tu.Must[*gateway.TxnResponse](t)(c.Txn().If(e2.IsOwner()).Then(gateway.OpPut("rt-data", "x")).Commit(ctx))
	tu.Eq(t, "guarded write", r.Succeeded, true)

	// A term that is over: refused, not waited for.
	l = restart(l)
	_, err := election.Resume(ctx, l, "rt", term+1)
	tu.Is(t, err, election.ErrLost)

	// A term that does not lead: refused. The key is there, behind another
	// leader's, as a campaign of the previous incarnation left it.
	other := election.New(tu.Lease(t, ctx, c, 30), "rt-2")
	tu.NoErr(t, other.Campaign(ctx, "first"))
	behind := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, fmt.Sprintf("rt-2/%x", l.ID()), "second", gateway.WithLease(l.ID())))
	_, err = election.Resume(ctx, l, "rt-2", behind.Header.Revision)
	tu.Is(t, err, election.ErrNotLeader)
	tu.NoErr(t, other.Resign(ctx))
	tu.NoErr(t, l.Close(ctx))
}

// TestLeaderFailover: three candidates on a 3-member cluster. The leader's
// client talks to one member only, which is paused past the leader's TTL:
// the old leader's signal fires first, then exactly one new leader takes over
// and observers see it. Then that leader resigns and the third takes over.
func TestLeaderFailover(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Size: 3})
	ctx := tu.Ctx(t)
	f := tu.Follower(t, ctx, cl)
	others := tu.Except(cl, f)
	ac := tu.Client(t, []string{f.ClientURL}, func(cfg *gateway.Config) { cfg.RequestTimeout = 500 * time.Millisecond })
	a := election.New(tu.Lease(t, ctx, ac, 2), "fo")
	tu.NoErr(t, a.Campaign(ctx, "a"))
	signal := a.Done()
	b := election.New(tu.Lease(t, ctx, tu.Client(t, others), 2), "fo")
	cc := election.New(tu.Lease(t, ctx, tu.Client(t, others), 2), "fo")
	oc := tu.Client(t, others)
	bDone := tu.Async(ctx, func(ctx context.Context) error { return b.Campaign(ctx, "b") })
	tu.WaitKeys(t, ctx, oc, "fo/", 2)
	cDone := tu.Async(ctx, func(ctx context.Context) error { return cc.Campaign(ctx, "c") })
	tu.WaitKeys(t, ctx, oc, "fo/", 3)
	octx, stopObserving := context.WithCancel(ctx)
	defer func() {
		stopObserving()
		for range election.Observe(octx, oc, "fo") {
		}
	}()
	obs := election.Observe(octx, oc, "fo")
	tu.Eq(t, "observed", leaderValue(observed(t, ctx, obs)), "a")

	tu.NoErr(t, f.Pause())
	paused := time.Now()
	var signalled, elected, seen time.Duration
	for elected == 0 || seen == 0 || signalled == 0 {
		select {
		case <-signal:
			signal = nil
			signalled = time.Since(paused)
		case err := <-bDone:
			tu.NoErr(t, err)
			elected = time.Since(paused)
			if signalled == 0 {
				t.Fatalf("b was elected %v after the pause, before the old leader's signal", elected)
			}
		case l := <-obs:
			if leaderValue(l) == "b" {
				seen = time.Since(paused)
			} else if leaderValue(l) != "a" {
				t.Fatalf("observed %q, want b after a", leaderValue(l))
			}
		case err := <-cDone:
			t.Fatalf("a second new leader: c campaigned with %v", err)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	tu.Is(t, context.Cause(a.Context()), election.ErrLost)
	tu.NoErr(t, f.Resume())

	resigned := time.Now()
	tu.NoErr(t, b.Resign(ctx))
	tu.NoErr(t, <-cDone)
	cElected := time.Since(resigned)
	for l := observed(t, ctx, obs); leaderValue(l) != "c"; l = observed(t, ctx, obs) {
	}
	cSeen := time.Since(resigned)
	tu.NoErr(t, cc.Resign(ctx))
	t.Logf("leader's member paused (TTL 2s): old leader's signal after %v, new leader elected after %v, observed after %v",
		signalled.Round(time.Millisecond), elected.Round(time.Millisecond), seen.Round(time.Millisecond))
	t.Logf("leader resigned: next leader elected after %v, observed after %v", cElected.Round(time.Microsecond), cSeen.Round(time.Microsecond))
}

// TestObserveSurvivesCompaction: an observer whose only member is down while
// the election changes and the history is compacted reports the state it
// finds when the member is back, and goes on reporting changes.
func TestObserveSurvivesCompaction(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Size: 3})
	ctx := tu.Ctx(t)
	f := tu.Follower(t, ctx, cl) // killing it leaves the others' leader in place
	oc := tu.Client(t, []string{f.ClientURL}, func(cfg *gateway.Config) {
		cfg.Retry = gateway.RetryPolicy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	})
	c := tu.Client(t, tu.Except(cl, f))
	octx, stopObserving := context.WithCancel(ctx)
	obs := election.Observe(octx, oc, "oc")
	tu.Eq(t, "first observation", leaderValue(observed(t, ctx, obs)), "<none>")
	a := election.New(tu.Lease(t, ctx, c, 30), "oc")
	tu.NoErr(t, a.Campaign(ctx, "a"))
	tu.Eq(t, "observed", leaderValue(observed(t, ctx, obs)), "a")

	f.Kill()
	b := election.New(tu.Lease(t, ctx, c, 30), "oc")
	bDone := tu.Async(ctx, func(ctx context.Context) error { return b.Campaign(ctx, "b") })
	tu.WaitKeys(t, ctx, c, "oc/", 2)
	tu.NoErr(t, a.Resign(ctx))
	tu.NoErr(t, <-bDone)
	r := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "oc-bump", "x"))
	tu.Must[*gateway.CompactResponse](t)(c.Compact(ctx, r.Header.Revision))
	tu.NoErr(t, f.Start())

	got := observed(t, ctx, obs)
	tu.Eq(t, "observed after the compaction", leaderValue(got), "b")
	if got.Revision < r.Header.Revision { // from events: the history was not compacted for it
		t.Fatalf("observed at revision %d, below the compaction at %d: the watch did not hit the compaction", got.Revision, r.Header.Revision)
	}
	tu.NoErr(t, b.Resign(ctx))
	tu.Eq(t, "observed after", leaderValue(observed(t, ctx, obs)), "<none>")
	stopObserving()
	for range obs {
	}
}
