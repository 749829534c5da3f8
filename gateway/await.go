package gateway

// Await and the shared watch streams behind it.
//
// Every lock, election, barrier and queue wait is "tell me when this key (or
// range) may have changed after revision rev". Over HTTP/1.1 a watch holds a
// connection for its life, and closing it mid-stream resets the connection: a
// watch per wait costs a TCP connection per wait. Await instead subscribes to a
// shared watch stream on the wait's scope (the key's parent prefix: everything
// up to its last '/'), which dispatches events to every local waiter in that
// scope and outlives them: it stops after sharedIdle without waiters, when it
// fails, or when the client closes.
//
// A waiter must see every event after its own revision. The stream keeps its
// recent events (up to sharedKeep) and the revision before the oldest of them
// (base): a waiter whose revision is at least base finds the events it missed
// in that buffer and the rest live. A waiter from before base, or a stream that
// ended, cannot be sure: Await returns nil, and the caller reads the state
// again, which is what it would do after any event.

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"
)

const (
	sharedIdle = 30 * time.Second // a shared stream without waiters stops after this
	sharedKeep = 1024             // events a shared stream keeps for late subscribers
)

// Await waits until key, or the range that opts give (WithPrefix, WithRange,
// WithFromKey), may have changed after revision rev, and returns nil: read
// the state again. It returns after an event in the range with a revision
// above rev (WithFilterPut or WithFilterDelete leave out puts or deletes), and
// also whenever it cannot tell (the history from rev was compacted, the shared
// stream ended); a caller that reads the state again after nil is always
// right. It returns ctx's error when ctx ends, and the watch's error when the
// server refuses it (ErrPermissionDenied, ErrClosed).
//
// Waits in one process share one watch stream per scope (the key's prefix up
// to its last '/', or the range), so they cost no connection each.
func (c *Client) Await(ctx context.Context, key string, rev int64, opts ...Option) error {
	o := newOp(opGet, key, "", opts)
	if err := o.validate("watch"); err != nil {
		return err
	}
	o = c.inNS(o)
	s := &subscriber{key: o.key, end: o.end, rev: rev, noPut: o.filterPut, noDelete: o.filterDelete,
		match: c.matchInNS(o.match), fire: make(chan struct{}, 1)}
	sh, err := c.hub().join(ctx, c, scopeOf(&o), rev)
	if err != nil {
		return settle(ctx, err)
	}
	if !sh.subscribe(s) {
		return nil // the stream cannot vouch for everything after rev, or it has an event for us
	}
	select {
	case <-s.fire:
		if err := sh.ended(); err != nil {
			return settle(ctx, err)
		}
		return nil
	case <-ctx.Done():
		sh.unsubscribe(s)
		return ctx.Err()
	}
}

// Waiters returns how many Await calls wait now on this client's shared watch
// streams (a lock's, election's, barrier's or queue's waiters): a gauge for
// metrics, and the way to know that a waiter has queued.
func (c *Client) Waiters() int {
	h := c.hub()
	h.mu.Lock()
	streams := make([]*sharedStream, 0, len(h.streams))
	for _, sh := range h.streams {
		streams = append(streams, sh)
	}
	h.mu.Unlock()
	n := 0
	for _, sh := range streams {
		sh.mu.Lock()
		n += len(sh.subs)
		sh.mu.Unlock()
	}
	return n
}

// settle turns the error of a stream that could not start or ended into
// Await's result: compaction means "read again".
func settle(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, ErrCompacted), errors.Is(err, ErrWatchCanceled):
		return nil
	}
	var ce *CompactedError
	if errors.As(err, &ce) {
		return nil
	}
	return err
}

// scope is the range a shared stream watches.
type scope struct{ key, end []byte }

func (s scope) id() string { return string(s.key) + "\x00" + string(s.end) }

// scopeOf is the shared scope of a wait: its range, or for a single key the
// prefix up to and including its last '/' (the key alone if it has none).
func scopeOf(o *Op) scope {
	if len(o.end) > 0 {
		return scope{o.key, o.end}
	}
	if i := bytes.LastIndexByte(o.key, '/'); i >= 0 {
		p := o.key[:i+1]
		return scope{p, PrefixEnd(p)}
	}
	return scope{key: o.key}
}

// subscriber is one waiter.
type subscriber struct {
	key, end        []byte
	rev             int64
	noPut, noDelete bool
	match           func(*Event, []Event) bool // WithMatch's, or nil
	fire            chan struct{}              // gets one token when the waiter should look again
}

// wants reports whether evs[i] is a change the waiter waits for. evs are in
// revision order.
func (s *subscriber) wants(evs []Event, i int) bool {
	e := &evs[i]
	if e.Kv.ModRevision <= s.rev {
		return false
	}
	if e.Type == EventPut && s.noPut || e.Type == EventDelete && s.noDelete {
		return false
	}
	o := Op{key: s.key, end: s.end}
	if !covers(&o, e.Kv.Key) {
		return false
	}
	if s.match == nil {
		return true
	}
	lo, hi := i, i+1
	for lo > 0 && evs[lo-1].Kv.ModRevision == e.Kv.ModRevision {
		lo--
	}
	for hi < len(evs) && evs[hi].Kv.ModRevision == e.Kv.ModRevision {
		hi++
	}
	return s.match(e, evs[lo:hi])
}

