package faults_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/etcdgw/etcdgw/gateway"
)

type kvKind int

const (
	kvGet kvKind = iota
	kvPut
	kvCAS
)

type kvInput struct {
	kind     kvKind
	key      string
	value    string // put, and the new value of a CAS
	expected string // CAS: the value it expects ("" means absent)
	coalesce bool   // get and CAS: as a transaction marked Txn.Coalesce
}

type kvOutput struct {
	value   string // get
	rev     int64  // get: the revision it reports it read at
	ok      bool   // CAS: it swapped
	unknown bool   // put or CAS whose outcome the client could not learn
}

// kvModel is a register per key: each key's history is checked on its own.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(kvInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(string), input.(kvInput), output.(kvOutput)
		switch in.kind {
		case kvGet:
			return out.value == st, st
		case kvPut:
			return true, in.value
		default: // CAS
			swaps := st == in.expected
			switch {
			case out.unknown && swaps:
				return true, in.value
			case out.unknown:
				return true, st
			case out.ok:
				return swaps, in.value
			default:
				return !swaps, st
			}
		}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		switch in.kind {
		case kvGet:
			return fmt.Sprintf("get(%s) → %q at revision %d%s", in.key, out.value, out.rev, coalesced(in))
		case kvPut:
			if out.unknown {
				return fmt.Sprintf("put(%s, %q) → ?", in.key, in.value)
			}
			return fmt.Sprintf("put(%s, %q)", in.key, in.value)
		default:
			r := fmt.Sprint(out.ok)
			if out.unknown {
				r = "?"
			}
			return fmt.Sprintf("cas(%s, %q → %q) → %s%s", in.key, in.expected, in.value, r, coalesced(in))
		}
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%q", state) },
}

func coalesced(in kvInput) string {
	if in.coalesce {
		return " (Txn.Coalesce)"
	}
	return ""
}

// checkLinearizable runs porcupine over the history; on a failure it writes the
// HTML visualisation and says where. It returns the number of violations (0 or 1).
func checkLinearizable(t *testing.T, name string, ops []porcupine.Operation) int {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(kvModel, ops, 2*time.Minute)
	if res == porcupine.Ok {
		return 0
	}
	dir := os.Getenv("FAULTS_OUT")
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("etcdgw-%s-%d.html", name, time.Now().UnixNano()))
	if err := porcupine.VisualizePath(kvModel, info, path); err != nil {
		t.Errorf("visualisation: %v", err)
	}
	t.Errorf("%s: history of %d operations is %s (porcupine); visualisation: %s", name, len(ops), res, path)
	return 1
}

// TestKVCheckerCatchesStaleRead feeds the checker a history with a stale read, so
// that a broken model or check cannot pass unnoticed.
func TestKVCheckerCatchesStaleRead(t *testing.T) {
	ops := []porcupine.Operation{
		{ClientId: 0, Input: kvInput{kind: kvPut, key: "x", value: "a"}, Call: 0, Output: kvOutput{}, Return: 10},
		{ClientId: 0, Input: kvInput{kind: kvPut, key: "x", value: "b"}, Call: 20, Output: kvOutput{}, Return: 30},
		{ClientId: 1, Input: kvInput{kind: kvGet, key: "x"}, Call: 40, Output: kvOutput{value: "a"}, Return: 50},
	}
	res, info := porcupine.CheckOperationsVerbose(kvModel, ops, time.Minute)
	if res != porcupine.Illegal {
		t.Fatalf("a stale read checked %s", res)
	}
	path := filepath.Join(t.TempDir(), "stale.html")
	if err := porcupine.VisualizePath(kvModel, info, path); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Fatalf("no visualisation: %v", err)
	}
	// An unknown put may have happened or not; both readings are legal.
	ops[1].Output, ops[1].Return = kvOutput{unknown: true}, math.MaxInt64/2
	if res := porcupine.CheckOperations(kvModel, ops); !res {
		t.Fatal("an unknown put made the history illegal")
	}
	ops[1].Input = kvInput{kind: kvCAS, key: "x", value: "b", expected: "z"}
	ops[1].Output, ops[1].Return = kvOutput{ok: false}, 30
	if res := porcupine.CheckOperations(kvModel, ops); !res {
		t.Fatal("a CAS that failed as it should made the history illegal")
	}
	ops[1].Input = kvInput{kind: kvCAS, key: "x", value: "b", expected: "a"}
	ops[1].Output = kvOutput{ok: true}
	if res := porcupine.CheckOperations(kvModel, ops); res {
		t.Fatal("a CAS that swapped, then a read of the old value, passed")
	}
}

