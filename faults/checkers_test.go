package faults_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/integration"
)

// The lock checkers must catch what they look for: they are fed histories with
// the faults they exist to find.
func TestLockCheckersCatch(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	count := func(f func(v *violations)) int {
		v := &violations{t: t}
		f(v)
		return len(v.list)
	}
	if n := count(func(v *violations) {
		checkIntervals([]hold{
			{kind: "mutex", token: 1, acquired: at(0), ended: at(100)},
			{kind: "mutex", token: 2, acquired: at(50), ended: at(150)},
		}, v)
	}); n != 1 {
		t.Errorf("overlapping mutex holds: %d violations", n)
	}
	if n := count(func(v *violations) {
		checkIntervals([]hold{
			{kind: "mutex", token: 1, acquired: at(0), ended: at(100)},
			{kind: "mutex", token: 2, acquired: at(100), ended: at(150)},
			{kind: "rw-reader", token: 3, acquired: at(0), ended: at(100)},
			{kind: "rw-reader", token: 4, acquired: at(10), ended: at(100)},
			{kind: "semaphore", token: 5, acquired: at(0), ended: at(100)},
			{kind: "semaphore", token: 6, acquired: at(10), ended: at(100)},
		}, v)
	}); n != 0 {
		t.Errorf("legal holds: %d violations", n)
	}
	if n := count(func(v *violations) {
		checkIntervals([]hold{
			{kind: "rw-reader", token: 3, acquired: at(0), ended: at(100)},
			{kind: "rw-writer", token: 4, acquired: at(10), ended: at(100)},
			{kind: "semaphore", token: 5, acquired: at(0), ended: at(100)},
			{kind: "semaphore", token: 6, acquired: at(10), ended: at(100)},
			{kind: "semaphore", token: 7, acquired: at(20), ended: at(100)},
		}, v)
	}); n != 2 {
		t.Errorf("a writer among readers and a third semaphore holder: %d violations", n)
	}
	if n := count(func(v *violations) {
		checkTokenOrder([]write{{kind: "mutex", token: 5, rev: 10}, {kind: "mutex", token: 3, rev: 11}}, v)
	}); n != 1 {
		t.Errorf("an older token writing after a newer one: %d violations", n)
	}

	// Ownership is read from a real server: two keys in line, and a write
	// claimed by the second, and one by a key that does not exist.
	etcd := integration.New(t, integration.WithBackend(integration.Local))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := etcd.Client()
	first, err := c.Put(ctx, mutexKind.prefix+"a", "")
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Put(ctx, mutexKind.prefix+"b", "")
	if err != nil {
		t.Fatal(err)
	}
	v := &violations{t: t}
	checkOwnership(ctx, t, c, write{kind: "mutex", token: first.Header.Revision, rev: second.Header.Revision}, v)
	if len(v.list) != 0 {
		t.Errorf("the first in line: %v", v.list)
	}
	checkOwnership(ctx, t, c, write{kind: "mutex", token: second.Header.Revision, rev: second.Header.Revision}, v)
	checkOwnership(ctx, t, c, write{kind: "mutex", token: second.Header.Revision + 100, rev: second.Header.Revision}, v)
	if len(v.list) != 2 || !strings.Contains(v.list[0], "not first in line") || !strings.Contains(v.list[1], "gone") {
		t.Errorf("the second in line and a missing key: %v", v.list)
	}
}

// The watch check must catch a missing, a repeated and a reordered event.
func TestWatchCheckerCatches(t *testing.T) {
	want := []seenEvent{{"wt/a", 10}, {"wt/b", 11}, {"wt/c", 12}}
	for name, seen := range map[string][]seenEvent{
		"missing":   {{"wt/a", 10}, {"wt/c", 12}},
		"repeated":  {{"wt/a", 10}, {"wt/b", 11}, {"wt/b", 11}, {"wt/c", 12}},
		"reordered": {{"wt/b", 11}, {"wt/a", 10}, {"wt/c", 12}},
		"short":     {{"wt/a", 10}, {"wt/b", 11}},
	} {
		w := &watcher{events: seen}
		if w.compare(want, false) == "" {
			t.Errorf("%s events passed", name)
		}
	}
	if d := (&watcher{events: want[:2]}).compare(want, true); d != "" {
		t.Errorf("a gapless prefix failed where a prefix is fine: %s", d)
	}
	if d := (&watcher{events: want}).compare(want, false); d != "" {
		t.Errorf("the exact events failed: %s", d)
	}
}
