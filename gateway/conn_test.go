package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

// TestConnectionReuse: 64 concurrent callers doing many requests each must not
// open a connection per request. Coalescing is off here: it is the transport's
// pool under test, with 64 requests on the wire.
func TestConnectionReuse(t *testing.T) {
	cl := etcdtest.Single(t)
	noBatch := func(cfg *gateway.Config) { cfg.DisableCoalescing = true }
	c := tu.Client(t, cl.Endpoints(), noBatch)
	var dials atomic.Int64
	gateway.CountDials(c, &dials)
	const callers, each = 64, 30
	hammer(t, c, callers, each)
	// About one connection per concurrent caller: Go's transport sometimes dials
	// while a connection is on its way back to the pool (more so on a loaded
	// machine), so allow up to twice that; the default pool opens hundreds.
	if d := dials.Load(); d > 2*callers {
		t.Fatalf("%d connections for %d requests from %d callers", d, 2*callers*each, callers)
	}
	t.Logf("%d connections for %d requests from %d callers", dials.Load(), 2*callers*each, callers)

	// The same load through Go's default pool of 2 idle connections per host
	// churns connections: the check above is one the default would fail.
	var naive atomic.Int64
	d := &net.Dialer{}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		naive.Add(1)
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	hammer(t, tu.Client(t, cl.Endpoints(), noBatch, func(cfg *gateway.Config) { cfg.HTTPClient = &http.Client{Transport: tr} }), callers, each)
	if naive.Load() <= 4*callers {
		t.Fatalf("default transport opened only %d connections: the check has no power", naive.Load())
	}
	t.Logf("Go's default pool: %d connections", naive.Load())

	// Coalesced, the same callers keep two requests on the wire.
	c = tu.Client(t, cl.Endpoints())
	var batched atomic.Int64
	gateway.CountDials(c, &batched)
	hammer(t, c, callers, each)
	if n := batched.Load(); n > 4 {
		t.Fatalf("coalesced: %d connections for %d callers", n, callers)
	}
}

func hammer(t *testing.T, c *gateway.Client, callers, each int) {
	ctx := tu.Ctx(t)
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := 0; g < callers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				key := fmt.Sprintf("conn/%d/%d", g, i)
				if _, err := c.Put(ctx, key, "v"); err != nil {
					errs <- err
					return
				}
				if _, err := c.Get(ctx, key); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestRequestTimeout: a paused member accepts connections and answers nothing;
// Config.RequestTimeout (the seed's timeout) bounds each unary call, and the
// caller's ctx bounds calls without one.
func TestRequestTimeout(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) { cfg.RequestTimeout = 200 * time.Millisecond })
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "k", "v")) // detect the API path first
	m := cl.Members[0]
	if err := m.Pause(); err != nil {
		t.Fatal(err)
	}
	defer m.Resume()
	start := time.Now()
	_, err := c.Get(ctx, "k")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("get from a paused member: %v", err)
	}
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Op != "kv/range" {
		t.Fatalf("not a *gateway.Error: %#v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("timed out after %v", el)
	}
	_, err = c.KeepAliveOnce(ctx, 1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("keepalive to a paused member: %v", err)
	}

	plain := tu.Client(t, cl.Endpoints())
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = plain.Put(short, "k", "v")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("put with a short ctx: %v", err)
	}
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	tu.Must[*gateway.GetResponse](t)(c.Get(ctx, "k"))
}
