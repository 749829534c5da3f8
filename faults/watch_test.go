package faults_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
)

// seenEvent is one event as a watcher delivered it.
type seenEvent struct {
	key string
	rev int64
}

// watcher collects what one watch delivers until it ends.
type watcher struct {
	mu     sync.Mutex
	events []seenEvent
	err    error // why the watch ended, once it has
	ended  chan struct{}
}

func startWatcher(ctx context.Context, t *testing.T, c *gateway.Client, from int64) *watcher {
	t.Helper()
	w, err := c.WatchPrefix(ctx, "wt/", gateway.WithRev(from))
	if err != nil {
		t.Fatal(err)
	}
	wr := &watcher{ended: make(chan struct{})}
	go func() {
		defer close(wr.ended)
		for r := range w.Events() {
			wr.mu.Lock()
			for _, ev := range r.Events {
				wr.events = append(wr.events, seenEvent{string(ev.Kv.Key), ev.Kv.ModRevision})
			}
			wr.mu.Unlock()
		}
		wr.mu.Lock()
		wr.err = w.Err()
		wr.mu.Unlock()
	}()
	return wr
}

func (w *watcher) lastRev() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.events) == 0 {
		return 0
	}
	return w.events[len(w.events)-1].rev
}

// compare reports how what the watcher saw differs from want: the first event
// missing, repeated or out of order. A prefix of want is fine when prefixOK.
func (w *watcher) compare(want []seenEvent, prefixOK bool) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, ev := range w.events {
		if i >= len(want) {
			return fmt.Sprintf("event %d (%s at %d) beyond the %d written", i, ev.key, ev.rev, len(want))
		}
		if ev != want[i] {
			return fmt.Sprintf("event %d is %s at %d, want %s at %d (%d delivered, %d written)",
				i, ev.key, ev.rev, want[i].key, want[i].rev, len(w.events), len(want))
		}
	}
	if !prefixOK && len(w.events) != len(want) {
		return fmt.Sprintf("%d events delivered, %d written", len(w.events), len(want))
	}
	return ""
}

// TestWatch: watchers follow a prefix from one revision while writers put new
// keys and members die, freeze and lose their connections. Afterwards each
// watcher must have delivered every revision written, once and in order; the
// keys read back from the server are the truth. Then one watcher is cut off
// while history is compacted past it: it must end with a compaction error, having
// delivered a gapless prefix.
func TestWatch(t *testing.T) {
	etcd := newCluster(t)
	const watchers, writers = 3, 2
	actors := newActors(t, etcd, watchers+writers+1)
	nem := newNemesis(t, etcd, actors[:watchers+writers])
	// Every run resets watchers' connections at least once: resuming is what
	// this workload checks.
	nem.lead("conn-reset")
	c := etcd.Client()
	setup, setupCancel := context.WithTimeout(context.Background(), time.Minute)
	defer setupCancel()
	start, err := c.Put(setup, "wt-start", "")
	if err != nil {
		t.Fatal(err)
	}
	from := start.Header.Revision + 1

	watchCtx, stopWatches := context.WithCancel(context.Background())
	defer stopWatches()
	var ws []*watcher
	for _, a := range actors[:watchers] {
		ws = append(ws, startWatcher(watchCtx, t, a.c, from))
	}
	// The one that will be cut off from a compaction, started now so that it
	// too has every event to deliver.
	late := actors[watchers+writers]
	lw := startWatcher(watchCtx, t, late.c, from)

	ctx, cancel := context.WithTimeout(context.Background(), runFor())
	defer cancel()
	nem.start(ctx)
	var wg sync.WaitGroup
	for _, a := range actors[watchers : watchers+writers] {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				callCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, _ = a.c.Put(callCtx, fmt.Sprintf("wt/%d-%06d", a.id, n), "")
				cancel()
			}
		})
	}
	wg.Wait()
	faults := nem.stop()

	check, checkCancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer checkCancel()
	// The truth: every key written (each once), in revision order.
	r, err := c.GetPrefix(check, "wt/")
	if err != nil {
		t.Fatal(err)
	}
	want := make([]seenEvent, 0, len(r.Kvs))
	for _, kv := range r.Kvs {
		want = append(want, seenEvent{string(kv.Key), kv.ModRevision})
	}
	slices.SortFunc(want, func(a, b seenEvent) int { return int(a.rev - b.rev) })
	if len(want) == 0 {
		t.Fatal("nothing was written: the workload did not run")
	}
	last := want[len(want)-1].rev

	v := &violations{t: t}
	ops := 0
	for i, w := range append(ws, lw) {
		deadline := time.Now().Add(30 * time.Second)
		for w.lastRev() < last && time.Now().Before(deadline) {
			select {
			case <-w.ended:
				w.mu.Lock()
				v.add("watcher %d ended: %v", i, w.err)
				w.mu.Unlock()
				deadline = time.Now()
			case <-time.After(20 * time.Millisecond):
			}
		}
		if diff := w.compare(want, false); diff != "" {
			v.add("watcher %d: %s", i, diff)
		}
		ops += len(want)
	}

	// Compaction: cut the late watcher off (its connections closed, new ones
	// silent), write and compact past it, then let it back.
	for _, p := range late.proxies {
		p.Blackhole()
		p.Cut()
	}
	var more []seenEvent
	for n := range 20 {
		pr, err := c.Put(check, fmt.Sprintf("wt/late-%02d", n), "")
		if err != nil {
			t.Fatal(err)
		}
		more = append(more, seenEvent{fmt.Sprintf("wt/late-%02d", n), pr.Header.Revision})
	}
	if _, err := c.Compact(check, more[len(more)-1].rev); err != nil {
		t.Fatal(err)
	}
	for _, p := range late.proxies {
		p.Heal()
	}
	select {
	case <-lw.ended:
		lw.mu.Lock()
		if !errors.Is(lw.err, gateway.ErrCompacted) {
			v.add("watcher cut off from a compaction ended with %v, want a compaction error", lw.err)
		}
		lw.mu.Unlock()
	case <-time.After(30 * time.Second):
		v.add("watcher cut off from a compaction still runs after 30s (last revision %d)", lw.lastRev())
	}
	if diff := lw.compare(append(want, more...), true); diff != "" {
		v.add("watcher cut off from a compaction: %s", diff)
	}
	stopWatches()
	for _, w := range ws {
		<-w.ended
	}
	faults["compaction"] = 1
	t.Logf("%d revisions written, delivered to %d watchers", len(want), len(ws)+1)
	record(t, row{workload: "watch", faults: faults, ops: ops, violations: v.report(),
		catches: "an event lost, repeated or out of order across resumptions, a watch cut off from compacted history not told"})
}
