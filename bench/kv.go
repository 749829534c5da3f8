package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
)

// kvClient is the little the KV runs need of a client.
type kvClient interface {
	name() string
	put(ctx context.Context, key, val string) error
	get(ctx context.Context, key string) error
	txn(ctx context.Context, key, val string) error
	close()
}

type gw struct{ c *gateway.Client }

func (gw) name() string { return "etcdgw" }
func (g gw) put(ctx context.Context, k, v string) error {
	_, err := g.c.Put(ctx, k, v)
	return err
}
func (g gw) get(ctx context.Context, k string) error {
	r, err := g.c.Get(ctx, k)
	if err == nil && len(r.Kvs) != 1 {
		err = fmt.Errorf("get %q: %d keys", k, len(r.Kvs))
	}
	return err
}
func (g gw) txn(ctx context.Context, k, v string) error {
	_, err := g.benchTxn(k, v).Commit(ctx)
	return err
}

// coalescedTxn is txn marked Txn.Coalesce, which lets it share a request
// with others.
func (g gw) coalescedTxn(ctx context.Context, k, v string) error {
	_, err := g.benchTxn(k, v).Coalesce().Commit(ctx)
	return err
}

// benchTxn is the bench's transaction: a put behind a comparison that holds.
func (g gw) benchTxn(k, v string) *gateway.Txn {
	return g.c.Txn().If(gateway.CmpVersion(k, gateway.Greater, -1)).Then(gateway.OpPut(k, v))
}
func (g gw) close() { g.c.Close() }

type v3 struct{ c *clientv3.Client }

func (v3) name() string { return "clientv3" }
func (c v3) put(ctx context.Context, k, v string) error {
	_, err := c.c.Put(ctx, k, v)
	return err
}
func (c v3) get(ctx context.Context, k string) error {
	r, err := c.c.Get(ctx, k)
	if err == nil && len(r.Kvs) != 1 {
		err = fmt.Errorf("get %q: %d keys", k, len(r.Kvs))
	}
	return err
}
func (c v3) txn(ctx context.Context, k, v string) error {
	_, err := c.c.Txn(ctx).If(clientv3.Compare(clientv3.Version(k), ">", -1)).Then(clientv3.OpPut(k, v)).Commit()
	return err
}
func (c v3) close() { c.c.Close() }

func newGW(eps []string, mod ...func(*gateway.Config)) (kvClient, error) {
	cfg := gateway.Config{Endpoints: eps}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := gateway.New(cfg)
	return gw{c}, err
}

func newV3(eps []string) (kvClient, error) {
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	return v3{c}, err
}

// kvRow is one line of the KV table: an operation at a caller count, both
// clients' medians.
type kvRow struct {
	op      string
	callers int
	ours    sample
	theirs  sample
	turns   turns // one caller only
	// lo and hi are the lowest and highest of the rounds' ratios, each round's
	// etcdgw run over the clientv3 run next to it: how far one round can stray.
	lo, hi float64
}

// turns is one caller's latencies with etcdgw, clientv3 and a bare HTTP request
// taking turns request by request (turnsRun), every round's pooled: each round
// adds as many requests of each, so drift between rounds cancels too.
type turns struct{ ours, theirs, bare sample }

// add pools one round's samples, in turnsRun's order.
func (t *turns) add(ss [3]sample) {
	for i, p := range []*sample{&t.ours, &t.theirs, &t.bare} {
		p.ops += ss[i].ops
		p.lat = append(p.lat, ss[i].lat...)
	}
}

