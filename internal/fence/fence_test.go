package fence_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	"github.com/etcdgw/etcdgw/internal/fence"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// replyCutter forwards requests to a real etcd. While cutting, it forwards
// each transaction and then cuts its connection instead of replying: the
// transaction is applied, and the client cannot know it.
type replyCutter struct {
	*httptest.Server
	cutting atomic.Bool
	txns    atomic.Int64 // transactions forwarded
}

func newReplyCutter(t *testing.T, target string) *replyCutter {
	p := &replyCutter{}
	fwd := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(fwd.CloseIdleConnections)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.Path, bytes.NewReader(body))
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		req.Header = r.Header.Clone()
		resp, err := fwd.Do(req)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		defer resp.Body.Close()
		reply, err := io.ReadAll(resp.Body)
		if r.URL.Path == "/v3/kv/txn" {
			p.txns.Add(1)
		}
		if err != nil || r.URL.Path == "/v3/kv/txn" && p.cutting.Load() {
			panic(http.ErrAbortHandler)
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(reply)
	}))
	t.Cleanup(p.Close)
	return p
}

// TestCommitPausesBetweenResends: a path that loses every reply gets the
// first resend at once, then resends at growing intervals, not as fast as the
// connections are cut. When replies come back, the fenced transaction's
// compare fails (its first attempt was applied), and Commit says that an
// attempt's outcome had been unknown.
func TestCommitPausesBetweenResends(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	p := newReplyCutter(t, cl.Endpoints()[0])
	c := tu.Client(t, []string{p.URL}, func(cfg *gateway.Config) { cfg.APIPath = "/v3" })
	p.cutting.Store(true)

	txn := func() *gateway.Txn {
		return c.Txn().If(gateway.CmpCreateRevision("fenced", gateway.Equal, 0)).Then(gateway.OpPut("fenced", "once"))
	}
	type result struct {
		r            *gateway.TxnResponse
		unknown, err error
	}
	done := make(chan result, 1)
	go func() {
		r, unknown, err := fence.Commit(ctx, txn())
		done <- result{r, unknown, err}
	}()
	// Pauses of about 10, 20, 40, 80, 160 and 320 ms (jittered by half) fill
	// a second with 6 to 9 attempts; resending at once made thousands.
	time.Sleep(time.Second)
	p.cutting.Store(false)
	res := <-done
	tu.NoErr(t, res.err)
	tu.Eq(t, "succeeded (the first attempt was applied)", res.r.Succeeded, false)
	tu.Is(t, res.unknown, gateway.ErrOutcomeUnknown)
	if n := p.txns.Load(); n < 3 || n > 20 {
		t.Fatalf("%d attempts in about a second: want 3 to 20", n)
	}

	// When ctx ends during a pause, the last attempt's error is returned.
	p.cutting.Store(true)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, unknown, err := fence.Commit(short, txn())
	tu.Is(t, err, gateway.ErrOutcomeUnknown)
	tu.Is(t, unknown, gateway.ErrOutcomeUnknown)
}
