package gateway_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

// next receives the next response from w, failing the test if the watch ends or
// ctx runs out first.
func next(t testing.TB, ctx context.Context, w *gateway.Watch) gateway.WatchResponse {
	t.Helper()
	select {
	case r, ok := <-w.Events():
		if !ok {
			t.Fatalf("watch ended: %v", w.Err())
		}
		return r
	case <-ctx.Done():
		t.Fatalf("no watch response: %v", ctx.Err())
	}
	panic("unreachable")
}

// collect receives events from w until it has n of them.
func collect(t testing.TB, ctx context.Context, w *gateway.Watch, n int) []gateway.Event {
	t.Helper()
	var evs []gateway.Event
	for len(evs) < n {
		evs = append(evs, next(t, ctx, w).Events...)
	}
	return evs
}

// ended waits for the watch to end and returns its error.
func ended(t testing.TB, ctx context.Context, w *gateway.Watch) error {
	t.Helper()
	for {
		select {
		case _, ok := <-w.Events():
			if !ok {
				return w.Err()
			}
		case <-ctx.Done():
			t.Fatalf("watch did not end: %v", ctx.Err())
		}
	}
}

func evString(e gateway.Event) string {
	return fmt.Sprintf("%d:%s:%s=%s", e.Kv.ModRevision, e.Type, e.Kv.Key, e.Kv.Value)
}

