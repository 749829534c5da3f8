package integration_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/integration"
)

// nextValue waits for the watch's next put and returns its value.
func nextValue(t *testing.T, w *gateway.Watch, d time.Duration) (string, bool) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case r, ok := <-w.Events():
			if !ok {
				t.Fatalf("watch ended: %v", w.Err())
			}
			if len(r.Events) > 0 {
				return string(r.Events[0].Kv.Value), true
			}
		case <-timer.C:
			return "", false
		}
	}
}

func TestProxyFaults(t *testing.T) {
	ctx := ctxFor(t)
	etcd := integration.New(t, integration.WithBackend(integration.Local), integration.WithProxies())
	m := etcd.Member(0)
	p := m.Proxy()
	if p == nil || etcd.Endpoints()[0] != p.URL() || p.URL() == m.URL() {
		t.Fatalf("endpoints %v do not go through the proxy (member %s)", etcd.Endpoints(), m.URL())
	}
	c := etcd.Client()
	// A second client straight to the member, to write while the proxy is broken.
	direct, err := etcd.NewClient(m.URL())
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// Delay: every exchange takes at least the delay each way.
	p.Delay(150 * time.Millisecond)
	start := time.Now()
	if _, err := c.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("a get through a 150ms delay took %v", took)
	}
	p.Heal()

	// Blackhole: nothing passes and nothing is lost.
	p.Blackhole()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = c.Get(short, "k")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("get through a blackhole: %v, want a timeout", err)
	}
	if _, err := direct.Put(ctx, "k", "during-blackhole"); err != nil {
		t.Fatal(err)
	}
	if v, ok := nextValue(t, w, 300*time.Millisecond); ok {
		t.Fatalf("watch got %q through a blackhole", v)
	}
	p.Heal()
	if v, ok := nextValue(t, w, 10*time.Second); !ok || v != "during-blackhole" {
		t.Fatalf("after heal the watch got %q, %v", v, ok)
	}

	// Cut: the stream breaks and the watch resumes after the last revision it
	// delivered, so the put made while it was down still arrives.
	p.Cut()
	if _, err := direct.Put(ctx, "k", "after-cut"); err != nil {
		t.Fatal(err)
	}
	if v, ok := nextValue(t, w, 10*time.Second); !ok || v != "after-cut" {
		t.Fatalf("after a cut the watch got %q, %v", v, ok)
	}
	if p.Cuts() != 1 {
		t.Fatalf("Cuts() = %d", p.Cuts())
	}
	if _, err := c.Get(ctx, "k"); err != nil {
		t.Fatalf("get after a cut: %v", err)
	}
}

// TestProxyClose: Close ends every connection and goroutine, including ones held
// in a blackhole (goleak checks the goroutines when the package's tests end).
func TestProxyClose(t *testing.T) {
	ctx := ctxFor(t)
	p, err := integration.NewProxy(shared.Member(0).URL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := gateway.New(gateway.Config{Endpoints: []string{p.URL()}, RetryTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	p.Blackhole()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx, "k")
		errc <- err
	}()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err == nil {
		t.Fatal("a get through a closed proxy succeeded")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