// kvSection runs every operation at every caller count, both clients
// interleaved, cfg.rounds times, and keeps the median run of each by ops/s.
// With one caller, each round also times the two clients and a bare HTTP
// request taking turns (turnsRun), and pools those latencies.
func kvSection(ctx context.Context, cfg config, cl *etcdtest.Cluster) ([]kvRow, error) {
	pid, ep := cl.Members[0].PID(), cl.Endpoints()[0]
	ours, err := newGW(cl.Endpoints())
	if err != nil {
		return nil, err
	}
	defer ours.close()
	theirs, err := newV3(cl.Endpoints())
	if err != nil {
		return nil, err
	}
	defer theirs.close()
	val := strings.Repeat("v", 256)
	most := 0
	for _, n := range cfg.callers {
		most = max(most, n)
	}
	for i := 0; i < most; i++ { // the keys the gets read
		if err := ours.put(ctx, key("get", i), val); err != nil {
			return nil, err
		}
	}
	floor := newBare(ep, val)
	defer floor.close()
	var rows []kvRow
	for _, op := range cfg.ops {
		for _, n := range cfg.callers {
			var a, b []sample
			var t turns
			runs := []func() error{
				func() error { return kvRound(ctx, ours, op, n, cfg.dur, val, pid, ep, &a) },
				func() error { return kvRound(ctx, theirs, op, n, cfg.dur, val, pid, ep, &b) },
			}
			if n == 1 {
				// One caller's rounds also time the three taking turns, among
				// the clients' runs rather than after them.
				runs = append(runs, func() error {
					ss, err := turnsRun(ctx, [3]kvClient{ours, theirs, floor}, op, cfg.dur, val)
					if err == nil {
						t.add(ss)
					}
					return err
				})
			}
			for r := 0; r < cfg.rounds; r++ {
				// Rotate who goes first, so that none always meets a freshly
				// compacted or warmed server.
				for i := range runs {
					if err := runs[(i+r)%len(runs)](); err != nil {
						return nil, err
					}
				}
			}
			row := kvRow{op: op, callers: n, ours: median(a, sample.rate), theirs: median(b, sample.rate)}
			for i := range a {
				r := a[i].rate() / b[i].rate()
				if i == 0 || r < row.lo {
					row.lo = r
				}
				row.hi = max(row.hi, r)
			}
			if n == 1 {
				row.turns = t
			}
			say("%s x%d: etcdgw %.0f ops/s (%.1f ops per request), clientv3 %.0f ops/s (%.2fx)", op, n, row.ours.rate(), row.ours.perRequest(), row.theirs.rate(), row.ours.rate()/row.theirs.rate())
			rows = append(rows, row)
			// Free the history the row wrote, so that the member's database
			// stays under its quota (2 GB by default) however many rows run.
			if err := compact(ctx, ours.(gw).c); err != nil {
				return nil, err
			}
		}
	}
	return rows, nil
}

// compact compacts the member's history up to now, and waits until the
// compaction is applied.
func compact(ctx context.Context, c *gateway.Client) error {
	r, err := c.Get(ctx, "bench/compact")
	if err != nil {
		return err
	}
	_, err = c.Compact(ctx, r.Header.Revision, gateway.WithPhysical())
	if err != nil && !errors.Is(err, gateway.ErrCompacted) { // a row that wrote nothing
		return fmt.Errorf("compacting: %w", err)
	}
	return nil
}

// kvRound is one run of c, added to into.
func kvRound(ctx context.Context, c kvClient, op string, n int, d time.Duration, val string, pid int, ep string, into *[]sample) error {
	s, err := kvRun(ctx, c, op, n, d, val, pid, ep)
	if err != nil {
		return fmt.Errorf("%s %s x%d: %w", c.name(), op, n, err)
	}
	*into = append(*into, s)
	return nil
}

func key(op string, i int) string { return fmt.Sprintf("bench/%s/%04d", op, i) }

// kvRun has n callers do op on their own key for d and returns the figures.
func kvRun(ctx context.Context, c kvClient, op string, n int, d time.Duration, val string, pid int, ep string) (sample, error) {
	do, err := opFunc(c, op, val)
	if err != nil {
		return sample{}, err
	}
	var lat latencies
	var wg sync.WaitGroup
	errs := make(chan error, n)
	reqs, err := kvRequests(ctx, ep)
	if err != nil {
		return sample{}, err
	}
	end := time.Now().Add(d) // after the metrics read: the run lasts d
	m := startMeter(pid)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := key(op, i)
			mine := make([]time.Duration, 0, 4096)
			var ops int64
			for {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				if err := do(ctx, k); err != nil {
					errs <- err
					break
				}
				mine = append(mine, time.Since(t0))
				ops++
			}
			lat.add(mine, ops)
		}()
	}
	wg.Wait()
	s := m.stop(lat.ops, lat.all)
	after, err := kvRequests(ctx, ep)
	if err != nil {
		return s, err
	}
	s.requests = after - reqs

	select {
	case err := <-errs:
		return s, err
	default:
	}
	return s, nil
}

