package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

// wire is a transport that records every unary request's path and body, can
// hold the next KV requests until released (to keep a client's two slots busy
// while a batch gathers), and can drop the reply of a request it has sent.
type wire struct {
	next http.RoundTripper

	mu      sync.Mutex
	reqs    []sent
	refused int           // replies with a status other than 200
	hold    int           // how many of the next requests to hold
	held    chan struct{} // one token per held request
	release chan struct{} // closed to let held requests go
	cut     func(path, body string) bool
}

type sent struct{ path, body string }

func newWire() *wire {
	return &wire{next: http.DefaultTransport.(*http.Transport).Clone(),
		held: make(chan struct{}, 16), release: make(chan struct{})}
}

func (w *wire) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	path := r.URL.Path[strings.LastIndex(r.URL.Path, "/v3/")+len("/v3/"):]
	w.mu.Lock()
	w.reqs = append(w.reqs, sent{path, string(body)})
	hold, release := w.hold > 0 && strings.HasPrefix(path, "kv/"), w.release
	if hold {
		w.hold--
	}
	cut := w.cut != nil && w.cut(path, string(body))
	w.mu.Unlock()
	if hold {
		w.held <- struct{}{}
		<-release
	}
	resp, err := w.next.RoundTrip(r)
	if err == nil && resp.StatusCode != http.StatusOK {
		w.mu.Lock()
		w.refused++
		w.mu.Unlock()
	}
	if err == nil && cut {
		resp.Body.Close()
		return nil, io.ErrUnexpectedEOF
	}
	return resp, err
}

// txns returns the bodies of the kv/txn requests sent so far.
func (w *wire) txns() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, s := range w.reqs {
		if s.path == "kv/txn" {
			out = append(out, s.body)
		}
	}
	return out
}

// kvRequests returns how many KV requests were sent so far, and how many
// replies of any request had a status other than 200.
func (w *wire) kvRequests() (n, refused int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.reqs {
		if strings.HasPrefix(s.path, "kv/") {
			n++
		}
	}
	return n, w.refused
}

// fill keeps c's two slots busy with reads that w holds, and returns what lets
// them go (and waits for them).
func fill(t *testing.T, c *gateway.Client, w *wire, opts ...gateway.Option) (release func()) {
	t.Helper()
	ctx := tu.Ctx(t)
	// A slot the calls before still hold (its goroutine has delivered its
	// batch and not yet found nothing pending) would let the two reads go
	// out in one request, and only one would be held.
	idle(t, c, opts...)
	w.mu.Lock()
	w.hold = 2
	w.release = make(chan struct{})
	rel := w.release
	w.mu.Unlock()
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = c.Get(ctx, "slot-filler", opts...)
		}()
	}
	for i := 0; i < 2; i++ {
		<-w.held
	}
	return func() { close(rel); wg.Wait() }
}

// idle waits until the coalescer of c that a Get with opts goes through has
// no request in flight.
func idle(t *testing.T, c *gateway.Client, opts ...gateway.Option) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tu.Ctx(t), 10*time.Second)
	defer cancel()
	tu.WaitFor(t, ctx, "the client's requests in flight to end", func() bool { return gateway.InFlight(c, opts...) == 0 })
}

// pending waits until n calls wait for a batch in c.
func pending(t *testing.T, c *gateway.Client, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tu.Ctx(t), 10*time.Second)
	defer cancel()
	for gateway.PendingOps(c) < n {
		select {
		case <-ctx.Done():
			t.Fatalf("%d calls pending, want %d", gateway.PendingOps(c), n)
		case <-time.After(time.Millisecond):
		}
	}
}

// batched runs calls concurrently on c so that they go out together: it fills
// the client's two slots, waits until every call is pending, then lets
// everything go. It returns each call's error, in order.
func batched(t *testing.T, c *gateway.Client, w *wire, calls ...func(context.Context) error) []error {
	t.Helper()
	return together(t, c, w, false, calls...)
}

// joined is batched with the calls joining the batch in the order given: each
// waits in the batch before the next is made.
func joined(t *testing.T, c *gateway.Client, w *wire, calls ...func(context.Context) error) []error {
	t.Helper()
	return together(t, c, w, true, calls...)
}

// together fills c's request slots, makes the calls (with inOrder, each one
// waiting in the batch before the next is made), and releases them as one batch.
func together(t *testing.T, c *gateway.Client, w *wire, inOrder bool, calls ...func(context.Context) error) []error {
	t.Helper()
	ctx := tu.Ctx(t)
	release := fill(t, c, w)
	var wg sync.WaitGroup
	errs := make([]error, len(calls))
	for i, call := range calls {
		wg.Go(func() { errs[i] = call(ctx) })
		if inOrder {
			pending(t, c, i+1)
		}
	}
	pending(t, c, len(calls))
	release()
	wg.Wait()
	return errs
}