func TestWatch(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Args: []string{etcdtest.ProgressNotifyFlag(t, 200*time.Millisecond)}})
	c := tu.Client(t, cl.Endpoints())
	ctx := tu.Ctx(t)

	t.Run("KeyPrefixDelete", func(t *testing.T) {
		w := tu.Must[*gateway.Watch](t)(c.WatchPrefix(ctx, "wa/", gateway.WithPrevKV()))
		defer w.Stop()
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "wa/1", "a"))
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "wb/outside", "x"))
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "wa/1", "b"))
		d := tu.Must[*gateway.DeleteResponse](t)(c.Delete(ctx, "wa/1"))
		evs := collect(t, ctx, w, 3)
		tu.Eq(t, "events", len(evs), 3)
		tu.Eq(t, "first", evs[0].Type, gateway.EventPut)
		tu.Eq(t, "first is a create", evs[0].IsCreate(), true)
		tu.Eq(t, "second value", string(evs[1].Kv.Value), "b")
		tu.Eq(t, "second is not a create", evs[1].IsCreate(), false)
		tu.Eq(t, "second prev", string(evs[1].PrevKv.Value), "a")
		tu.Eq(t, "third", evs[2].Type, gateway.EventDelete)
		tu.Eq(t, "third key", string(evs[2].Kv.Key), "wa/1")
		tu.Eq(t, "third revision", evs[2].Kv.ModRevision, d.Header.Revision)
		tu.Eq(t, "third prev", string(evs[2].PrevKv.Value), "b")
		tu.Eq(t, "resume revision", w.Revision(), d.Header.Revision+1)
	})

	t.Run("HistoryAndFilters", func(t *testing.T) {
		first := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "wh/k", "1")).Header.Revision
		tu.Must[*gateway.DeleteResponse](t)(c.Delete(ctx, "wh/k"))
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "wh/k", "2"))
		all := tu.Must[*gateway.Watch](t)(c.Watch(ctx, "wh/k", gateway.WithRev(first)))
		defer all.Stop()
		evs := collect(t, ctx, all, 3)
		eqStrings(t, "history", []string{evString(evs[0]), evString(evs[1]), evString(evs[2])},
			fmt.Sprintf("%d:PUT:wh/k=1", first), fmt.Sprintf("%d:DELETE:wh/k=", first+1), fmt.Sprintf("%d:PUT:wh/k=2", first+2))
		puts := tu.Must[*gateway.Watch](t)(c.Watch(ctx, "wh/k", gateway.WithRev(first), gateway.WithFilterDelete()))
		defer puts.Stop()
		evs = collect(t, ctx, puts, 2)
		tu.Eq(t, "no deletes", evs[0].Type == gateway.EventPut && evs[1].Type == gateway.EventPut, true)
		dels := tu.Must[*gateway.Watch](t)(c.Watch(ctx, "wh/k", gateway.WithRev(first), gateway.WithFilterPut()))
		defer dels.Stop()
		evs = collect(t, ctx, dels, 1)
		tu.Eq(t, "only the delete", evString(evs[0]), fmt.Sprintf("%d:DELETE:wh/k=", first+1))
	})

	t.Run("Range", func(t *testing.T) {
		w := tu.Must[*gateway.Watch](t)(c.Watch(ctx, "wr/b", gateway.WithRange("wr/d")))
		defer w.Stop()
		for _, k := range []string{"wr/a", "wr/b", "wr/c", "wr/d"} {
			tu.Must[*gateway.PutResponse](t)(c.Put(ctx, k, "v"))
		}
		evs := collect(t, ctx, w, 2)
		eqStrings(t, "range events", []string{string(evs[0].Kv.Key), string(evs[1].Kv.Key)}, "wr/b", "wr/c")
	})

	t.Run("ProgressNotify", func(t *testing.T) {
		rev := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "wp/other", "x")).Header.Revision
		w := tu.Must[*gateway.Watch](t)(c.Watch(ctx, "wp/quiet", gateway.WithProgressNotify()))
		defer w.Stop()
		r := next(t, ctx, w)
		tu.Eq(t, "progress notification", r.IsProgressNotify(), true)
		if r.Header.Revision < rev {
			t.Fatalf("progress revision %d < %d", r.Header.Revision, rev)
		}
		if w.Revision() != r.Header.Revision+1 {
			t.Fatalf("resume revision %d after progress at %d", w.Revision(), r.Header.Revision)
		}
	})

	t.Run("CompactedStart", func(t *testing.T) {
		p1 := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "wc/k", "1"))
		p2 := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "wc/k", "2"))
		tu.Must[*gateway.CompactResponse](t)(c.Compact(ctx, p2.Header.Revision, gateway.WithPhysical()))
		// etcd confirms the watch, then cancels it: the error ends the watch.
		w := tu.Must[*gateway.Watch](t)(c.Watch(ctx, "wc/k", gateway.WithRev(p1.Header.Revision)))
		err := ended(t, ctx, w)
		isErr(t, err, gateway.ErrCompacted)
		var ce *gateway.CompactedError
		if !errors.As(err, &ce) || ce.CompactRevision != p2.Header.Revision || ce.Revision != p1.Header.Revision {
			t.Fatalf("compacted error: %#v", err)
		}
		_, err = c.WatchOnce(ctx, "wc/k", gateway.WithRev(p1.Header.Revision))
		isErr(t, err, gateway.ErrCompacted)
		// At the compact revision itself the history is still there.
		ev := tu.Must[*gateway.Event](t)(c.WatchOnce(ctx, "wc/k", gateway.WithRev(p2.Header.Revision)))
		tu.Eq(t, "event at compact revision", string(ev.Kv.Value), "2")
	})

	t.Run("Ending", func(t *testing.T) {
		w := tu.Must[*gateway.Watch](t)(c.Watch(ctx, "we/k"))
		w.Stop()
		w.Stop()
		if err := ended(t, ctx, w); err != nil {
			t.Fatalf("after Stop: %v", err)
		}
		wctx, cancel := context.WithCancel(ctx)
		w = tu.Must[*gateway.Watch](t)(c.Watch(wctx, "we/k"))
		cancel()
		if err := ended(t, ctx, w); !errors.Is(err, context.Canceled) {
			t.Fatalf("after cancel: %v", err)
		}
		<-w.Done()
		octx, ocancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer ocancel()
		_, err := c.WatchOnce(octx, "we/never")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WatchOnce past deadline: %v", err)
		}
		_, err = c.Watch(ctx, "")
		isErr(t, err, gateway.ErrEmptyKey)
	})

	t.Run("WatchOnce", func(t *testing.T) {
		got := make(chan *gateway.Event, 1)
		errc := make(chan error, 1)
		ready := tu.Must[*gateway.Watch](t)(c.WatchPrefix(ctx, "wo/"))
		defer ready.Stop()
		go func() {
			ev, err := c.WatchPrefixOnce(ctx, "wo/")
			got <- ev
			errc <- err
		}()
		// Keep writing until WatchPrefixOnce has seen an event: it may start
		// watching after the first write.
		for i := 0; ; i++ {
			tu.Must[*gateway.PutResponse](t)(c.Put(ctx, fmt.Sprintf("wo/%d", i), "v"))
			next(t, ctx, ready)
			select {
			case ev := <-got:
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(string(ev.Kv.Key), "wo/") {
					t.Fatalf("event %v", evString(*ev))
				}
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
}

// TestWatchStopDropsBuffered: responses the caller has not received when Stop
// returns are never delivered, even with the buffer full and the watch's
// goroutine blocked on it.
func TestWatchStopDropsBuffered(t *testing.T) {
	cl := etcdtest.Single(t)
	c := tu.Client(t, cl.Endpoints())
	ctx := tu.Ctx(t)
	w := tu.Must[*gateway.Watch](t)(c.WatchPrefix(ctx, "stop/"))
	// Put until the buffer is full (the server may put several revisions in
	// one response), then a few more for the stream to hold; receive nothing.
	for i := 0; len(w.Events()) < cap(w.Events()); i++ {
		if i == 10000 {
			t.Fatalf("the buffer holds %d of %d responses after %d puts", len(w.Events()), cap(w.Events()), i)
		}
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, fmt.Sprintf("stop/%05d", i), "v"))
	}
	for i := range 10 {
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, fmt.Sprintf("stop/more-%d", i), "v"))
	}
	w.Stop()
	delivered := 0
	for range w.Events() {
		delivered++
	}
	tu.Eq(t, "responses delivered after Stop", delivered, 0)
	if err := w.Err(); err != nil {
		t.Fatalf("Err after Stop: %v", err)
	}
	w.Stop() // again: a no-op
}