// opFunc returns c's call for op, writing val.
func opFunc(c kvClient, op, val string) (func(context.Context, string) error, error) {
	switch op {
	case "put":
		return func(ctx context.Context, k string) error { return c.put(ctx, k, val) }, nil
	case "get":
		return c.get, nil
	case "txn":
		return func(ctx context.Context, k string) error { return c.txn(ctx, k, val) }, nil
	case "txn-coalesce": // etcdgw's txn marked Txn.Coalesce; the others' plain txn
		txn := c.txn
		if g, ok := c.(gw); ok {
			txn = g.coalescedTxn
		}
		return func(ctx context.Context, k string) error { return txn(ctx, k, val) }, nil
	}
	return nil, fmt.Errorf("unknown op %q", op)
}

// turnOrders are the orders of turnsRun's turns, one after another: every
// client goes first, second and third equally often, and follows each of the
// other two equally often, across turns as well as within them (a request can
// be slowed by what the one before it left running).
var turnOrders = [6][3]int{{0, 1, 2}, {1, 2, 0}, {2, 0, 1}, {0, 2, 1}, {2, 1, 0}, {1, 0, 2}}

// turnsRun has one caller do op with each of cs in turn, one request each, for
// d. Every client's requests meet the member in the same states, so their
// latencies compare without the drift between one run and the next. It returns
// each client's latencies and count of operations, nothing else: turns give no
// rate.
func turnsRun(ctx context.Context, cs [3]kvClient, op string, d time.Duration, val string) ([3]sample, error) {
	var do [3]func(context.Context, string) error
	var ss [3]sample
	for i, c := range cs {
		f, err := opFunc(c, op, val)
		if err != nil {
			return ss, err
		}
		do[i] = f
	}
	k := key(op, 0)
	start := time.Now()
	for turn := 0; time.Since(start) < d; turn++ {
		for _, i := range turnOrders[turn%len(turnOrders)] {
			t0 := time.Now()
			if err := do[i](ctx, k); err != nil {
				return ss, fmt.Errorf("%s %s in turns: %w", cs[i].name(), op, err)
			}
			ss[i].lat = append(ss[i].lat, time.Since(t0))
			ss[i].ops++
		}
	}
	return ss, nil
}

// bare is the least a gateway client can do, and so the floor of a lone
// caller's latency: each request's body encoded once, sent with net/http, the
// reply read whole and not decoded. For one caller at a time.
type bare struct {
	hc       *http.Client
	endpoint string
	val      string
	bodies   map[[2]string]string // by path and key
}

func newBare(endpoint, val string) *bare {
	return &bare{hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}},
		endpoint: endpoint, val: val, bodies: map[[2]string]string{}}
}

func (*bare) name() string { return "bare HTTP" }
func (b *bare) close()     { b.hc.CloseIdleConnections() }

func (b *bare) get(ctx context.Context, k string) error {
	return b.post(ctx, "/v3/kv/range", k, func(k64, _ string) string { return `{"key":"` + k64 + `"}` })
}

func (b *bare) put(ctx context.Context, k, v string) error {
	if v != b.val {
		return fmt.Errorf("bare: only %d-byte values", len(b.val))
	}
	return b.post(ctx, "/v3/kv/put", k, func(k64, v64 string) string { return `{"key":"` + k64 + `","value":"` + v64 + `"}` })
}

func (b *bare) txn(ctx context.Context, k, v string) error {
	if v != b.val {
		return fmt.Errorf("bare: only %d-byte values", len(b.val))
	}
	return b.post(ctx, "/v3/kv/txn", k, func(k64, v64 string) string {
		return `{"compare":[{"target":"VERSION","result":"GREATER","key":"` + k64 + `","version":"-1"}],` +
			`"success":[{"request_put":{"key":"` + k64 + `","value":"` + v64 + `"}}]}`
	})
}

// post sends the body that mk builds for k (once) to path and reads the reply.
func (b *bare) post(ctx context.Context, path, k string, mk func(k64, v64 string) string) error {
	body, ok := b.bodies[[2]string{path, k}]
	if !ok {
		b64 := base64.StdEncoding.EncodeToString
		body = mk(b64([]byte(k)), b64([]byte(b.val)))
		b.bodies[[2]string{path, k}] = body
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.endpoint+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d", path, resp.StatusCode)
	}
	return nil
}
