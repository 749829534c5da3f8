package mutex_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
	"github.com/etcdgw/etcdgw/lease"
	"github.com/etcdgw/etcdgw/mutex"
)

// endpoints are the client URLs of the member the examples talk to; TestMain
// starts it. In your program they are your etcd members' client URLs.
var endpoints []string

func TestMain(m *testing.M) { goleak.VerifyTestMain(tu.WithServer(m, &endpoints)) }

// keys lists the keys under prefix.
func keys(t testing.TB, ctx context.Context, c *gateway.Client, prefix string) []string {
	t.Helper()
	r := tu.Must[*gateway.GetResponse](t)(c.GetPrefix(ctx, prefix, gateway.WithKeysOnly()))
	var ks []string
	for _, kv := range r.Kvs {
		ks = append(ks, string(kv.Key))
	}
	return ks
}

func TestMutex(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	l1, l2 := tu.Lease(t, ctx, c, 30), tu.Lease(t, ctx, c, 30)
	m1, m2 := mutex.New(l1, "lk"), mutex.New(l2, "lk")
	tu.Eq(t, "key", m1.Key(), fmt.Sprintf("lk/%x", l1.ID()))
	tu.Is(t, context.Cause(m1.Context()), mutex.ErrNotLocked)
	tu.Eq(t, "token before Lock", m1.Token(), 0)

	tu.NoErr(t, m1.Lock(ctx))
	first := m1.Token()
	kv := tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, m1.Key()))
	tu.Eq(t, "token", first, kv.CreateRevision)
	tu.Eq(t, "lease on the key", kv.Lease, l1.ID())
	tu.Is(t, m1.Lock(ctx), mutex.ErrInUse)
	tu.Is(t, mutex.New(l1, "lk").Lock(ctx), mutex.ErrInUse)

	// TryLock by another holder fails and leaves nothing behind.
	tu.Is(t, m2.TryLock(ctx), mutex.ErrLocked)
	if ks := keys(t, ctx, c, "lk/"); !slices.Equal(ks, []string{m1.Key()}) {
		t.Fatalf("keys after a failed TryLock: %q", ks)
	}
	// A write guarded by IsOwner succeeds only for the holder.
	r := tu.Must[*gateway.TxnResponse](t)(c.Txn().If(m1.IsOwner()).Then(gateway.OpPut("guarded", "1")).Commit(ctx))
	tu.Eq(t, "holder's guarded write", r.Succeeded, true)
	r = tu.Must[*gateway.TxnResponse](t)(c.Txn().If(m2.IsOwner()).Then(gateway.OpPut("guarded", "2")).Commit(ctx))
	tu.Eq(t, "non-holder's guarded write", r.Succeeded, false)

	// A waiter gets the lock when the holder unlocks, with a greater token.
	done := make(chan error, 1)
	go func() { done <- m2.Lock(ctx) }()
	tu.WaitKeys(t, ctx, c, "lk/", int64(2))
	held := m1.Context()
	tu.NoErr(t, m1.Unlock(ctx))
	tu.Is(t, context.Cause(held), mutex.ErrNotLocked)
	tu.NoErr(t, <-done)
	if m2.Token() <= first {
		t.Fatalf("token %d after %d", m2.Token(), first)
	}
	tu.Is(t, m1.Unlock(ctx), mutex.ErrNotLocked) // twice
	tu.NoErr(t, m2.Unlock(ctx))
	tu.Eq(t, "keys left", len(keys(t, ctx, c, "lk/")), 0)

	// Lock on a closed lease.
	tu.NoErr(t, l1.Close(ctx))
	tu.Is(t, m1.Lock(ctx), lease.ErrClosed)

	// The seed's lock(id, ttl): its own lease, revoked by Unlock.
	m3 := tu.Must[*mutex.Mutex](t)(mutex.Acquire(ctx, c, "lk", 10))
	id := tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, m3.Key())).Lease
	tu.NoErr(t, m3.Unlock(ctx))
	_, err := c.TimeToLive(ctx, id)
	tu.Is(t, err, gateway.ErrLeaseNotFound)
	// and when it cannot lock, it leaks no lease.
	tu.NoErr(t, m2.Lock(ctx))
	before := len(tu.Must[*gateway.LeaseLeasesResponse](t)(c.Leases(ctx)).Leases)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = mutex.Acquire(short, c, "lk", 10)
	cancel()
	tu.Is(t, err, context.DeadlineExceeded)
	tu.Eq(t, "leases after a failed Acquire", len(tu.Must[*gateway.LeaseLeasesResponse](t)(c.Leases(ctx)).Leases), before)
	tu.NoErr(t, m2.Unlock(ctx))
}