func TestWatchClientClose(t *testing.T) {
	cl := etcdtest.Single(t)
	c, err := gateway.New(gateway.Config{Endpoints: cl.Endpoints()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := tu.Ctx(t)
	w1 := tu.Must[*gateway.Watch](t)(c.Watch(ctx, "k1"))
	w2 := tu.Must[*gateway.Watch](t)(c.WatchPrefix(ctx, "k2"))
	c.Close()
	for _, w := range []*gateway.Watch{w1, w2} {
		isErr(t, ended(t, ctx, w), gateway.ErrClosed)
	}
	_, err = c.Watch(ctx, "k3")
	isErr(t, err, gateway.ErrClosed)
	_, err = c.Get(ctx, "k3")
	isErr(t, err, gateway.ErrClosed)
	c.Close()
}

// TestWatchSurvivesMemberRestart kills the only member in the middle of a stream
// of writes and restarts it; the watch must deliver exactly the server's history:
// every revision once, in order.
func TestWatchSurvivesMemberRestart(t *testing.T) {
	cl := etcdtest.Single(t)
	fast := func(cfg *gateway.Config) {
		cfg.Retry = gateway.RetryPolicy{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond}
	}
	c := tu.Client(t, cl.Endpoints(), fast)
	var streams atomic.Int64
	gateway.ObserveResponses(c, func(r *http.Response) {
		if strings.HasSuffix(r.Request.URL.Path, "/watch") {
			streams.Add(1)
		}
	})
	writer := tu.Client(t, cl.Endpoints())
	ctx := tu.Ctx(t)
	m := cl.Members[0]

	w := tu.Must[*gateway.Watch](t)(c.WatchPrefix(ctx, "wk/")) // from now: resumes from the created revision
	startRev := w.Revision()
	const total = 300
	var wg sync.WaitGroup
	wg.Add(1)
	writeErrs := 0
	go func() {
		defer wg.Done()
		for i := 0; i < total; {
			_, err := writer.Put(ctx, fmt.Sprintf("wk/%03d", i), fmt.Sprint(i))
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				writeErrs++
				// The member is down: wait for it rather than spin. A put
				// whose outcome was unknown is written again; the replay
				// below sees both.
				_ = m.WaitHealthy(ctx)
				continue
			}
			i++
		}
	}()

	var got []gateway.Event
	killed := false
	for len(got) == 0 || string(got[len(got)-1].Kv.Key) != fmt.Sprintf("wk/%03d", total-1) {
		got = append(got, next(t, ctx, w).Events...)
		if !killed && len(got) >= total/3 {
			killed = true
			m.Kill()
			if err := m.Start(); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	if n := streams.Load(); n < 2 {
		t.Fatalf("%d watch streams opened: the watch never lost its stream", n)
	}

	// The server's own history, replayed from the same start.
	replay := tu.Must[*gateway.Watch](t)(writer.WatchPrefix(ctx, "wk/", gateway.WithRev(startRev)))
	defer replay.Stop()
	want := collect(t, ctx, replay, len(got))
	for i := range got {
		if i > 0 && got[i].Kv.ModRevision <= got[i-1].Kv.ModRevision {
			t.Fatalf("revision %d after %d: repeated or out of order", got[i].Kv.ModRevision, got[i-1].Kv.ModRevision)
		}
		if evString(got[i]) != evString(want[i]) {
			t.Fatalf("event %d = %s, server history has %s", i, evString(got[i]), evString(want[i]))
		}
	}
	if len(want) != len(got) {
		t.Fatalf("got %d events, history has %d", len(got), len(want))
	}
	t.Logf("%d events across a member restart, %d watch streams, %d failed writes retried", len(got), streams.Load(), writeErrs)
}

// TestWatchCompactedWhileDown: the watch's member is down while the others write
// and compact past the watch's resume point; when it comes back the watch must
// end with a *CompactedError, not skip the lost history silently.
func TestWatchCompactedWhileDown(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Size: 3})
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) {
		cfg.Endpoints = cl.Endpoints()[:1]
		cfg.Retry = gateway.RetryPolicy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	})
	writer := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) { cfg.Endpoints = cl.Endpoints()[1:] })

	w := tu.Must[*gateway.Watch](t)(c.WatchPrefix(ctx, "wd/"))
	p0 := tu.Must[*gateway.PutResponse](t)(writer.Put(ctx, "wd/0", "v"))
	tu.Eq(t, "first event", collect(t, ctx, w, 1)[0].Kv.ModRevision, p0.Header.Revision)
	cl.Members[0].Kill()
	var last int64
	for i := 1; i <= 5; i++ {
		last = putRetry(t, ctx, writer, fmt.Sprintf("wd/%d", i)).Header.Revision
	}
	tu.Must[*gateway.CompactResponse](t)(writer.Compact(ctx, last, gateway.WithPhysical()))
	if err := cl.Members[0].Start(); err != nil {
		t.Fatal(err)
	}
	err := ended(t, ctx, w)
	var ce *gateway.CompactedError
	if !errors.As(err, &ce) || !errors.Is(err, gateway.ErrCompacted) {
		t.Fatalf("watch ended with %v, want a compaction error", err)
	}
	tu.Eq(t, "resume revision", ce.Revision, p0.Header.Revision+1)
	tu.Eq(t, "compact revision", ce.CompactRevision, last)
}

