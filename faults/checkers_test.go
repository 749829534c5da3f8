package faults_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/integration"
)

// watching marks holds as those of holders that watch their loss signal.
func watching(hs ...hold) []hold {
	for i := range hs {
		hs[i].watcher = true
	}
	return hs
}

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
		checkIntervals(watching(
			hold{kind: "mutex", token: 1, acquired: at(0), ended: at(100)},
			hold{kind: "mutex", token: 2, acquired: at(50), ended: at(150)},
		), nil, v)
	}); n != 1 {
		t.Errorf("overlapping mutex holds: %d violations", n)
	}
	if n := count(func(v *violations) {
		checkIntervals(watching(
			hold{kind: "mutex", token: 1, acquired: at(0), ended: at(100)},
			hold{kind: "mutex", token: 2, acquired: at(100), ended: at(150)},
			hold{kind: "rw-reader", token: 3, acquired: at(0), ended: at(100)},
			hold{kind: "rw-reader", token: 4, acquired: at(10), ended: at(100)},
			hold{kind: "semaphore", token: 5, acquired: at(0), ended: at(100)},
			hold{kind: "semaphore", token: 6, acquired: at(10), ended: at(100)},
		), nil, v)
	}); n != 0 {
		t.Errorf("legal holds: %d violations", n)
	}
	if n := count(func(v *violations) {
		checkIntervals(watching(
			hold{kind: "rw-reader", token: 3, acquired: at(0), ended: at(100)},
			hold{kind: "rw-writer", token: 4, acquired: at(10), ended: at(100)},
			hold{kind: "semaphore", token: 5, acquired: at(0), ended: at(100)},
			hold{kind: "semaphore", token: 6, acquired: at(10), ended: at(100)},
			hold{kind: "semaphore", token: 7, acquired: at(20), ended: at(100)},
		), nil, v)
	}); n != 2 {
		t.Errorf("a writer among readers and a third semaphore holder: %d violations", n)
	}
	// A holder that does not watch its loss signal: its hold counts until
	// Unlock when Unlock said it was intact, and not when Unlock reported the
	// loss. A stolen hold does not count, but its holder must have learnt.
	quiet := func(token int64, from, to int, unlock error) hold {
		return hold{kind: "mutex", token: token, acquired: at(from), ended: at(to), unlock: unlock}
	}
	if n := count(func(v *violations) {
		checkIntervals([]hold{quiet(1, 0, 100, nil), quiet(2, 50, 150, nil)}, nil, v)
	}); n != 1 {
		t.Errorf("an Unlock that hid a lost hold: %d violations", n)
	}
	if n := count(func(v *violations) {
		checkIntervals([]hold{quiet(1, 0, 100, errLostHold), quiet(2, 50, 150, nil)}, nil, v)
	}); n != 0 {
		t.Errorf("an Unlock that reported the loss: %d violations", n)
	}
	if n := count(func(v *violations) {
		checkIntervals(watching(hold{kind: "mutex", token: 1, acquired: at(0), ended: at(60)},
			hold{kind: "mutex", token: 2, acquired: at(50), ended: at(150)}), map[int64]bool{1: true}, v)
	}); n != 0 {
		t.Errorf("a stolen hold whose signal came late: %d violations", n)
	}
	if n := count(func(v *violations) {
		stolen := map[int64]bool{1: true, 2: true, 3: true, 4: true}
		checkStolenReported([]hold{
			quiet(1, 0, 100, nil), // never learnt
			quiet(2, 0, 100, errLostHold),
			hold{kind: "mutex", token: 3, watcher: true, signalled: true},
			quiet(4, 0, 100, errors.New("unlock timed out")), // cannot tell
		}, stolen, v)
	}); n != 1 {
		t.Errorf("stolen holds: %d violations, want the one that never learnt", n)
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