// TestStaleUnlockIsFenced: an Unlock that comes after the holder lost its key,
// and someone created a new key of the same name (same lease), leaves that key.
func TestStaleUnlockIsFenced(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	l := tu.Lease(t, ctx, c, 30)
	m := mutex.New(l, "fence")
	tu.NoErr(t, m.Lock(ctx))
	lost := m.Context()
	tu.Must[*gateway.DeleteResponse](t)(c.Delete(ctx, m.Key()))
	<-lost.Done()
	tu.Is(t, context.Cause(lost), mutex.ErrLost)
	if errors.Is(context.Cause(lost), lease.ErrLost) {
		t.Fatalf("a key deleted by someone else is reported as the lease's end: %v", context.Cause(lost))
	}
	newer := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, m.Key(), "", gateway.WithLease(l.ID())))
	tu.Is(t, m.Unlock(ctx), mutex.ErrLost)
	kv := tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, m.Key()))
	tu.Eq(t, "newer key kept", kv.CreateRevision, newer.Header.Revision)
}

// TestHammer: goroutines in several clients of a 3-member cluster take one
// lock in turn. Each holder reads a counter and the token of its last writer,
// checks that its own token is greater, and writes both back guarded by its
// IsOwner compare and the counter's revision: two holders at once would make
// one of those writes fail.
func TestHammer(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Size: 3})
	ctx := tu.Ctx(t)
	const clients, perClient, rounds = 3, 4, 8
	var clis []*gateway.Client
	for i := 0; i < clients; i++ {
		eps := slices.Clone(cl.Endpoints())
		slices.Reverse(eps[i%len(eps):]) // different first members
		clis = append(clis, tu.Client(t, eps))
	}
	tu.Must[*gateway.PutResponse](t)(clis[0].Put(ctx, "ctr", "0 0"))
	var inside atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, clients*perClient)
	for i := 0; i < clients*perClient; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clis[i%clients]
			l, err := lease.New(ctx, c, lease.WithTTL(10))
			if err != nil {
				errs <- err
				return
			}
			defer l.Close(context.Background())
			m := mutex.New(l, "hammer")
			for r := 0; r < rounds; r++ {
				if err := m.Lock(ctx); err != nil {
					errs <- err
					return
				}
				if n := inside.Add(1); n != 1 {
					errs <- fmt.Errorf("%d holders at once", n)
				}
				kv, err := c.GetOne(ctx, "ctr")
				if err != nil {
					errs <- err
					return
				}
				var count, last int64
				fmt.Sscan(string(kv.Value), &count, &last)
				if m.Token() <= last {
					errs <- fmt.Errorf("token %d after token %d", m.Token(), last)
				}
				tx, err := c.Txn().
					If(m.IsOwner(), gateway.CmpModRevision("ctr", gateway.Equal, kv.ModRevision)).
					Then(gateway.OpPut("ctr", fmt.Sprint(count+1, " ", m.Token()))).
					Commit(ctx)
				if err != nil {
					errs <- err
					return
				}
				if !tx.Succeeded {
					errs <- fmt.Errorf("guarded write of holder %d failed: another holder wrote", m.Token())
				}
				inside.Add(-1)
				if err := m.Unlock(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	kv := tu.Must[*gateway.KeyValue](t)(clis[0].GetOne(ctx, "ctr"))
	count, _ := strconv.Atoi(strings.Fields(string(kv.Value))[0])
	tu.Eq(t, "counter", count, clients*perClient*rounds)
}

// TestLossSignalPrecedesTakeover pauses the only member a holder talks to,
// past its lease's TTL. The holder's loss signal must fire before a contender
// on the other members acquires, and the holder's guarded write must fail
// afterwards.
func TestLossSignalPrecedesTakeover(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Size: 3})
	ctx := tu.Ctx(t)
	f := tu.Follower(t, ctx, cl)
	others := tu.Except(cl, f)
	hc := tu.Client(t, []string{f.ClientURL}, func(cfg *gateway.Config) { cfg.RequestTimeout = 500 * time.Millisecond })
	oc := tu.Client(t, others)
	holder := mutex.New(tu.Lease(t, ctx, hc, 2), "loss")
	tu.NoErr(t, holder.Lock(ctx))
	lostSignal := holder.Done()
	contender := mutex.New(tu.Lease(t, ctx, oc, 10), "loss")
	acquired := make(chan time.Time, 1)
	go func() {
		if err := contender.Lock(ctx); err != nil {
			t.Error(err)
		}
		acquired <- time.Now()
	}()
	tu.WaitKeys(t, ctx, oc, "loss/", int64(2))

	tu.NoErr(t, f.Pause())
	paused := time.Now()
	var lostAt, acquiredAt time.Time
	for lostAt.IsZero() || acquiredAt.IsZero() {
		select {
		case <-lostSignal:
			lostSignal = nil
			lostAt = time.Now()
		case acquiredAt = <-acquired:
			if lostAt.IsZero() {
				t.Fatalf("the contender acquired %v after the pause, before the holder's loss signal", acquiredAt.Sub(paused))
			}
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	tu.Is(t, context.Cause(holder.Context()), mutex.ErrLost, lease.ErrLost)
	tu.NoErr(t, f.Resume())
	tu.NoErr(t, f.WaitHealthy(ctx))
	r := tu.Must[*gateway.TxnResponse](t)(hc.Txn().If(holder.IsOwner()).Then(gateway.OpPut("loss-guarded", "stale")).Commit(ctx))
	tu.Eq(t, "stale holder's guarded write", r.Succeeded, false)
	tu.Is(t, holder.Unlock(ctx), mutex.ErrLost)
	tu.NoErr(t, contender.Unlock(ctx))
	t.Logf("pause at 0; loss signal at %v; contender acquired at %v",
		lostAt.Sub(paused).Round(time.Millisecond), acquiredAt.Sub(paused).Round(time.Millisecond))
}

// TestWaiterStopsWhenLeaseEnds: a waiter whose lease is revoked stops waiting
// with ErrLost.
func TestWaiterStopsWhenLeaseEnds(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	holder := mutex.New(tu.Lease(t, ctx, c, 30), "wl")
	tu.NoErr(t, holder.Lock(ctx))
	wl := tu.Lease(t, ctx, c, 3) // renewed each second: the revocation is seen within one
	done := make(chan error, 1)
	go func() { done <- mutex.New(wl, "wl").Lock(ctx) }()
	tu.WaitKeys(t, ctx, c, "wl/", int64(2))
	tu.Must[*gateway.LeaseRevokeResponse](t)(c.Revoke(ctx, wl.ID()))
	tu.Is(t, <-done, mutex.ErrLost, lease.ErrLost)
	tu.NoErr(t, holder.Unlock(ctx))
}

// onRequest runs do just before the client sends its at-th request.
type onRequest struct {
	next http.RoundTripper
	n    atomic.Int64
	at   atomic.Int64
	do   func()
}

func (o *onRequest) RoundTrip(r *http.Request) (*http.Response, error) {
	if o.n.Add(1) == o.at.Load() {
		o.do()
	}
	return o.next.RoundTrip(r)
}

// TestWaiterLeaseRevokedBeforeCheck revokes a waiter's lease between the
// create of its key and its first check, long before the lease's renewal (TTL
// 30: every 10 s) could notice. The check finds the key gone; Lock must name
// the lease's end, and the lease must have ended with it.
func TestWaiterLeaseRevokedBeforeCheck(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	holder := mutex.New(tu.Lease(t, ctx, c, 30), "rv")
	tu.NoErr(t, holder.Lock(ctx))
	wl := tu.Lease(t, ctx, c, 30)
	revoked := make(chan error, 1)
	tr := &onRequest{next: http.DefaultTransport.(*http.Transport).Clone(), do: func() {
		_, err := c.Revoke(ctx, wl.ID())
		revoked <- err
	}}
	wc := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) { cfg.HTTPClient = &http.Client{Transport: tr} })
	adopted := tu.Must[*lease.Lease](t)(lease.New(ctx, wc, lease.WithID(wl.ID())))
	defer adopted.Orphan()
	tr.at.Store(tr.n.Load() + 2) // Lock's request 1 creates the key, 2 checks
	err := mutex.New(adopted, "rv").Lock(ctx)
	tu.NoErr(t, <-revoked)
	tu.Is(t, err, mutex.ErrLost, lease.ErrLost, gateway.ErrLeaseNotFound)
	tu.Is(t, adopted.Err(), lease.ErrLost, gateway.ErrLeaseNotFound)
	tu.NoErr(t, holder.Unlock(ctx))
}

