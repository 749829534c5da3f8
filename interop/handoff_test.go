package interop

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
	"github.com/etcdgw/etcdgw/lease"
	"github.com/etcdgw/etcdgw/mutex"
)

type locker interface {
	Lock(context.Context) error
	Unlock(context.Context) error
}

// meter counts the requests a client sends, and separately the watches it
// creates, which tell when a clientv3 waiter has queued.
type meter struct {
	requests atomic.Int64
	watches  atomic.Int64
}

func newMeter() *meter { return &meter{} }

func (m *meter) sent(watch bool) {
	m.requests.Add(1)
	if watch {
		m.watches.Add(1)
	}
}

// RoundTrip counts the gateway's HTTP requests.
type meteredTransport struct {
	*meter
	next http.RoundTripper
}

func (t meteredTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.sent(strings.HasSuffix(r.URL.Path, "/watch"))
	return t.next.RoundTrip(r)
}

// grpcMeter counts clientv3's unary calls and every message sent on a stream
// (each watch create or cancel, each keepalive).
func grpcMeter(m *meter) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			m.sent(false)
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			s, err := streamer(ctx, desc, cc, method, opts...)
			if err != nil {
				return nil, err
			}
			return countedStream{ClientStream: s, m: m, watch: strings.HasSuffix(method, "/Watch")}, nil
		}),
	}
}

type countedStream struct {
	grpc.ClientStream
	m     *meter
	watch bool
}

func (s countedStream) SendMsg(msg any) error {
	s.m.sent(s.watch && strings.Contains(fmt.Sprint(msg), "create_request"))
	return s.ClientStream.SendMsg(msg)
}

// handoffs queues the waiters behind a holder, then lets the lock pass through
// all of them, each unlocking as soon as it holds. It returns the requests per
// hand-off (from the holder's release to the last acquisition) and the
// latencies (release started to the next Lock returned).
// queued reports how many waiters wait.
func handoffs(t *testing.T, ctx context.Context, m *meter, queued func() int, holder locker, waiters []locker) (float64, []time.Duration) {
	tu.NoErr(t, holder.Lock(ctx))
	var mu sync.Mutex
	var releases, acquires []time.Time
	release := func(l locker) {
		mu.Lock()
		releases = append(releases, time.Now())
		mu.Unlock()
		if err := l.Unlock(ctx); err != nil {
			t.Error(err)
		}
	}
	var wg sync.WaitGroup
	for _, w := range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Lock(ctx); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			acquires = append(acquires, time.Now())
			mu.Unlock()
			release(w)
		}()
	}
	for queued() < len(waiters) {
		select {
		case <-ctx.Done():
			t.Fatal("waiters did not queue")
		case <-time.After(time.Millisecond):
		}
	}
	before := m.requests.Load()
	release(holder)
	wg.Wait()
	per := float64(m.requests.Load()-before-1) / float64(len(waiters)) // the last release hands off nothing
	var lat []time.Duration
	for i := range acquires {
		lat = append(lat, acquires[i].Sub(releases[i]))
	}
	return per, lat
}

func pct(d []time.Duration, p float64) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[int(float64(len(d)-1)*p)].Round(10 * time.Microsecond)
}

// TestHandoffComparison measures this package's Mutex and clientv3's
// concurrency.Mutex on the same server, one client each, with 8 and 64
// waiters: requests per hand-off and hand-off latency. Neither may grow with
// the number of waiters (no herd).
func TestHandoffComparison(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	type row struct {
		impl     string
		waiters  int
		per      float64
		p50, p99 time.Duration
	}
	var rows []row
	for _, n := range []int{8, 64} {
		// Ours, over the gateway.
		gm := newMeter()
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 2 * n
		t.Cleanup(tr.CloseIdleConnections)
		gc := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) {
			cfg.HTTPClient = &http.Client{Transport: meteredTransport{meter: gm, next: tr}}
		})
		mk := func() locker {
			l := tu.Must[*lease.Lease](t)(lease.New(ctx, gc, lease.WithTTL(60)))
			t.Cleanup(func() { l.Close(context.Background()) })
			return mutex.New(l, fmt.Sprintf("ours%d", n))
		}
		var ws []locker
		for range n {
			ws = append(ws, mk())
		}
		// Ours wait on the client's shared watch streams, which count them.
		per, lat := handoffs(t, ctx, gm, gc.Waiters, mk(), ws)
		rows = append(rows, row{"etcdgw mutex (gateway)", n, per, pct(lat, .5), pct(lat, .99)})

		// clientv3, over gRPC.
		vm := newMeter()
		vc := v3client(t, cl.Endpoints(), func(cfg *clientv3.Config) { cfg.DialOptions = grpcMeter(vm) })
		mk3 := func() locker {
			s, err := concurrency.NewSession(vc, concurrency.WithTTL(60))
			tu.NoErr(t, err)
			t.Cleanup(func() { s.Close() })
			return concurrency.NewMutex(s, fmt.Sprintf("v3-%d", n))
		}
		ws = nil
		for range n {
			ws = append(ws, mk3())
		}
		// clientv3's waiters each create a watch once queued.
		before := vm.watches.Load()
		per, lat = handoffs(t, ctx, vm, func() int { return int(vm.watches.Load() - before) }, mk3(), ws)
		rows = append(rows, row{"clientv3 concurrency.Mutex", n, per, pct(lat, .5), pct(lat, .99)})
	}
	t.Logf("%-28s %8s %12s %10s %10s", "implementation", "waiters", "req/handoff", "p50", "p99")
	for _, r := range rows {
		t.Logf("%-28s %8d %12.2f %10v %10v", r.impl, r.waiters, r.per, r.p50, r.p99)
	}
	for i := 0; i+2 < len(rows); i++ {
		if rows[i+2].per > rows[i].per+0.5 {
			t.Errorf("%s: %.2f requests per hand-off with %d waiters, %.2f with %d: it grows", rows[i].impl,
				rows[i+2].per, rows[i+2].waiters, rows[i].per, rows[i].waiters)
		}
	}
}