func wireClient(t *testing.T, eps []string, mod ...func(*gateway.Config)) (*gateway.Client, *wire) {
	w := newWire()
	t.Cleanup(w.next.(*http.Transport).CloseIdleConnections)
	mod = append(mod, func(cfg *gateway.Config) { cfg.HTTPClient = &http.Client{Transport: w} })
	return tu.Client(t, eps, mod...), w
}

func put(c *gateway.Client, key, val string, opts ...gateway.Option) func(context.Context) error {
	return func(ctx context.Context) error { _, err := c.Put(ctx, key, val, opts...); return err }
}

// TestCoalesceBatches: calls that wait together go out as one txn, each gets
// its own typed result with the txn's header, and a lone call is sent alone.
func TestCoalesceBatches(t *testing.T) {
	t.Run("without a request timeout", func(t *testing.T) { coalesceBatches(t) })
	// A batch's context then has a deadline of its own.
	t.Run("with a request timeout", func(t *testing.T) {
		coalesceBatches(t, func(cfg *gateway.Config) { cfg.RequestTimeout = 5 * time.Second })
	})
}

func coalesceBatches(t *testing.T, mod ...func(*gateway.Config)) {
	c, w := wireClient(t, endpoints, mod...)
	ctx := tu.Ctx(t)
	p := "coalesce-batches/" + t.Name() + "/"
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, p+"old", "x"))
	if n := len(w.txns()); n != 0 {
		t.Fatalf("a lone put went out as %d txns", n)
	}

	var got *gateway.GetResponse
	var prev *gateway.PutResponse
	var del *gateway.DeleteResponse
	errs := batched(t, c, w,
		put(c, p+"a", "1"),
		put(c, p+"b", "2"),
		func(ctx context.Context) (err error) {
			prev, err = c.Put(ctx, p+"old", "y", gateway.WithPrevKV())
			return err
		},
		func(ctx context.Context) (err error) { got, err = c.Get(ctx, p+"zz", gateway.WithPrefix()); return err },
		func(ctx context.Context) (err error) { del, err = c.Delete(ctx, p+"nothing"); return err },
	)
	for _, err := range errs {
		tu.NoErr(t, err)
	}
	if n := len(w.txns()); n != 1 {
		t.Fatalf("5 calls went out as %d txns", n)
	}
	tu.Eq(t, "prev value", string(prev.PrevKv.Value), "x")
	tu.Eq(t, "prev key (namespaced views strip it)", string(prev.PrevKv.Key), p+"old")
	tu.Eq(t, "get count", got.Count, int64(0))
	tu.Eq(t, "deleted", del.Deleted, int64(0))
	// The batch's writes share one revision; its read went first and reports
	// the one before.
	if prev.Header.Revision == 0 || got.Header.Revision != prev.Header.Revision-1 || got.Header.MemberID == 0 {
		t.Fatalf("headers: put %+v get %+v", prev.Header, got.Header)
	}
	all := tu.Must[*gateway.GetResponse](t)(c.Get(ctx, p, gateway.WithPrefix()))
	tu.Eq(t, "keys", all.Count, int64(3))
}

// TestCoalesceDuplicateKeys: writes to one key never share a txn (etcd refuses
// it), and every put makes its own event.
func TestCoalesceDuplicateKeys(t *testing.T) {
	c, w := wireClient(t, endpoints)
	ctx := tu.Ctx(t)
	p := "coalesce-dup/"
	start := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, p+"start", "")).Header.Revision
	var calls []func(context.Context) error
	for i := 0; i < 6; i++ {
		calls = append(calls, put(c, p+"k", fmt.Sprint(i)), put(c, p+"j", fmt.Sprint(i)))
	}
	calls = append(calls, func(ctx context.Context) error { _, err := c.Delete(ctx, p, gateway.WithPrefix()); return err })
	for _, err := range batched(t, c, w, calls...) {
		tu.NoErr(t, err)
	}
	for _, body := range w.txns() {
		if n := strings.Count(body, "request_put"); n > 2 {
			t.Fatalf("a txn holds %d puts of 2 keys: %s", n, body)
		}
	}
	wt := tu.Must[*gateway.Watch](t)(c.WatchPrefix(ctx, p, gateway.WithRev(start+1)))
	defer wt.Stop()
	puts := 0
	for puts < 12 {
		select {
		case r, ok := <-wt.Events():
			if !ok {
				t.Fatal("watch ended")
			}
			for _, e := range r.Events {
				if e.Type == gateway.EventPut {
					puts++
				}
			}
		case <-ctx.Done():
			t.Fatalf("saw %d put events of 12", puts)
		}
	}
}