// TestHolderLeaseRevoked: a holder whose lease is revoked elsewhere learns it
// from the deletion of its key, at once, and the loss names the lease's end;
// its lease has ended too, long before its next renewal (TTL 30).
func TestHolderLeaseRevoked(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	l := tu.Lease(t, ctx, c, 30)
	m := mutex.New(l, "hr")
	tu.NoErr(t, m.Lock(ctx))
	lost := m.Context()
	tu.Must[*gateway.LeaseRevokeResponse](t)(c.Revoke(ctx, l.ID()))
	select {
	case <-lost.Done():
	case <-ctx.Done():
		t.Fatal("no loss signal")
	}
	tu.Is(t, context.Cause(lost), mutex.ErrLost, lease.ErrLost, gateway.ErrLeaseNotFound)
	tu.Is(t, l.Err(), lease.ErrLost)
	tu.Is(t, m.Unlock(ctx), mutex.ErrLost, lease.ErrLost)
}

// TestCancelLeavesNothing cancels Lock at each of its requests in turn (the
// create, the check, the watch, and the re-check after a release) and before
// it starts; each time Lock returns the ctx's error and no key of the waiter
// remains.
func TestCancelLeavesNothing(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	holder := mutex.New(tu.Lease(t, ctx, c, 30), "cx")
	// Lock's requests: 1 creates the key, 2 checks, 3 opens the watch, 4
	// re-checks after the release; 0 cancels before Lock.
	for at := int64(0); at <= 4; at++ {
		tu.NoErr(t, holder.Lock(ctx))
		lctx, cancel := context.WithCancel(ctx)
		tr := &onRequest{next: http.DefaultTransport.(*http.Transport).Clone(), do: cancel}
		if at == 0 {
			cancel()
		}
		wc := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) { cfg.HTTPClient = &http.Client{Transport: tr} })
		wl := tu.Lease(t, ctx, c, 30)
		// The waiter uses the same lease through the cancelling client.
		adopted := tu.Must[*lease.Lease](t)(lease.New(ctx, wc, lease.WithID(wl.ID())))
		base := tr.n.Load()
		if at > 0 {
			tr.at.Store(base + at)
		}
		done := make(chan error, 1)
		go func() { done <- mutex.New(adopted, "cx").Lock(lctx) }()
		// Release the holder once the waiter has queued, so that its later
		// requests (the re-check) happen too.
		select {
		case err := <-done:
			tu.Is(t, err, context.Canceled)
		case <-time.After(time.Second):
			tu.NoErr(t, holder.Unlock(ctx))
			tu.Is(t, <-done, context.Canceled)
		}
		t.Logf("cancelled at Lock's request %d; it sent %d (with the key's removal)", at, tr.n.Load()-base)
		cancel()
		if holder.Token() != 0 {
			tu.NoErr(t, holder.Unlock(ctx))
		}
		if ks := keys(t, ctx, c, fmt.Sprintf("cx/%x", wl.ID())); len(ks) != 0 {
			t.Fatalf("cancel at request %d left %q", at, ks)
		}
		adopted.Orphan()
		tu.NoErr(t, wl.Close(ctx))
	}
}