// TestWatchNoLeaderInStream: a watch that requires a leader, on a member that
// loses its quorum, gets etcd's in-stream "no leader" error, classifies it, and
// resumes once a leader is back.
func TestWatchNoLeaderInStream(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Size: 3})
	ctx := tu.Ctx(t)
	errs := make(chan error, 100)
	c := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) {
		cfg.Endpoints = cl.Endpoints()[:1]
		cfg.Retry = gateway.RetryPolicy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}
		cfg.Logger = slog.New(&errorHandler{errs: errs})
	})
	w := tu.Must[*gateway.Watch](t)(c.WatchPrefix(ctx, "wl/", gateway.WithRequireLeader()))
	defer w.Stop()
	cl.Members[1].Kill()
	cl.Members[2].Kill()
	for err := range errs {
		if errors.Is(err, gateway.ErrNoLeader) {
			var ge *gateway.Error
			if !errors.As(err, &ge) || ge.Code != gateway.CodeUnavailable {
				t.Fatalf("no-leader error: %#v", err)
			}
			break
		}
		t.Logf("watch interrupted by %v", err)
	}
	for _, m := range cl.Members[1:] {
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	writer := tu.Client(t, cl.Endpoints())
	p := tu.Must[*gateway.PutResponse](t)(writer.Put(ctx, "wl/after", "v"))
	evs := collect(t, ctx, w, 1)
	tu.Eq(t, "event after recovery", evs[0].Kv.ModRevision, p.Header.Revision)
}

