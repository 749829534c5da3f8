package main

import (
	"context"
	"encoding/base64"
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
	_, err := g.c.Txn().If(gateway.CmpVersion(k, gateway.Greater, -1)).Then(gateway.OpPut(k, v)).Commit(ctx)
	return err
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
	bare    sample // one caller only: a bare HTTP request of the same op, the gateway's floor
}

// kvSection runs every operation at every caller count, both clients
// interleaved (with one caller, a bare HTTP request too), cfg.rounds times, and
// keeps the median run of each (by ops/s; the bare request's by p50).
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
	max := 0
	for _, n := range cfg.callers {
		max = n
	}
	for i := 0; i < max; i++ { // the keys the gets read
		if err := ours.put(ctx, key("get", i), val); err != nil {
			return nil, err
		}
	}
	var rows []kvRow
	for _, op := range cfg.ops {
		for _, n := range cfg.callers {
			var a, b, bare []sample
			// One caller's rounds also time a bare HTTP request, the gateway's
			// floor, among the clients' runs rather than after them.
			runs := []func() error{
				func() error { return kvRound(ctx, ours, op, n, cfg.dur, val, pid, ep, &a) },
				func() error { return kvRound(ctx, theirs, op, n, cfg.dur, val, pid, ep, &b) },
			}
			if n == 1 {
				runs = append(runs, func() error {
					s, err := bareRun(ctx, ep, op, cfg.dur, val)
					if err != nil {
						return fmt.Errorf("bare HTTP %s: %w", op, err)
					}
					bare = append(bare, s)
					return nil
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
			if n == 1 {
				p50 := func(s sample) float64 { return float64(s.pct(.5)) }
				row.bare = median(bare, p50)
			}
			say("%s x%d: etcdgw %.0f ops/s (%.1f ops per request), clientv3 %.0f ops/s (%.2fx)", op, n, row.ours.rate(), row.ours.perRequest(), row.theirs.rate(), row.ours.rate()/row.theirs.rate())
			rows = append(rows, row)
		}
	}
	return rows, nil
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
	do := map[string]func(context.Context, string) error{
		"put": func(ctx context.Context, k string) error { return c.put(ctx, k, val) },
		"get": c.get,
		"txn": func(ctx context.Context, k string) error { return c.txn(ctx, k, val) },
	}[op]
	if do == nil {
		return sample{}, fmt.Errorf("unknown op %q", op)
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

// bareRun is one caller sending op's request, encoded once, to the gateway with
// net/http and reading the reply whole without decoding it: the least a
// gateway client can do, and so the floor of its latency.
func bareRun(ctx context.Context, endpoint, op string, d time.Duration, val string) (sample, error) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	k := key(op, 0)
	path, body := "/v3/kv/range", `{"key":"`+b64(k)+`"}`
	switch op {
	case "put":
		path, body = "/v3/kv/put", `{"key":"`+b64(k)+`","value":"`+b64(val)+`"}`
	case "txn":
		path = "/v3/kv/txn"
		body = `{"compare":[{"target":"VERSION","result":"GREATER","key":"` + b64(k) + `","version":"-1"}],` +
			`"success":[{"request_put":{"key":"` + b64(k) + `","value":"` + b64(val) + `"}}]}`
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer hc.CloseIdleConnections()
	var lat []time.Duration
	end := time.Now().Add(d)
	t0 := time.Now()
	for time.Now().Before(end) {
		s := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+path, strings.NewReader(body))
		if err != nil {
			return sample{}, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return sample{}, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return sample{}, fmt.Errorf("status %d, %v", resp.StatusCode, err)
		}
		lat = append(lat, time.Since(s))
	}
	return sample{ops: int64(len(lat)), elapsed: time.Since(t0), lat: lat}, nil
}