// counting counts the requests a client sends, and the connections it opens.
type counting struct {
	next  http.RoundTripper
	n     atomic.Int64
	dials atomic.Int64
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

type locker interface {
	Lock(context.Context) error
	Unlock(context.Context) error
}

// slot makes a Semaphore a locker.
type slot struct{ *mutex.Semaphore }

func (s slot) Lock(ctx context.Context) error   { return s.Acquire(ctx) }
func (s slot) Unlock(ctx context.Context) error { return s.Release(ctx) }

// handoffs queues waiters behind holders (all made by mk on one client), then
// lets the lock pass through all of them, each releasing as soon as it holds.
// It returns the requests per hand-off (counted from the first release to the
// last acquisition) and each hand-off's latency (a release started to the
// next Lock returned).
func handoffs(t testing.TB, ctx context.Context, eps []string, holders, waiters int, mk func(*lease.Lease) locker) (float64, float64, []time.Duration) {
	return handoffsOver(t, ctx, eps, nil, holders, waiters, mk)
}

// handoffsOver is handoffs over TLS with tlsCfg (nil: plain HTTP).
func handoffsOver(t testing.TB, ctx context.Context, eps []string, tlsCfg *tls.Config, holders, waiters int, mk func(*lease.Lease) locker) (float64, float64, []time.Duration) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	tr.MaxIdleConnsPerHost = 2 * waiters
	cnt := &counting{next: tr}
	dial := (&net.Dialer{}).DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		cnt.dials.Add(1)
		return dial(ctx, network, addr)
	}
	c := tu.Client(t, eps, func(cfg *gateway.Config) { cfg.HTTPClient = &http.Client{Transport: cnt} })
	t.Cleanup(tr.CloseIdleConnections)
	hs := make([]locker, holders)
	for i := range hs {
		hs[i] = mk(tu.Lease(t, ctx, c, 60))
		tu.NoErr(t, hs[i].Lock(ctx))
	}
	ms := make([]locker, waiters)
	for i := range ms {
		ms[i] = mk(tu.Lease(t, ctx, c, 60))
	}
	var mu sync.Mutex
	var releases, acquires []time.Time
	release := func(m locker) {
		mu.Lock()
		releases = append(releases, time.Now())
		mu.Unlock()
		if err := m.Unlock(ctx); err != nil {
			t.Error(err)
		}
	}
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.Lock(ctx); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			acquires = append(acquires, time.Now())
			mu.Unlock()
			release(m)
		}()
	}
	// Every waiter has queued once it waits on the client's shared stream.
	for c.Waiters() < waiters {
		select {
		case <-ctx.Done():
			t.Fatal("waiters did not queue")
		case <-time.After(time.Millisecond):
		}
	}
	before, dialed := cnt.n.Load(), cnt.dials.Load()
	for _, h := range hs {
		release(h)
	}
	wg.Wait()
	// The last releases hand off to nobody.
	perHandoff := float64(cnt.n.Load()-before-int64(holders)) / float64(waiters)
	connsPer := float64(cnt.dials.Load()-dialed) / float64(waiters)
	var lat []time.Duration
	for i := range acquires {
		lat = append(lat, acquires[i].Sub(releases[i]))
	}
	return perHandoff, connsPer, lat
}