// putRetry writes key, retrying while the cluster elects a new leader: a put in
// flight when the leader died times out with its outcome unknown. Tests use it
// only where writing a key twice changes nothing they check.
func putRetry(t testing.TB, ctx context.Context, c *gateway.Client, key string) *gateway.PutResponse {
	t.Helper()
	for {
		r, err := c.Put(ctx, key, "v")
		if err == nil {
			return r
		}
		if ctx.Err() != nil || !(errors.Is(err, gateway.ErrTimeout) || errors.Is(err, gateway.ErrUnavailable) || errors.Is(err, gateway.ErrNoLeader)) {
			t.Fatal(err)
		}
		t.Logf("retrying put of %s: %v", key, err)
	}
}

// errorHandler is a slog.Handler that passes on the "err" attribute of each record.
type errorHandler struct{ errs chan error }

func (h *errorHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *errorHandler) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && a.Key == "err" {
			select {
			case h.errs <- err:
			default:
			}
		}
		return true
	})
	return nil
}
func (h *errorHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *errorHandler) WithGroup(string) slog.Handler      { return h }

// TestWatchFragments: a watch catching up on more history than the server sends in
// one message (--max-request-bytes plus etcd's 512 KiB gRPC allowance) gets it in
// fragments; the client joins them again, so each revision arrives whole.
func TestWatchFragments(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	var fragments, messages atomic.Int64
	counting := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err == nil && strings.HasSuffix(r.URL.Path, "/watch") {
			resp.Body = &streamCounter{ReadCloser: resp.Body, needles: map[string]*atomic.Int64{
				`"fragment":true`: &fragments, `{"result":`: &messages}}
		}
		return resp, err
	})}
	t.Cleanup(counting.CloseIdleConnections)
	c := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) { cfg.HTTPClient = counting })
	const n = 30
	val := strings.Repeat("f", 100<<10) // 3 MB of history in all
	var first int64
	for i := 0; i < n; i++ {
		r := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, fmt.Sprintf("fr/%02d", i), val))
		if i == 0 {
			first = r.Header.Revision
		}
	}
	w := tu.Must[*gateway.Watch](t)(c.WatchPrefix(ctx, "fr/", gateway.WithRev(first), gateway.WithFragment()))
	defer w.Stop()
	var evs []gateway.Event
	responses := 0
	for len(evs) < n {
		evs = append(evs, next(t, ctx, w).Events...)
		responses++
	}
	for i, e := range evs {
		tu.Eq(t, "key", string(e.Kv.Key), fmt.Sprintf("fr/%02d", i))
		tu.Eq(t, "value length", len(e.Kv.Value), len(val))
	}
	if fragments.Load() == 0 {
		t.Fatal("the server sent no fragments: the test did not exercise joining")
	}
	// Every message but the "created" one carried events; each run of pieces
	// flagged fragment:true and its final piece must make one response.
	pieces := messages.Load() - 1
	if int64(responses) != pieces-fragments.Load() {
		t.Fatalf("%d responses from %d messages of which %d fragments: not joined", responses, pieces, fragments.Load())
	}
	t.Logf("%d events in %d responses joined from %d messages", n, responses, pieces)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// streamCounter counts occurrences of each needle in a stream as it is read.
type streamCounter struct {
	io.ReadCloser
	needles map[string]*atomic.Int64
	tail    []byte
}

func (f *streamCounter) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	buf := append(f.tail, p[:n]...)
	const keep = 32 // longer than every needle: a match split across reads counts once
	for needle, count := range f.needles {
		// Matches wholly inside the kept tail were counted by the previous read.
		prev := bytes.Count(f.tail, []byte(needle))
		count.Add(int64(bytes.Count(buf, []byte(needle)) - prev))
	}
	if len(buf) > keep {
		buf = buf[len(buf)-keep:]
	}
	f.tail = append(f.tail[:0], buf...)
	return n, err
}

