package gateway_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

// TestFailover: a client of a 3-member cluster writes, reads and watches; the
// member its watch streams from is killed in the middle. Reads keep succeeding;
// writes succeed except those caught in flight, which fail with ErrOutcomeUnknown
// and are not sent again; the watch resumes on another member and delivers the
// server's history exactly: nothing lost, nothing repeated, no write applied twice.
func TestFailover(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Size: 3})
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	w := tu.Must[*gateway.Watch](t)(c.WatchPrefix(ctx, "fo/"))
	start := w.Revision()

	const total = 400
	var (
		mu       sync.Mutex
		acked    = map[string]int64{} // key -> revision the put reported
		unknown  []string
		written  atomic.Int64
		readErrs atomic.Int64
		stop     = make(chan struct{})
		wrote    = make(chan struct{}) // closed when the writer is done
		wg       sync.WaitGroup
	)
	wg.Add(2)
	go func() { // writer: each key once, never retried by the test either
		defer wg.Done()
		defer close(wrote)
		for i := 0; i < total; i++ {
			key := fmt.Sprintf("fo/%04d", i)
			r, err := c.Put(ctx, key, fmt.Sprint(i))
			mu.Lock()
			switch {
			case err == nil:
				acked[key] = r.Header.Revision
			case errors.Is(err, gateway.ErrOutcomeUnknown):
				unknown = append(unknown, key)
			default:
				t.Errorf("put %s: %v", key, err)
			}
			mu.Unlock()
			written.Add(1)
		}
	}()
	go func() { // reader
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			n := written.Load()
			if n == 0 {
				continue
			}
			if _, err := c.Get(ctx, fmt.Sprintf("fo/%04d", rand.Int64N(n))); err != nil {
				readErrs.Add(1)
				t.Errorf("get: %v", err)
			}
		}
	}()

	var got []gateway.Event
	killed := ""
	for len(got) < total/3 {
		got = append(got, next(t, ctx, w).Events...)
	}
	killed = gateway.WatchEndpoint(w)
	cl.Members[slices.Index(cl.Endpoints(), killed)].Kill()
	t.Logf("killed %s after %d events", killed, len(got))
	// Keep receiving while the writer runs, so the watch moves while writes
	// are still arriving.
	for writing := true; writing; {
		select {
		case <-wrote:
			writing = false
		case r, ok := <-w.Events():
			if !ok {
				t.Fatalf("watch ended: %v", w.Err())
			}
			got = append(got, r.Events...)
		}
	}
	close(stop)
	wg.Wait()
	// Every key under fo/ was written once, including writes whose outcome
	// was unknown and that did apply: receive until the watch has them all.
	replayClient := tu.Client(t, cl.Endpoints())
	count := tu.Must[*gateway.GetResponse](t)(replayClient.Get(ctx, "fo/", gateway.WithPrefix(), gateway.WithCountOnly())).Count
	for int64(len(got)) < count {
		got = append(got, next(t, ctx, w).Events...)
	}
	if gateway.WatchEndpoint(w) == killed {
		t.Fatal("the watch did not move off the killed member")
	}

	replay := tu.Must[*gateway.Watch](t)(replayClient.WatchPrefix(ctx, "fo/", gateway.WithRev(start)))
	defer replay.Stop()
	want := collect(t, ctx, replay, len(got))
	seen := map[string]bool{}
	for i, ev := range got {
		if evString(ev) != evString(want[i]) {
			t.Fatalf("event %d = %s, history has %s", i, evString(ev), evString(want[i]))
		}
		key := string(ev.Kv.Key)
		if seen[key] || ev.Kv.Version != 1 {
			t.Fatalf("%s written twice", key)
		}
		seen[key] = true
	}
	for key, rev := range acked {
		if !seen[key] {
			t.Fatalf("acknowledged put %s (revision %d) missing from the watch", key, rev)
		}
	}
	t.Logf("%d puts acknowledged, %d with unknown outcome (%d of those applied), %d events, watch moved %s -> %s",
		len(acked), len(unknown), len(got)-len(acked), len(got), killed, gateway.WatchEndpoint(w))
}