func percentile(d []time.Duration, p float64) time.Duration {
	d = slices.Clone(d)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[int(float64(len(d)-1)*p)]
}

// TestHandoffRequestsFlat: the requests per hand-off do not grow with the
// number of waiters, for a Mutex, the writers of an RWMutex and a Semaphore.
func TestHandoffRequestsFlat(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	kinds := []struct {
		name    string
		holders int
		mk      func(l *lease.Lease, name string) locker
		want    float64 // requests per hand-off
	}{
		// The release, then the next waiter's check.
		{"mutex", 1, func(l *lease.Lease, name string) locker { return mutex.New(l, name) }, 2},
		{"rwmutex writers", 1, func(l *lease.Lease, name string) locker { return mutex.NewRWMutex(l, name) }, 2},
		// The release, the first waiter's check and mark, then the next
		// waiter's check and its watch on the holders.
		{"semaphore of 2", 2, func(l *lease.Lease, name string) locker {
			return slot{tu.Must[*mutex.Semaphore](t)(mutex.NewSemaphore(l, name, 2))}
		}, 5},
	}
	for _, k := range kinds {
		for _, w := range []int{1, 8, 64} {
			name := fmt.Sprintf("flat-%s-%d", strings.ReplaceAll(k.name, " ", "-"), w)
			p, conns, lat := handoffs(t, ctx, cl.Endpoints(), k.holders, w, func(l *lease.Lease) locker { return k.mk(l, name) })
			t.Logf("%-16s %2d waiters: %.2f requests and %.3f new connections per hand-off, latency p50 %v p99 %v", k.name, w, p, conns,
				percentile(lat, 0.5).Round(10*time.Microsecond), percentile(lat, 0.99).Round(10*time.Microsecond))
			// Waits share one watch stream per lock: a hand-off opens no connection.
			if w > 1 && conns > 0.05 {
				t.Errorf("%s with %d waiters: %.3f new connections per hand-off, want at most 0.05", k.name, w, conns)
			}
			if p > k.want+0.5 {
				t.Errorf("%s with %d waiters: %.2f requests per hand-off, want at most %v", k.name, w, p, k.want)
			}
		}
	}
}

