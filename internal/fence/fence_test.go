package fence_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	"github.com/etcdgw/etcdgw/internal/fence"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestCommitPausesBetweenResends: a path that loses every reply gets the
// first resend at once, then resends at growing intervals, not as fast as the
// connections are cut. When replies come back, the fenced transaction's
// compare fails (its first attempt was applied), and Commit says that an
// attempt's outcome had been unknown.
func TestCommitPausesBetweenResends(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	p := tu.NewLossyProxy(t, cl.Endpoints()[0], `"request_put"`)
	c := tu.Client(t, []string{p.URL}, func(cfg *gateway.Config) { cfg.APIPath = "/v3" })
	p.Lose(tu.LoseAll) // the first attempt is applied; it and every later one lose their reply

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
	attempts := p.Cuts()
	p.Restore()
	res := <-done
	tu.NoErr(t, res.err)
	tu.Eq(t, "succeeded (the first attempt was applied)", res.r.Succeeded, false)
	tu.Is(t, res.unknown, gateway.ErrOutcomeUnknown)
	if attempts < 3 || attempts > 20 {
		t.Fatalf("%d attempts in about a second: want 3 to 20", attempts)
	}

	// When ctx ends during a pause, the last attempt's error is returned.
	p.Lose(tu.LoseAll)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, unknown, err := fence.Commit(short, txn())
	tu.Is(t, err, gateway.ErrOutcomeUnknown)
	tu.Is(t, unknown, gateway.ErrOutcomeUnknown)
}