// TestReadRevisionCheckerCatches feeds checkReadRevisions reads that report a
// revision other than the one they read at.
func TestReadRevisionCheckerCatches(t *testing.T) {
	put := func(val string, rev int64) gateway.Event {
		return gateway.Event{Type: gateway.EventPut, Kv: gateway.KeyValue{Key: []byte("x"), Value: []byte(val), ModRevision: rev}}
	}
	evs := []gateway.Event{put("a", 2), put("b", 3),
		{Type: gateway.EventDelete, Kv: gateway.KeyValue{Key: []byte("x"), ModRevision: 5}}}
	get := func(val string, rev int64) porcupine.Operation {
		return porcupine.Operation{Input: kvInput{kind: kvGet, key: "x"}, Output: kvOutput{value: val, rev: rev}}
	}
	for _, tc := range []struct {
		read porcupine.Operation
		bad  bool
	}{
		{get("", 1), false}, {get("a", 2), false}, {get("b", 4), false}, {get("", 5), false},
		{get("a", 3), true}, // read before the put of revision 3, reported after it
		{get("b", 2), true}, // shows a write of a later revision
		{get("b", 6), true}, // shows a key deleted at revision 5
	} {
		v := &violations{t: t}
		checkReadRevisions([]porcupine.Operation{tc.read}, evs, v)
		if got := len(v.list) > 0; got != tc.bad {
			t.Errorf("%s: violation %v, want %v", kvModel.DescribeOperation(tc.read.Input, tc.read.Output), got, tc.bad)
		}
	}
}