// TestHandoffConnectionsTLS: over TLS (HTTP/2) too, hand-offs open no
// connection: every request and every wait shares the client's one.
func TestHandoffConnectionsTLS(t *testing.T) {
	certs, err := etcdtest.MakeCerts(t.TempDir())
	tu.NoErr(t, err)
	cl := etcdtest.Start(t, etcdtest.Options{TLS: certs})
	tlsCfg, err := certs.ClientTLS()
	tu.NoErr(t, err)
	ctx := tu.Ctx(t)
	const waiters = 16
	p, conns, _ := handoffsOver(t, ctx, cl.Endpoints(), tlsCfg, 1, waiters,
		func(l *lease.Lease) locker { return mutex.New(l, "tls-handoffs") })
	t.Logf("over TLS, %d waiters: %.2f requests and %.3f new connections per hand-off", waiters, p, conns)
	if conns > 0.05 {
		t.Errorf("%.3f new connections per hand-off over TLS, want at most 0.05", conns)
	}
}

// TestHeld: Held asks the server: true while the lock is held, false once its
// key is gone (before any loss signal), false for a waiter and after Unlock.
func TestHeld(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	held := func(h interface {
		Held(context.Context) (bool, error)
	}) bool {
		return tu.Must[bool](t)(h.Held(ctx))
	}

	m := mutex.New(tu.Lease(t, ctx, c, 30), "held")
	tu.Eq(t, "held before Lock", held(m), false)
	tu.NoErr(t, m.Lock(ctx))
	tu.Eq(t, "held after Lock", held(m), true)
	w := mutex.New(tu.Lease(t, ctx, c, 30), "held")
	waiting := tu.Async(ctx, w.Lock)
	tu.WaitKeys(t, ctx, c, "held/", 2)
	tu.Eq(t, "a waiter holds", held(w), false)
	// Someone deletes the holder's key: Held says so at once.
	tu.Must[*gateway.DeleteResponse](t)(c.Delete(ctx, m.Key()))
	tu.Eq(t, "held after its key was deleted", held(m), false)
	tu.NoErr(t, <-waiting)
	tu.Eq(t, "the waiter, now first", held(w), true)
	tu.Is(t, m.Unlock(ctx), mutex.ErrLost)
	tu.NoErr(t, w.Unlock(ctx))
	tu.Eq(t, "held after Unlock", held(w), false)

	// A semaphore of two: two hold, the third waits.
	var sems []*mutex.Semaphore
	for range 3 {
		sems = append(sems, tu.Must[*mutex.Semaphore](t)(mutex.NewSemaphore(tu.Lease(t, ctx, c, 30), "held-sem", 2)))
	}
	tu.NoErr(t, sems[0].Acquire(ctx))
	tu.NoErr(t, sems[1].Acquire(ctx))
	third := tu.Async(ctx, sems[2].Acquire)
	tu.WaitKeys(t, ctx, c, "held-sem/", 3)
	tu.Eq(t, "first slot", held(sems[0]), true)
	tu.Eq(t, "second slot", held(sems[1]), true)
	tu.Eq(t, "waiting for a slot", held(sems[2]), false)
	tu.NoErr(t, sems[0].Release(ctx))
	tu.NoErr(t, <-third)
	tu.Eq(t, "third, after a release", held(sems[2]), true)
	tu.NoErr(t, sems[1].Release(ctx))
	tu.NoErr(t, sems[2].Release(ctx))

	// Both modes of an RWMutex.
	rw := mutex.NewRWMutex(tu.Lease(t, ctx, c, 30), "held-rw")
	tu.NoErr(t, rw.RLock(ctx))
	tu.Eq(t, "read lock", held(rw), true)
	tu.NoErr(t, rw.RUnlock(ctx))
	tu.NoErr(t, rw.Lock(ctx))
	tu.Eq(t, "write lock", held(rw), true)
	tu.NoErr(t, rw.Unlock(ctx))
	tu.Eq(t, "after Unlock", held(rw), false)
}

// TestLogsThroughClient: a lease and the lock held through it log through the
// client's logger: the lease's loss, and the lock's.
func TestLogsThroughClient(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	var logs tu.LogBuffer
	c := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) { cfg.Logger = logs.Logger() })
	l := tu.Lease(t, ctx, c, 30)
	m := mutex.New(l, "logged")
	tu.NoErr(t, m.Lock(ctx))
	done := m.Done()
	tu.Must[*gateway.LeaseRevokeResponse](t)(c.Revoke(ctx, l.ID()))
	<-done
	if !logs.Has("level=WARN", "msg=lost", "key=logged/") {
		t.Errorf("no warning of the lost lock in the client's log")
	}
	<-l.Done()
	if !logs.Has("level=WARN", `msg="lease lost"`) {
		t.Errorf("no warning of the lost lease in the client's log")
	}
	tu.Is(t, m.Unlock(ctx), mutex.ErrLost)
}

