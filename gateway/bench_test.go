package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

var benchConcurrency = []int{1, 16, 64}

// runConcurrent runs op b.N times in all, from conc goroutines, then waits for
// settle (if any) before it stops the clock, and reports operations per second.
func runConcurrent(b *testing.B, conc int, op func(ctx context.Context, i int) error, settle ...func()) {
	ctx := context.Background()
	var n atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	for g := 0; g < conc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := n.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if err := op(ctx, int(i)); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, f := range settle {
		f()
	}
	el := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "ops/s")
}

func benchClient(b *testing.B) *gateway.Client {
	cl := etcdtest.Single(b)
	return tu.Client(b, cl.Endpoints())
}

var value256 = strings.Repeat("v", 256)

func BenchmarkPut(b *testing.B) {
	c := benchClient(b)
	for _, conc := range benchConcurrency {
		b.Run(fmt.Sprintf("c%d", conc), func(b *testing.B) {
			b.ReportAllocs()
			runConcurrent(b, conc, func(ctx context.Context, i int) error {
				_, err := c.Put(ctx, fmt.Sprintf("bench/put/%d", i%1000), value256)
				return err
			})
		})
	}
}

func BenchmarkGet(b *testing.B) {
	c := benchClient(b)
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		if _, err := c.Put(ctx, fmt.Sprintf("bench/get/%d", i), value256); err != nil {
			b.Fatal(err)
		}
	}
	for _, conc := range benchConcurrency {
		b.Run(fmt.Sprintf("c%d", conc), func(b *testing.B) {
			b.ReportAllocs()
			runConcurrent(b, conc, func(ctx context.Context, i int) error {
				_, err := c.Get(ctx, fmt.Sprintf("bench/get/%d", i%1000))
				return err
			})
		})
	}
}

// BenchmarkTxn: a compare-and-swap transaction (the shape locks use).
func BenchmarkTxn(b *testing.B) {
	c := benchClient(b)
	for _, conc := range benchConcurrency {
		b.Run(fmt.Sprintf("c%d", conc), func(b *testing.B) {
			b.ReportAllocs()
			runConcurrent(b, conc, func(ctx context.Context, i int) error {
				key := fmt.Sprintf("bench/txn/%d", i%1000)
				_, err := c.Txn().
					If(gateway.CmpCreateRevision(key, gateway.Equal, 0)).
					Then(gateway.OpPut(key, value256)).
					Else(gateway.OpGet(key)).
					Commit(ctx)
				return err
			})
		})
	}
}

// BenchmarkWatchDelivery: conc writers put b.N keys under a prefix; one watch
// delivers them. ops/s counts events delivered; the time runs until the last
// event has arrived.
func BenchmarkWatchDelivery(b *testing.B) {
	c := benchClient(b)
	for _, conc := range benchConcurrency {
		b.Run(fmt.Sprintf("c%d", conc), func(b *testing.B) {
			b.ReportAllocs()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			prefix := fmt.Sprintf("bench/watch/%d/%d/", conc, b.N)
			w, err := c.WatchPrefix(ctx, prefix)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Stop()
			got := make(chan int, 1)
			go func() {
				n := 0
				for resp := range w.Events() {
					n += len(resp.Events)
					if n >= b.N {
						break
					}
				}
				got <- n
			}()
			delivered := 0
			runConcurrent(b, conc, func(ctx context.Context, i int) error {
				_, err := c.Put(ctx, fmt.Sprintf("%s%d", prefix, i), value256)
				return err
			}, func() { delivered = <-got })
			if delivered < b.N {
				b.Fatalf("watch delivered %d of %d events: %v", delivered, b.N, w.Err())
			}
		})
	}
}

// BenchmarkFloor: one caller's Get against the floor, a bare net/http request
// of the same body whose reply is read and not decoded; with coalescing on
// and off.
func BenchmarkFloor(b *testing.B) {
	cl := etcdtest.Single(b)
	ctx := context.Background()
	c := tu.Client(b, cl.Endpoints())
	off := tu.Client(b, cl.Endpoints(), func(cfg *gateway.Config) { cfg.DisableCoalescing = true })
	if _, err := c.Put(ctx, "floor", value256); err != nil {
		b.Fatal(err)
	}
	b.Run("get", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := c.Get(ctx, "floor"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("get-uncoalesced", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := off.Get(ctx, "floor"); err != nil {
				b.Fatal(err)
			}
		}
	})
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	b.Run("bare", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, cl.Endpoints()[0]+"/v3/kv/range", strings.NewReader(`{"key":"Zmxvb3I="}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
