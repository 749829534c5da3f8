package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

func (w *wire) count(path string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, s := range w.reqs {
		if s.path == path {
			n++
		}
	}
	return n
}

// TestAwait: Await returns after a change it waits for, and not after others.
func TestAwait(t *testing.T) {
	c := tu.Client(t, endpoints)
	ctx := tu.Ctx(t)
	rev := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "await/a", "1")).Header.Revision

	done := tu.Async(ctx, func(ctx context.Context) error { return c.Await(ctx, "await/a", rev) })
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "await/b", "other key, same scope"))
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "await/a/child", "a longer key"))
	tu.Pending(t, "await on a", done, 200*time.Millisecond)
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "await/a", "2"))
	tu.NoErr(t, <-done)

	// Filters: a wait for deletes ignores puts.
	rev = tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "await/a", "3")).Header.Revision
	done = tu.Async(ctx, func(ctx context.Context) error { return c.Await(ctx, "await/a", rev, gateway.WithFilterPut()) })
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "await/a", "4"))
	tu.Pending(t, "await on a's deletion", done, 200*time.Millisecond)
	tu.Must[*gateway.DeleteResponse](t)(c.Delete(ctx, "await/a"))
	tu.NoErr(t, <-done)

	// A prefix.
	rev = tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "await/p/1", "")).Header.Revision
	done = tu.Async(ctx, func(ctx context.Context) error { return c.Await(ctx, "await/p/", rev, gateway.WithPrefix()) })
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "await/q", "outside"))
	tu.Pending(t, "await on a prefix", done, 200*time.Millisecond)
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "await/p/2", ""))
	tu.NoErr(t, <-done)

	// A change that happened between the read and the wait is not missed:
	// the stream replays it, or Await says to read again.
	rev = tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "await/late", "1")).Header.Revision
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "await/late", "2"))
	tu.NoErr(t, c.Await(ctx, "await/late", rev))

	// The caller's context.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	tu.Is(t, c.Await(short, "await/never", rev+100), context.DeadlineExceeded)
}

// TestAwaitShares: many waits in one scope share one watch request, which
// outlives them: the next waits reuse it.
func TestAwaitShares(t *testing.T) {
	c, w := wireClient(t, endpoints)
	ctx := tu.Ctx(t)
	rev := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "share/start", "")).Header.Revision
	for round := 0; round < 3; round++ {
		var dones []chan error
		for i := 0; i < 20; i++ {
			k := fmt.Sprintf("share/%d", i)
			dones = append(dones, tu.Async(ctx, func(ctx context.Context) error { return c.Await(ctx, k, rev) }))
		}
		for i, done := range dones {
			tu.Pending(t, "waiter", done, 0)
			tu.Must[*gateway.PutResponse](t)(c.Put(ctx, fmt.Sprintf("share/%d", i), fmt.Sprint(round)))
			tu.NoErr(t, <-done)
		}
		rev = tu.Must[*gateway.GetResponse](t)(c.Get(ctx, "share/start")).Header.Revision
	}
	tu.Eq(t, "watch requests for 60 waits in one scope", w.count("watch"), 1)
	tu.Eq(t, "shared streams", gateway.SharedStreams(c), 1)

	// Another scope has its own.
	done := tu.Async(ctx, func(ctx context.Context) error { return c.Await(ctx, "elsewhere/k", rev) })
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "elsewhere/k", ""))
	tu.NoErr(t, <-done)
	tu.Eq(t, "shared streams", gateway.SharedStreams(c), 2)
}

// TestAwaitCompacted: a wait from a compacted revision says to read again
// instead of failing.
func TestAwaitCompacted(t *testing.T) {
	c := tu.Client(t, endpoints)
	ctx := tu.Ctx(t)
	old := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "compacted-await/k", "1")).Header.Revision
	now := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "compacted-await/k", "2")).Header.Revision
	tu.Must[*gateway.CompactResponse](t)(c.Compact(ctx, now))
	tu.NoErr(t, c.Await(ctx, "compacted-await/other", old-1))
}

// TestAwaitClosed: Close ends waits with ErrClosed and joins the streams'
// goroutines (goleak checks the latter).
func TestAwaitClosed(t *testing.T) {
	c, _ := wireClient(t, endpoints)
	ctx := tu.Ctx(t)
	rev := tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "closed-await/k", "")).Header.Revision
	done := tu.Async(ctx, func(ctx context.Context) error {
		for {
			// Await may say to read again when its stream ends; a caller
			// then tries again, and meets ErrClosed.
			if err := c.Await(ctx, "closed-await/k", rev); err != nil {
				return err
			}
		}
	})
	for gateway.SharedStreams(c) == 0 {
		time.Sleep(time.Millisecond)
	}
	tu.NoErr(t, c.Close())
	err := <-done
	tu.Is(t, err, gateway.ErrClosed)
	if !strings.Contains(err.Error(), "closed") {
		t.Fatalf("error: %v", err)
	}
}

// TestAwaitMatch: WithMatch sees an event with the others of its revision, and
// Await returns only for one it accepts, also through a namespace and from
// the stream's buffer.
func TestAwaitMatch(t *testing.T) {
	c := tu.Client(t, endpoints)
	ctx := tu.Ctx(t)
	for _, cl := range []*gateway.Client{c, c.WithNamespace("ns-match/")} {
		rev := tu.Must[*gateway.PutResponse](t)(cl.Put(ctx, "match/start", "")).Header.Revision
		// A put of match/x counts, unless the same txn also puts match/veto.
		unvetoed := func(e *gateway.Event, same []gateway.Event) bool {
			if e.Type != gateway.EventPut || string(e.Kv.Key) != "match/x" {
				return false
			}
			for _, o := range same {
				if string(o.Kv.Key) == "match/veto" {
					return false
				}
			}
			return true
		}
		done := tu.Async(ctx, func(ctx context.Context) error {
			return cl.Await(ctx, "match/", rev, gateway.WithPrefix(), gateway.WithMatch(unvetoed))
		})
		tu.Must[*gateway.PutResponse](t)(cl.Put(ctx, "match/y", "another key"))
		tu.Must[*gateway.TxnResponse](t)(cl.Txn().Then(gateway.OpPut("match/x", "1"), gateway.OpPut("match/veto", "")).Commit(ctx))
		tu.Pending(t, "await past a vetoed put", done, 300*time.Millisecond)
		last := tu.Must[*gateway.PutResponse](t)(cl.Put(ctx, "match/x", "2")).Header.Revision
		tu.NoErr(t, <-done)

		// From the buffer: a late waiter finds the accepted event kept.
		tu.NoErr(t, cl.Await(ctx, "match/", rev, gateway.WithPrefix(), gateway.WithMatch(unvetoed)))
		late := tu.Async(ctx, func(ctx context.Context) error {
			return cl.Await(ctx, "match/", last, gateway.WithPrefix(), gateway.WithMatch(unvetoed))
		})
		tu.Pending(t, "await after every accepted event", late, 300*time.Millisecond)
		tu.Must[*gateway.PutResponse](t)(cl.Put(ctx, "match/x", "3"))
		tu.NoErr(t, <-late)
	}
}