// TestLocker: the sync.Locker excludes across Lockers as a sync.Mutex would,
// and reports instead of panicking.
func TestLocker(t *testing.T) {
	cl := etcdtest.Single(t)
	c := tu.Client(t, cl.Endpoints())
	var mu sync.Mutex
	var errs []error
	onError := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	lockers := []sync.Locker{mutex.NewLocker(c, "locker", 10, onError), mutex.NewLocker(c, "locker", 10, onError)}
	counter, inside := 0, atomic.Int32{}
	var wg sync.WaitGroup
	for _, l := range lockers {
		wg.Go(func() {
			for range 20 {
				l.Lock()
				if inside.Add(1) != 1 {
					t.Error("two holders at once")
				}
				counter++ // a plain int: the lock is what keeps this right
				inside.Add(-1)
				l.Unlock()
			}
		})
	}
	wg.Wait()
	tu.Eq(t, "counter", counter, 40)
	mu.Lock()
	tu.Eq(t, "errors while the cluster was fine", len(errs), 0)
	mu.Unlock()
	lockers[0].Unlock() // not locked: reported, not a panic
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 1 {
		t.Fatalf("errors after an Unlock without Lock: %v", errs)
	}
	tu.Is(t, errs[0], mutex.ErrNotLocked)
}

// TestLockerThroughOutage: with the cluster down, Lock keeps trying and
// reports each failure; it holds the lock once the cluster is back.
func TestLockerThroughOutage(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) { cfg.RetryTimeout = -1 })
	failures := make(chan error, 100)
	l := mutex.NewLocker(c, "locker-outage", 10, func(err error) {
		select {
		case failures <- err:
		default:
		}
	})
	m := cl.Members[0]
	m.Kill()
	locked := make(chan struct{})
	go func() { l.Lock(); close(locked) }()
	select {
	case err := <-failures:
		t.Logf("reported while down: %v", err)
	case <-ctx.Done():
		t.Fatal("no failure reported while the cluster was down")
	}
	tu.NoErr(t, m.Start())
	tu.NoErr(t, m.WaitHealthy(ctx))
	select {
	case <-locked:
	case <-ctx.Done():
		t.Fatal("Lock did not get the lock once the cluster was back")
	}
	l.Unlock()
}

// TestNamespaced: locks made through namespace views exclude each other inside
// one namespace, and not across two; their keys live under the namespace.
func TestNamespaced(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	raw := tu.Client(t, cl.Endpoints())
	a, b := raw.WithNamespace("ns-a/"), raw.WithNamespace("ns-b/")
	ma := mutex.New(tu.Lease(t, ctx, a, 30), "job")
	mb := mutex.New(tu.Lease(t, ctx, b, 30), "job")
	tu.NoErr(t, ma.Lock(ctx))
	tu.NoErr(t, mb.TryLock(ctx)) // another namespace: another lock
	ma2 := mutex.New(tu.Lease(t, ctx, a, 30), "job")
	tu.Is(t, ma2.TryLock(ctx), mutex.ErrLocked)
	waiting := tu.Async(ctx, ma2.Lock)
	tu.WaitKeys(t, ctx, raw, "ns-a/job/", 2)
	tu.Eq(t, "raw keys of a's lock", tu.Must[*gateway.GetResponse](t)(raw.GetPrefix(ctx, "ns-a/job/", gateway.WithCountOnly())).Count, int64(2))
	tu.NoErr(t, ma.Unlock(ctx))
	tu.NoErr(t, <-waiting)
	r := tu.Must[*gateway.TxnResponse](t)(a.Txn().If(ma2.IsOwner()).Then(gateway.OpPut("guarded", "x")).Commit(ctx))
	tu.Eq(t, "guarded write through the view", r.Succeeded, true)
	tu.Eq(t, "the guarded key, raw", string(tu.Must[*gateway.KeyValue](t)(raw.GetOne(ctx, "ns-a/guarded")).Value), "x")
	tu.NoErr(t, ma2.Unlock(ctx))
	tu.NoErr(t, mb.Unlock(ctx))
}