// matchInNS returns m for events in wire form: it strips the client's
// namespace from copies of them first.
func (c *Client) matchInNS(m func(*Event, []Event) bool) func(*Event, []Event) bool {
	if m == nil || len(c.ns) == 0 {
		return m
	}
	return func(e *Event, rev []Event) bool {
		evs := make([]Event, len(rev))
		at := 0
		for i := range rev {
			evs[i] = rev[i]
			evs[i].PrevKv = nil
			evs[i].Kv.Key = c.strip(rev[i].Kv.Key)
			if &rev[i] == e {
				at = i
			}
		}
		return m(&evs[at], evs)
	}
}

// hubState is a client's shared streams, by scope.
type hubState struct {
	mu      sync.Mutex
	closed  bool
	streams map[string]*sharedStream
	wg      sync.WaitGroup // the dispatch goroutines
}

func (c *Client) hub() *hubState { return &c.state.hub }

// sharedStream is one watch on a scope and its waiters.
type sharedStream struct {
	h     *hubState
	id    string
	ready chan struct{} // closed once the watch is open, or failed to open

	mu    sync.Mutex
	w     *Watch
	err   error // why it ended; set once, with done
	done  bool
	base  int64 // every event after base is in buf, or still to come
	buf   []Event
	subs  map[*subscriber]struct{}
	since time.Time // when the last waiter left
}

// join returns the open stream on sc, opening it from after rev if there is
// none.
func (h *hubState) join(ctx context.Context, c *Client, sc scope, rev int64) (*sharedStream, error) {
	id := sc.id()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, localError("watch", ErrClosed, "")
	}
	sh := h.streams[id]
	if sh == nil {
		if h.streams == nil {
			h.streams = map[string]*sharedStream{}
		}
		sh = &sharedStream{h: h, id: id, ready: make(chan struct{}), base: rev,
			subs: map[*subscriber]struct{}{}, since: time.Now()}
		h.streams[id] = sh
		h.mu.Unlock()
		sh.open(c, sc, rev)
	} else {
		h.mu.Unlock()
	}
	select {
	case <-sh.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.done && sh.w == nil {
		return nil, sh.err
	}
	return sh, nil
}

// open starts the watch, unnamespaced (the scope is in wire form already), and
// the goroutine that dispatches its events.
func (sh *sharedStream) open(c *Client, sc scope, rev int64) {
	defer close(sh.ready)
	root := *c
	root.ns = nil
	opts := []Option{WithRev(rev + 1)}
	if len(sc.end) > 0 {
		opts = append(opts, WithRange(string(sc.end)))
	}
	w, err := root.Watch(context.Background(), string(sc.key), opts...)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if err != nil {
		sh.finish(err)
		return
	}
	sh.w = w
	sh.h.mu.Lock()
	closed := sh.h.closed
	if !closed {
		sh.h.wg.Add(1)
	}
	sh.h.mu.Unlock()
	if closed {
		w.Stop()
		sh.finish(localError("watch", ErrClosed, ""))
		return
	}
	go sh.dispatch()
}

// dispatch delivers the watch's events to the waiters, and stops the watch
// when it has had no waiter for sharedIdle.
func (sh *sharedStream) dispatch() {
	defer sh.h.wg.Done()
	tick := time.NewTicker(sharedIdle / 4)
	defer tick.Stop()
	for {
		select {
		case r, ok := <-sh.w.Events():
			if !ok {
				sh.mu.Lock()
				sh.finish(sh.w.Err())
				sh.mu.Unlock()
				return
			}
			sh.deliver(r.Events)
		case <-tick.C:
			sh.mu.Lock()
			idle := len(sh.subs) == 0 && time.Since(sh.since) > sharedIdle
			if idle {
				sh.finish(nil)
			}
			sh.mu.Unlock()
			if idle {
				sh.w.Stop()
				return
			}
		}
	}
}

// deliver keeps evs and wakes the waiters that want one of them.
func (sh *sharedStream) deliver(evs []Event) {
	if len(evs) == 0 {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.buf = append(sh.buf, evs...)
	if over := len(sh.buf) - sharedKeep; over > 0 {
		sh.base = sh.buf[over-1].Kv.ModRevision
		sh.buf = append(sh.buf[:0], sh.buf[over:]...)
	}
	for s := range sh.subs {
		for i := range evs {
			if s.wants(evs, i) {
				s.fire <- struct{}{}
				sh.drop(s)
				break
			}
		}
	}
}

// subscribe adds s, or reports false when s need not wait: the buffer holds an
// event it wants, the stream cannot vouch for every event after s.rev, or it
// has ended.
func (sh *sharedStream) subscribe(s *subscriber) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.done || s.rev < sh.base {
		return false
	}
	for i := range sh.buf {
		if s.wants(sh.buf, i) {
			return false
		}
	}
	sh.subs[s] = struct{}{}
	return true
}

func (sh *sharedStream) unsubscribe(s *subscriber) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.drop(s)
}

// drop removes s. sh.mu is held.
func (sh *sharedStream) drop(s *subscriber) {
	delete(sh.subs, s)
	if len(sh.subs) == 0 {
		sh.since = time.Now()
	}
}

// finish ends the stream with err, wakes every waiter and forgets the stream.
// sh.mu is held.
func (sh *sharedStream) finish(err error) {
	if sh.done {
		return
	}
	sh.done, sh.err = true, err
	for s := range sh.subs {
		s.fire <- struct{}{}
	}
	clear(sh.subs)
	sh.h.mu.Lock()
	if sh.h.streams[sh.id] == sh {
		delete(sh.h.streams, sh.id)
	}
	sh.h.mu.Unlock()
}

// ended returns why the stream ended (nil while it runs, or after an idle
// stop).
func (sh *sharedStream) ended() error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.err
}

// close stops every shared stream and joins their goroutines (Client.Close,
// after it has stopped the watches themselves).
func (h *hubState) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.wg.Wait()
}