// progressAfter asks w for progress until a notification comes, and returns
// the events received before it and its revision. The server drops a request
// that arrives while the watch is catching up, so it asks again every 100 ms.
func progressAfter(t *testing.T, ctx context.Context, w *gateway.Watch) (revs []int64, progress int64) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	tu.NoErr(t, w.RequestProgress(ctx))
	for {
		select {
		case r, ok := <-w.Events():
			if !ok {
				t.Fatalf("watch ended: %v", w.Err())
			}
			if r.IsProgressNotify() {
				return revs, r.Header.Revision
			}
			for _, e := range r.Events {
				revs = append(revs, e.Kv.ModRevision)
			}
		case <-tick.C:
			tu.NoErr(t, w.RequestProgress(ctx))
		case <-ctx.Done():
			t.Fatalf("no progress notification: %v", ctx.Err())
		}
	}
}

// TestWatchRequestProgress: over HTTP/2 a progress notification comes after
// every event up to its revision, on a quiet range and on a busy one; over
// HTTP/1.1 the request is refused with ErrUnimplemented.
func TestWatchRequestProgress(t *testing.T) {
	certs := makeCerts(t)
	cl := etcdtest.Start(t, etcdtest.Options{TLS: certs})
	c := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) {
		cfg.CAFile, cfg.CertFile, cfg.KeyFile = certs.CA, certs.ClientCert, certs.ClientKey
	})
	ctx := tu.Ctx(t)
	// etcd before 3.4.24 and 3.5.8 answers a progress request at once, ahead
	// of events the stream has yet to send (etcd issue 15220).
	ordered := cl.AtLeast(3, 5)

	t.Run("HTTP1", func(t *testing.T) {
		plain := etcdtest.Start(t, etcdtest.Options{})
		pc := tu.Client(t, plain.Endpoints())
		w := tu.Must[*gateway.Watch](t)(pc.Watch(ctx, "wp/plain"))
		defer w.Stop()
		err := w.RequestProgress(ctx)
		if !errors.Is(err, gateway.ErrUnimplemented) {
			t.Fatalf("RequestProgress over HTTP/1.1: %v, want ErrUnimplemented", err)
		}
		t.Log(err)
	})

	t.Run("Quiet", func(t *testing.T) {
		w := tu.Must[*gateway.Watch](t)(c.Watch(ctx, "wp/quiet"))
		defer w.Stop()
		var last int64
		for i := range 5 {
			last = tu.Must[*gateway.PutResponse](t)(c.Put(ctx, fmt.Sprintf("wpx/%d", i), "v")).Header.Revision
		}
		revs, progress := progressAfter(t, ctx, w)
		if len(revs) != 0 || progress < last {
			t.Fatalf("%d events, then a progress notification at %d; want none, then one at %d or later", len(revs), progress, last)
		}
		tu.Eq(t, "resume revision", w.Revision(), progress+1)
		put := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "wp/quiet", "after"))
		r := next(t, ctx, w)
		if len(r.Events) != 1 || r.Events[0].Kv.ModRevision != put.Header.Revision {
			t.Fatalf("after the switch: %d events, want the put at %d", len(r.Events), put.Header.Revision)
		}
	})

	t.Run("Busy", func(t *testing.T) {
		// Events in flight and in the buffer when progress is asked for come
		// first (on fixed servers), each once and in order.
		w := tu.Must[*gateway.Watch](t)(c.WatchPrefix(ctx, "wp/busy/"))
		defer w.Stop()
		const n = 150
		var last int64
		for i := range n {
			last = tu.Must[*gateway.PutResponse](t)(c.Put(ctx, fmt.Sprintf("wp/busy/%d", i), "v")).Header.Revision
		}
		revs, progress := progressAfter(t, ctx, w)
		if ordered && len(revs) != n {
			t.Fatalf("progress notification at %d after %d of %d events", progress, len(revs), n)
		}
		for len(revs) < n {
			for _, e := range next(t, ctx, w).Events {
				revs = append(revs, e.Kv.ModRevision)
			}
		}
		tu.Eq(t, "events", len(revs), n)
		for i := 1; i < len(revs); i++ {
			if revs[i] != revs[i-1]+1 {
				t.Fatalf("event %d at revision %d after %d", i, revs[i], revs[i-1])
			}
		}
		if progress < last {
			t.Fatalf("progress notification at %d, before the last put at %d", progress, last)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		// Requests from several goroutines while keys change: every event
		// once and in order, no event at or below a notification's revision
		// after it.
		w := tu.Must[*gateway.Watch](t)(c.WatchPrefix(ctx, "wp/conc/"))
		defer w.Stop()
		const n = 200
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		stop := make(chan struct{})
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := w.RequestProgress(ctx); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Go(func() {
			for i := range n {
				if _, err := c.Put(ctx, fmt.Sprintf("wp/conc/%d", i), "v"); err != nil {
					errs <- err
					return
				}
			}
		})
		var lastRev, progress int64
		seen, notes := 0, 0
		for seen < n {
			r := next(t, ctx, w)
			if r.IsProgressNotify() {
				notes++
				progress = max(progress, r.Header.Revision)
				continue
			}
			for _, e := range r.Events {
				if e.Kv.ModRevision <= lastRev {
					t.Fatalf("event at %d after one at %d", e.Kv.ModRevision, lastRev)
				}
				if ordered && e.Kv.ModRevision <= progress {
					t.Fatalf("event at %d after a progress notification at %d", e.Kv.ModRevision, progress)
				}
				lastRev = e.Kv.ModRevision
				seen++
			}
		}
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if notes == 0 {
			t.Fatal("no progress notification")
		}
		t.Logf("%d events, %d progress notifications", seen, notes)
	})

	t.Run("Ended", func(t *testing.T) {
		w := tu.Must[*gateway.Watch](t)(c.Watch(ctx, "wp/ended"))
		tu.NoErr(t, w.RequestProgress(ctx))
		w.Stop()
		if err := w.RequestProgress(ctx); !errors.Is(err, gateway.ErrClosed) {
			t.Fatalf("RequestProgress after Stop: %v, want ErrClosed", err)
		}
		wctx, cancel := context.WithCancel(ctx)
		w = tu.Must[*gateway.Watch](t)(c.Watch(wctx, "wp/ended"))
		cancel()
		if err := w.RequestProgress(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("RequestProgress after the watch's context ended: %v, want context.Canceled", err)
		}
	})
}

