package gateway_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
)

// metered is an http.RoundTripper that counts requests and their time per API
// call: what a metrics exporter needs, without a metrics dependency in the
// library. Export the counts to Prometheus, OpenTelemetry or expvar from here.
type metered struct {
	next http.RoundTripper

	mu      sync.Mutex
	calls   map[string]int
	elapsed map[string]time.Duration
}

func (m *metered) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := m.next.RoundTrip(r)
	// The call is the path after the API prefix ("kv/put", "lease/grant"),
	// or "version" for the one GET /version that detects the prefix.
	call := strings.TrimPrefix(r.URL.Path, "/")
	if i := strings.Index(call, "v3/"); i >= 0 {
		call = call[i+len("v3/"):]
	}
	m.mu.Lock()
	m.calls[call]++
	m.elapsed[call] += time.Since(start)
	m.mu.Unlock()
	return resp, err
}

// A Client's HTTP traffic can be observed by wrapping its transport: here,
// request counts and latency per call.
func Example_metrics() {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	defer transport.CloseIdleConnections() // a caller's HTTPClient is the caller's to close
	m := &metered{next: transport, calls: map[string]int{}, elapsed: map[string]time.Duration{}}
	c, err := gateway.New(gateway.Config{
		Endpoints:  endpoints,
		HTTPClient: &http.Client{Transport: m}, // no Timeout: it would cut watches
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx := context.Background()
	for i := range 3 {
		if _, err := c.Put(ctx, "example/metrics", fmt.Sprint(i)); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := c.Get(ctx, "example/metrics"); err != nil {
		log.Fatal(err)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	var calls []string
	for call := range m.calls {
		calls = append(calls, call)
	}
	sort.Strings(calls)
	for _, call := range calls {
		fmt.Printf("%s: %d requests, timed: %v\n", call, m.calls[call], m.elapsed[call] > 0)
	}
	// Output:
	// kv/put: 3 requests, timed: true
	// kv/range: 1 requests, timed: true
	// version: 1 requests, timed: true
}
