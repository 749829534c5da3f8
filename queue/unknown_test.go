package queue_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
	"github.com/etcdgw/etcdgw/queue"
)

// What the lossy proxy does to the next claim transaction, and after it.
const (
	passAll     int32 = iota
	loseRequest       // the claim is not forwarded; its connection is cut
	loseReply         // the claim reaches etcd; the reply is cut
	loseAll           // like loseReply, then every later request is cut too
)

// lossyProxy forwards a client's requests to a real etcd, and cuts the
// connection of the next claim transaction (a txn that puts under a lease)
// before or after forwarding it, as a network failure would.
type lossyProxy struct {
	*httptest.Server
	mode    atomic.Int32
	cutting atomic.Bool // cut every request (after loseAll's claim)
}

func newLossyProxy(t *testing.T, target string) *lossyProxy {
	p := &lossyProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		if p.cutting.Load() {
			panic(http.ErrAbortHandler)
		}
		mode := passAll
		if r.URL.Path == "/v3/kv/txn" && bytes.Contains(body, []byte(`"lease"`)) {
			mode = p.mode.Swap(passAll)
		}
		if mode == loseRequest {
			panic(http.ErrAbortHandler)
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.Path, bytes.NewReader(body))
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		defer resp.Body.Close()
		reply, err := io.ReadAll(resp.Body)
		if err != nil || mode == loseReply || mode == loseAll {
			p.cutting.Store(mode == loseAll)
			panic(http.ErrAbortHandler)
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(reply)
	}))
	t.Cleanup(p.Close)
	return p
}

// TestWorkQueueClaimOfUnknownOutcome: a claim whose reply is lost may have
// taken effect. Claim must then deliver the item it holds (counted once), or
// claim afresh if it did not take effect; and if it cannot tell before its
// ctx ends, the next Claim under the same lease must. An item is never left
// claimed, unseen, by a consumer whose lease lives on.
func TestWorkQueueClaimOfUnknownOutcome(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	direct := tu.Client(t, cl.Endpoints())
	p := newLossyProxy(t, cl.Endpoints()[0])
	c := tu.Client(t, []string{p.URL}, func(cfg *gateway.Config) { cfg.RetryTimeout = 200 * time.Millisecond })

	// Each case: one item, one claim whose connection the proxy cuts.
	claimWith := func(t *testing.T, name string, mode int32) (*queue.WorkQueue, *queue.Item) {
		tu.NoErr(t, queue.NewWork(direct, name).Enqueue(ctx, "job", 0))
		q := queue.NewWork(c, name)
		l := tu.Lease(t, ctx, direct, 30)
		p.mode.Store(mode)
		it := tu.Must[*queue.Item](t)(q.Claim(ctx, l))
		tu.Eq(t, "proxy mode after the claim", p.mode.Load(), passAll)
		return q, it
	}
	drained := func(t *testing.T, name string, it *queue.Item) {
		tu.Eq(t, "value", string(it.Value), "job")
		tu.Eq(t, "attempt", it.Attempt, 1)
		tu.NoErr(t, it.Ack(ctx))
		for _, sub := range []string{"/items/", "/claims/", "/attempts/"} {
			r := tu.Must[*gateway.GetResponse](t)(direct.GetPrefix(ctx, name+sub, gateway.WithCountOnly()))
			tu.Eq(t, "keys left under "+name+sub, r.Count, 0)
		}
	}

	t.Cleanup(func() { p.cutting.Store(false) })
	t.Run("reply lost", func(t *testing.T) {
		_, it := claimWith(t, "uo1", loseReply)
		drained(t, "uo1", it)
	})
	t.Run("request lost", func(t *testing.T) {
		_, it := claimWith(t, "uo2", loseRequest)
		drained(t, "uo2", it)
	})
	t.Run("unreachable until ctx ends", func(t *testing.T) {
		tu.NoErr(t, queue.NewWork(direct, "uo3").Enqueue(ctx, "job", 0))
		q := queue.NewWork(c, "uo3")
		l := tu.Lease(t, ctx, direct, 30)
		p.mode.Store(loseAll)
		short, cancel := context.WithTimeout(ctx, time.Second)
		_, err := q.Claim(short, l)
		cancel()
		tu.Is(t, err, gateway.ErrOutcomeUnknown)
		// The claim took effect: another consumer finds nothing to claim.
		other := queue.NewWork(direct, "uo3")
		short, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
		_, err = other.Claim(short, tu.Lease(t, ctx, direct, 30))
		cancel()
		tu.Is(t, err, context.DeadlineExceeded)
		// Reachable again: the next Claim under l delivers the held item.
		p.cutting.Store(false)
		short, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		it := tu.Must[*queue.Item](t)(q.Claim(short, l))
		drained(t, "uo3", it)
	})
	t.Run("lease ended meanwhile", func(t *testing.T) {
		tu.NoErr(t, queue.NewWork(direct, "uo4").Enqueue(ctx, "job", 0))
		q := queue.NewWork(c, "uo4")
		l := tu.Lease(t, ctx, direct, 30)
		p.mode.Store(loseAll)
		short, cancel := context.WithTimeout(ctx, time.Second)
		_, err := q.Claim(short, l)
		cancel()
		tu.Is(t, err, gateway.ErrOutcomeUnknown)
		p.cutting.Store(false)
		// The held claim ends with its lease; the item goes to the next
		// consumer, the forgotten claim counted as a delivery.
		tu.NoErr(t, l.Close(ctx))
		it := tu.Must[*queue.Item](t)(q.Claim(ctx, tu.Lease(t, ctx, direct, 30)))
		tu.Eq(t, "attempt", it.Attempt, 2)
		it.Attempt = 1
		drained(t, "uo4", it)
	})
}