// TestCoalesceIsolation: a txn the server refuses as a whole because of one
// operation fails that operation alone, for its own reason; the others succeed.
func TestCoalesceIsolation(t *testing.T) {
	cl := etcdtest.Single(t)
	// The client's own size check is off, so that the server's refusal is
	// what the oversize put meets.
	c, w := wireClient(t, cl.Endpoints(), func(cfg *gateway.Config) { cfg.MaxRequestBytes = -1 })
	ctx := tu.Ctx(t)
	head := tu.Must[*gateway.GetResponse](t)(c.Get(ctx, "x")).Header.Revision

	cases := []struct {
		name string
		bad  func(context.Context) error
		want error
	}{
		{"lease not found", put(c, "iso/lease", "v", gateway.WithLease(0x7eadbeef)), gateway.ErrLeaseNotFound},
		{"value too large", put(c, "iso/big", strings.Repeat("v", 1600<<10)), gateway.ErrRequestTooLarge},
		{"value past the gRPC limit", put(c, "iso/huge", strings.Repeat("v", 2<<20)), gateway.ErrRequestTooLarge},
		{"future revision", func(ctx context.Context) error {
			_, err := c.Get(ctx, "iso/a", gateway.WithRev(head+1_000_000))
			return err
		}, gateway.ErrFutureRevision},
		{"ignore value of a missing key", put(c, "iso/missing", "", gateway.WithIgnoreValue()), gateway.ErrKeyNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(w.txns())
			good := []func(context.Context) error{put(c, "iso/"+tc.name+"/1", "a"), put(c, "iso/"+tc.name+"/2", "b"), put(c, "iso/"+tc.name+"/3", "c")}
			errs := batched(t, c, w, append(good[:2:2], tc.bad, good[2])...)
			for i, err := range errs {
				if i == 2 {
					tu.Is(t, err, tc.want)
					continue
				}
				tu.NoErr(t, err)
			}
			if len(w.txns()) == before {
				t.Fatal("the calls were not batched")
			}
			n := tu.Must[*gateway.GetResponse](t)(c.Get(ctx, "iso/"+tc.name+"/", gateway.WithPrefix(), gateway.WithCountOnly())).Count
			tu.Eq(t, "good puts applied", n, int64(3))
		})
	}
	t.Run("permission denied", func(t *testing.T) {
		cl := etcdtest.Single(t)
		enableAuth(t, cl)
		alice, w := wireClient(t, cl.Endpoints(), func(cfg *gateway.Config) { cfg.Username, cfg.Password = "alice", alicePassword })
		tu.Must[*gateway.GetResponse](t)(alice.Get(tu.Ctx(t), "alice/0")) // authenticate first
		errs := batched(t, alice, w, put(alice, "alice/1", "a"), put(alice, "bob/1", "b"), put(alice, "alice/2", "c"))
		tu.NoErr(t, errs[0])
		tu.Is(t, errs[1], gateway.ErrPermissionDenied)
		tu.NoErr(t, errs[2])
		if len(w.txns()) == 0 {
			t.Fatal("the calls were not batched")
		}
	})
}

// TestCoalesceOutcomeUnknown: when a batch's reply is lost, its writes end with
// ErrOutcomeUnknown and its reads are sent again and answered.
func TestCoalesceOutcomeUnknown(t *testing.T) {
	c, w := wireClient(t, endpoints)
	ctx := tu.Ctx(t)
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "unknown/r", "here"))
	w.mu.Lock()
	cutOnce := true
	w.cut = func(path, _ string) bool {
		if path == "kv/txn" && cutOnce {
			cutOnce = false
			return true
		}
		return false
	}
	w.mu.Unlock()
	var got *gateway.GetResponse
	errs := batched(t, c, w,
		put(c, "unknown/w", "1"),
		func(ctx context.Context) (err error) { got, err = c.Get(ctx, "unknown/r"); return err },
	)
	tu.Is(t, errs[0], gateway.ErrOutcomeUnknown)
	tu.NoErr(t, errs[1])
	tu.Eq(t, "read", string(got.Kvs[0].Value), "here")
	// The write was applied: the server got the txn, the client lost its reply.
	tu.Eq(t, "write applied", tu.Must[*gateway.GetResponse](t)(c.Get(ctx, "unknown/w")).Count, int64(1))
}

