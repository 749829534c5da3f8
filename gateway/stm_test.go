package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

// TestSTMBankTransfer: concurrent transfers between accounts, each an STM
// that reads two balances and writes both, keep the total constant and no
// balance negative, at every isolation level that checks its reads; conflicts
// are retried.
func TestSTMBankTransfer(t *testing.T) {
	cl := etcdtest.Single(t)
	c := tu.Client(t, cl.Endpoints())
	levels := map[string]gateway.Isolation{
		"serializable-snapshot": gateway.SerializableSnapshot,
		"serializable":          gateway.Serializable,
		"repeatable-reads":      gateway.RepeatableReads,
	}
	for name, iso := range levels {
		t.Run(name, func(t *testing.T) {
			ctx := tu.Ctx(t)
			const accounts, start, workers, transfers = 5, 100, 8, 25
			key := func(i int) string { return fmt.Sprintf("bank/%s/%d", name, i) }
			for i := range accounts {
				tu.Must[*gateway.PutResponse](t)(c.Put(ctx, key(i), strconv.Itoa(start)))
			}
			balance := func(s *gateway.STM, k string) (int, error) {
				v, _, err := s.Get(k)
				if err != nil {
					return 0, err
				}
				return strconv.Atoi(v)
			}
			var runs, commits atomic.Int64
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 99))
					for range transfers {
						from, to := rng.IntN(accounts), rng.IntN(accounts-1)
						if to >= from {
							to++
						}
						amount := 1 + rng.IntN(30)
						_, err := c.RunSTM(ctx, func(s *gateway.STM) error {
							runs.Add(1)
							a, err := balance(s, key(from))
							if err != nil {
								return err
							}
							b, err := balance(s, key(to))
							if err != nil {
								return err
							}
							if a < amount {
								return nil // not enough: nothing to write
							}
							s.Put(key(from), strconv.Itoa(a-amount))
							s.Put(key(to), strconv.Itoa(b+amount))
							return nil
						}, gateway.WithIsolation(iso))
						if err != nil {
							t.Error(err)
							return
						}
						commits.Add(1)
					}
				})
			}
			wg.Wait()
			total := 0
			for i := range accounts {
				v := tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, key(i)))
				n, _ := strconv.Atoi(string(v.Value))
				if n < 0 {
					t.Errorf("account %d is at %d", i, n)
				}
				total += n
			}
			tu.Eq(t, "total", total, accounts*start)
			tu.Eq(t, "transactions committed", commits.Load(), int64(workers*transfers))
			t.Logf("%d runs of apply for %d commits", runs.Load(), commits.Load())
		})
	}
}

// TestSTMAbortAndPrefetch: an error from apply writes nothing; prefetched
// keys are read in one snapshot; a transaction's own writes are what it reads
// back.
func TestSTMAbortAndPrefetch(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "stm/a", "1"))
	boom := errors.New("boom")
	_, err := c.RunSTM(ctx, func(s *gateway.STM) error {
		s.Put("stm/a", "2")
		return boom
	})
	tu.Is(t, err, gateway.ErrSTMAborted, boom)
	tu.Eq(t, "after an abort", string(tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, "stm/a")).Value), "1")

	_, err = c.RunSTM(ctx, func(s *gateway.STM) error {
		v, ok, err := s.Get("stm/b")
		if err != nil || ok || v != "" {
			return fmt.Errorf("absent key: %q %v %v", v, ok, err)
		}
		s.Put("stm/b", "new")
		if v, ok, _ := s.Get("stm/b"); !ok || v != "new" {
			return fmt.Errorf("own write read back as %q %v", v, ok)
		}
		s.Delete("stm/a")
		if _, ok, _ := s.Get("stm/a"); ok {
			return errors.New("own delete not seen")
		}
		return nil
	}, gateway.WithPrefetch("stm/a", "stm/b"))
	tu.NoErr(t, err)
	_, err = c.GetOne(ctx, "stm/a")
	tu.Is(t, err, gateway.ErrKeyNotFound)

	// A conflict makes apply run again, on fresh reads.
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "stm/n", "0"))
	runs := 0
	_, err = c.RunSTM(ctx, func(s *gateway.STM) error {
		runs++
		v, _, err := s.Get("stm/n")
		if err != nil {
			return err
		}
		if runs == 1 { // someone else writes between our read and our commit
			if _, err := c.Put(context.Background(), "stm/n", "10"); err != nil {
				return err
			}
		}
		n, _ := strconv.Atoi(v)
		s.Put("stm/n", strconv.Itoa(n+1))
		return nil
	})
	tu.NoErr(t, err)
	tu.Eq(t, "runs of apply", runs, 2)
	tu.Eq(t, "counter", string(tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, "stm/n")).Value), "11")
}