// TestWatchProgressBehindProxy: an HTTP/2 proxy that serves only /v3/ (its
// /version is 404): the watch learns the protocol from the refusal, keeps
// its request body open, and RequestProgress works through the proxy.
func TestWatchProgressBehindProxy(t *testing.T) {
	certs := makeCerts(t)
	cl := etcdtest.Start(t, etcdtest.Options{TLS: certs})
	ctx := tu.Ctx(t)
	upstream, err := url.Parse(cl.Endpoints()[0])
	tu.NoErr(t, err)
	tlsCfg, err := certs.ClientTLS()
	tu.NoErr(t, err)
	rp := httputil.NewSingleHostReverseProxy(upstream)
	rp.Transport = &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true}
	rp.FlushInterval = -1
	var versions atomic.Int64
	proxy := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v3/") {
			versions.Add(1)
			http.NotFound(w, r)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	proxy.EnableHTTP2 = true
	proxy.StartTLS()
	defer proxy.Close()
	defer rp.Transport.(*http.Transport).CloseIdleConnections()

	c := tu.Client(t, []string{proxy.URL}, func(cfg *gateway.Config) {
		cfg.APIPath = "/v3"
		cfg.TLS = &tls.Config{RootCAs: proxy.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	})
	w := tu.Must[*gateway.Watch](t)(c.Watch(ctx, "proxied/k"))
	defer w.Stop()
	tu.Eq(t, "/version asked", versions.Load(), int64(1))
	put := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "proxied/k", "v"))
	tu.Eq(t, "event through the proxy", collect(t, ctx, w, 1)[0].Kv.ModRevision, put.Header.Revision)
	_, progress := progressAfter(t, ctx, w)
	if progress < put.Header.Revision {
		t.Fatalf("progress notification at %d, before the put at %d", progress, put.Header.Revision)
	}
}