// TestCoalesceSerializable: serializable reads go out apart from linearizable
// calls.
func TestCoalesceSerializable(t *testing.T) {
	c, w := wireClient(t, endpoints)
	get := func(opts ...gateway.Option) func(context.Context) error {
		return func(ctx context.Context) error { _, err := c.Get(ctx, "ser/a", opts...); return err }
	}
	ctx := tu.Ctx(t)
	releaseSerial := fill(t, c, w, gateway.WithSerializable()) // the serializable reads' own two slots
	release := fill(t, c, w)
	calls := []func(context.Context) error{get(gateway.WithSerializable()), get(), get(gateway.WithSerializable()), put(c, "ser/b", "1")}
	var errs []chan error
	for _, call := range calls {
		errs = append(errs, tu.Async(ctx, call))
	}
	pending(t, c, len(calls))
	releaseSerial()
	release()
	for _, err := range errs {
		tu.NoErr(t, <-err)
	}
	for _, body := range w.txns() {
		if strings.Contains(body, `"serializable":true`) && strings.Contains(body, "request_put") {
			t.Fatalf("a serializable read shares a txn with a write: %s", body)
		}
	}
	if len(w.txns()) != 2 {
		t.Fatalf("%d txns, want one of each kind", len(w.txns()))
	}
}

// TestCoalesceGiveUp: a caller that gives up while its call is pending gets
// its context's error, plainly (the call was never sent), and nothing is
// written; Close fails pending calls with ErrClosed.
func TestCoalesceGiveUp(t *testing.T) {
	c, w := wireClient(t, endpoints)
	ctx := tu.Ctx(t)
	release := fill(t, c, w)
	short, cancel := context.WithCancel(ctx)
	done := tu.Async(short, func(ctx context.Context) error { _, err := c.Put(ctx, "giveup/k", "v"); return err })
	pending(t, c, 1)
	cancel()
	err := <-done
	tu.Is(t, err, context.Canceled)
	if errors.Is(err, gateway.ErrOutcomeUnknown) {
		t.Fatalf("a call never sent reports an unknown outcome: %v", err)
	}
	release()
	tu.Eq(t, "written", tu.Must[*gateway.GetResponse](t)(c.Get(ctx, "giveup/k")).Count, int64(0))

	release = fill(t, c, w)
	done = tu.Async(ctx, func(ctx context.Context) error { _, err := c.Put(ctx, "giveup/closed", "v"); return err })
	pending(t, c, 1)
	tu.NoErr(t, c.Close())
	tu.Is(t, <-done, gateway.ErrClosed)
	release()
}

// TestCoalesceReadRevision: a read that shares a batch with writes reports the
// revision it read at, whichever joined first. A write its result does not show
// comes after that revision, so that watching from the read's revision + 1 (the
// list-then-watch pattern) sees it; a write it shows comes at or before it.
func TestCoalesceReadRevision(t *testing.T) {
	c, w := wireClient(t, endpoints)
	ctx := tu.Ctx(t)
	// The order the calls join in: r reads k, w writes k, o writes another key.
	for _, order := range []string{"rw", "wr", "orw", "rwo"} {
		k := "coalesce-read-rev/" + order
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, k, "old"))
		before := len(w.txns())

		var got *gateway.GetResponse
		var wrote *gateway.PutResponse
		calls := map[rune]func(context.Context) error{
			'r': func(ctx context.Context) (err error) { got, err = c.Get(ctx, k); return err },
			'w': func(ctx context.Context) (err error) { wrote, err = c.Put(ctx, k, "new"); return err },
			'o': put(c, k+"/other", "x"),
		}
		var inOrder []func(context.Context) error
		for _, name := range order {
			inOrder = append(inOrder, calls[name])
		}
		for _, err := range joined(t, c, w, inOrder...) {
			tu.NoErr(t, err)
		}
		if n := len(w.txns()) - before; n != 1 {
			t.Fatalf("%s went out as %d txns", order, n)
		}

		shows := string(got.Kvs[0].Value) == "new"
		switch {
		case shows && got.Header.Revision < wrote.Header.Revision:
			t.Fatalf("%s: the read shows the write of revision %d but reports revision %d",
				order, wrote.Header.Revision, got.Header.Revision)
		case !shows && got.Header.Revision >= wrote.Header.Revision:
			t.Fatalf("%s: the read misses the write of revision %d but reports revision %d: a watch from %d would miss it",
				order, wrote.Header.Revision, got.Header.Revision, got.Header.Revision+1)
		}
		if shows {
			continue
		}
		wt := tu.Must[*gateway.Watch](t)(c.Watch(ctx, k, gateway.WithRev(got.Header.Revision+1)))
		select {
		case r := <-wt.Events():
			tu.Eq(t, "watched value", string(r.Events[0].Kv.Value), "new")
		case <-ctx.Done():
			t.Fatal("the watch from the read's revision saw no write")
		}
		wt.Stop()
	}
}