// TestKV: clients put, get and compare-and-swap a few keys while members are
// killed, frozen and cut off (half the gets and CASes as coalescable
// transactions); the whole history, with the calls whose outcome is
// unknown, must be linearizable, and no write may be applied twice (each
// writes a value of its own).
func TestKV(t *testing.T) {
	const kvCallers = 3
	etcd := newCluster(t)
	actors := newActors(t, etcd, 6)
	nem := newNemesis(t, etcd, actors)
	// Every run resets connections with writes in flight at least once: the
	// check that no write is applied twice needs replies lost after applying.
	nem.lead("conn-reset")
	// Eight keys: porcupine checks each key's history alone, and with three
	// callers per client and unknown outcomes held open to the end, four keys
	// made histories it could not finish in its two minutes.
	keys := []string{"kv/a", "kv/b", "kv/c", "kv/d", "kv/e", "kv/f", "kv/g", "kv/h"}

	begin := time.Now()
	now := func() int64 { return int64(time.Since(begin)) }
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		unknown []int // indexes of operations whose outcome is unknown
	)
	ctx, cancel := context.WithTimeout(context.Background(), runFor())
	defer cancel()
	nem.start(ctx)
	var wg sync.WaitGroup
	for _, a := range actors {
		// Several callers share each actor's client, so that their calls
		// are coalesced into batches.
		for g := range kvCallers {
			wg.Go(func() {
				id := a.id*kvCallers + g
				rng := rand.New(rand.NewPCG(uint64(id), 7))
				last := map[string]string{} // the last value this caller read, for CAS
				for n := 0; ctx.Err() == nil; n++ {
					key := keys[rng.IntN(len(keys))]
					in := kvInput{key: key, value: fmt.Sprintf("c%d-%d", id, n)}
					switch r := rng.IntN(10); {
					case r < 4:
						in.kind = kvGet
					case r < 7:
						in.kind = kvPut
					default:
						in.kind, in.expected = kvCAS, last[key]
					}
					// Half the gets and CASes are coalescable transactions,
					// which batches hold among the plain calls.
					in.coalesce = in.kind != kvPut && rng.IntN(2) == 0
					// Each call has its own deadline, not the workload's: a call
					// cut short by the end of the run would be an unknown.
					callCtx, callCancel := context.WithTimeout(context.Background(), 5*time.Second)
					call := now()
					out, err := kvDo(callCtx, a.c, in)
					ret := now()
					callCancel()
					if err != nil && in.kind == kvGet {
						continue // a failed read changes nothing
					}
					if err != nil {
						out = kvOutput{unknown: true}
					}
					if in.kind == kvGet {
						last[key] = out.value
					}
					mu.Lock()
					if out.unknown {
						unknown = append(unknown, len(history))
					}
					history = append(history, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	faults := nem.stop()
	// An unknown write may take effect at any time after its call: it returns
	// after everything else.
	end := now() + 1
	for _, i := range unknown {
		history[i].Return = end
	}
	v := checkLinearizable(t, "kv", history)
	checkCtx, checkCancel := context.WithTimeout(context.Background(), time.Minute)
	defer checkCancel()
	evs := readHistory(checkCtx, t, etcd.Client(), "kv/")
	v += checkAppliedOnce(t, evs)
	reads := &violations{t: t}
	checkReadRevisions(history, evs, reads)
	v += reads.report()
	t.Logf("%d operations, %d with unknown outcome", len(history), len(unknown))
	record(t, row{workload: "kv", faults: faults, ops: len(history), violations: v,
		catches: "a history that is not linearizable (stale or lost reads, lost or reordered writes), a write applied twice, a read reporting a revision it did not read at"})
}

// checkReadRevisions: every read reports the revision it was served at, and
// what it returned must be what its key held at that revision in the write
// history evs (in revision order). Code that reads and then watches from the
// read's revision + 1 relies on it: a read that reports a later revision than
// the one it read at makes such a watch miss the writes in between.
func checkReadRevisions(history []porcupine.Operation, evs []gateway.Event, v *violations) {
	byKey := map[string][]gateway.Event{}
	for _, ev := range evs {
		k := string(ev.Kv.Key)
		byKey[k] = append(byKey[k], ev)
	}
	for _, op := range history {
		in, out := op.Input.(kvInput), op.Output.(kvOutput)
		if in.kind != kvGet {
			continue
		}
		es := byKey[in.key]
		i := sort.Search(len(es), func(i int) bool { return es[i].Kv.ModRevision > out.rev })
		held := ""
		if i > 0 && es[i-1].Type == gateway.EventPut {
			held = string(es[i-1].Kv.Value)
		}
		if held != out.value {
			v.add("get(%s) returned %q and reported revision %d, where the key held %q", in.key, out.value, out.rev, held)
		}
	}
}

// checkAppliedOnce: every value was written by one operation, so at most one
// put event may carry it; two mean that a write was applied twice (sent again
// after its outcome became unknown).
func checkAppliedOnce(t *testing.T, evs []gateway.Event) int {
	v := &violations{t: t}
	seen := map[string]int64{}
	for _, ev := range evs {
		if ev.Type != gateway.EventPut {
			continue
		}
		val := string(ev.Kv.Value)
		if rev, ok := seen[val]; ok {
			v.add("%s = %q written at revision %d and again at %d: one write applied twice", ev.Kv.Key, val, rev, ev.Kv.ModRevision)
		}
		seen[val] = ev.Kv.ModRevision
	}
	return v.report()
}

func kvDo(ctx context.Context, c *gateway.Client, in kvInput) (kvOutput, error) {
	switch in.kind {
	case kvGet:
		var r *gateway.GetResponse
		var rev int64
		if in.coalesce {
			t, err := c.Txn().Then(gateway.OpGet(in.key)).Coalesce().Commit(ctx)
			if err != nil {
				return kvOutput{}, err
			}
			r, rev = t.Responses[0].Get, t.Header.Revision
		} else {
			var err error
			if r, err = c.Get(ctx, in.key); err != nil {
				return kvOutput{}, err
			}
			rev = r.Header.Revision
		}
		out := kvOutput{rev: rev} // absent: ""
		if len(r.Kvs) > 0 {
			out.value = string(r.Kvs[0].Value)
		}
		return out, nil
	case kvPut:
		_, err := c.Put(ctx, in.key, in.value)
		return kvOutput{}, err
	default:
		cmp := gateway.CmpValue(in.key, gateway.Equal, in.expected)
		if in.expected == "" {
			cmp = gateway.CmpVersion(in.key, gateway.Equal, 0) // absent
		}
		txn := c.Txn().If(cmp).Then(gateway.OpPut(in.key, in.value))
		if in.coalesce {
			txn.Coalesce()
		}
		r, err := txn.Commit(ctx)
		if err != nil {
			return kvOutput{}, err
		}
		return kvOutput{ok: r.Succeeded}, nil
	}
}

// TestKVSameKeys: many callers on each client write the same few keys and
// delete them, so that coalesced batches meet writes to one key (which must go
// in separate txns) all the time. Every put makes its own event, exactly once;
// an acknowledged put is never lost; nothing is written that no put wrote.
func TestKVSameKeys(t *testing.T) {
	const callers = 8
	etcd := newCluster(t)
	actors := newActors(t, etcd, 3)
	nem := newNemesis(t, etcd, actors)
	nem.lead("conn-reset")
	keys := []string{"same/a", "same/b", "same/c"}
	var (
		mu      sync.Mutex
		acked   = map[string]bool{} // value → its put was acknowledged
		issued  = map[string]bool{}
		ops     int
		deletes int
	)
	ctx, cancel := context.WithTimeout(context.Background(), runFor())
	defer cancel()
	nem.start(ctx)
	var wg sync.WaitGroup
	for _, a := range actors {
		for g := range callers {
			wg.Go(func() {
				id := a.id*callers + g
				rng := rand.New(rand.NewPCG(uint64(id), 11))
				for n := 0; ctx.Err() == nil; n++ {
					key := keys[rng.IntN(len(keys))]
					callCtx, callCancel := context.WithTimeout(context.Background(), 5*time.Second)
					if rng.IntN(10) < 3 {
						_, err := a.c.Delete(callCtx, key)
						callCancel()
						mu.Lock()
						ops++
						if err == nil {
							deletes++
						}
						mu.Unlock()
						continue
					}
					val := fmt.Sprintf("s%d-%d", id, n)
					mu.Lock()
					issued[val] = true
					mu.Unlock()
					_, err := a.c.Put(callCtx, key, val)
					callCancel()
					mu.Lock()
					ops++
					acked[val] = err == nil
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	faults := nem.stop()
	checkCtx, checkCancel := context.WithTimeout(context.Background(), time.Minute)
	defer checkCancel()
	evs := readHistory(checkCtx, t, etcd.Client(), "same/")
	vio := &violations{t: t}
	seen := map[string]bool{}
	for _, ev := range evs {
		if ev.Type != gateway.EventPut {
			continue
		}
		val := string(ev.Kv.Value)
		if !issued[val] {
			vio.add("%s = %q at revision %d: no put wrote it", ev.Kv.Key, val, ev.Kv.ModRevision)
		}
		seen[val] = true
	}
	for val, ok := range acked {
		if ok && !seen[val] {
			vio.add("the put of %q was acknowledged and never applied", val)
		}
	}
	v := vio.report() + checkAppliedOnce(t, evs)
	t.Logf("%d operations (%d acknowledged deletes), %d put events", ops, deletes, len(seen))
	record(t, row{workload: "kv same keys", faults: faults, ops: ops, violations: v,
		catches: "a write lost, applied twice or invented when many callers of one client write the same keys (coalesced batches split by key)"})
}
