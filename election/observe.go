package election

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/etcdgw/etcdgw/gateway"
)

// Leadership is one state of an election: who leads, as of a revision.
type Leadership struct {
	// Leader is the leader's key, value and term (CreateRevision); nil when
	// no candidate is left.
	Leader *gateway.KeyValue
	// Revision is the store revision at which this was the state.
	Revision int64
}

// Observe reports every change of leadership of the election name: a new
// leader, a new value proclaimed, or no leader. The first value is the state
// when Observe starts. The channel is closed when ctx ends, which is the only
// way Observe ends: failures are retried with backoff.
//
// Observe follows every candidate's key through one watch, so it derives each
// change from the events themselves and reports them in revision order,
// never an older leader after a newer one. Only when the watch's history was
// compacted away does it re-read the state; changes inside the lost history
// are then summed up as the state it reads.
func Observe(ctx context.Context, c *gateway.Client, name string) <-chan Leadership {
	ch := make(chan Leadership)
	go func() {
		defer close(ch)
		o := observer{c: c, pfx: name + "/", out: ch}
		o.run(ctx)
	}()
	return ch
}

type observer struct {
	c     *gateway.Client
	pfx   string
	out   chan<- Leadership
	cands map[string]gateway.KeyValue
	last  *Leadership // last reported
}

func (o *observer) run(ctx context.Context) {
	retry := backoff.NewExponentialBackOff()
	retry.MaxElapsedTime = 0
	for ctx.Err() == nil {
		err := o.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, gateway.ErrCompacted) {
			retry.Reset()
			continue
		}
		select {
		case <-time.After(retry.NextBackOff()):
		case <-ctx.Done():
		}
	}
}

// follow reads every candidate, reports the state, then applies the watch's
// events until it fails.
func (o *observer) follow(ctx context.Context) error {
	r, err := o.c.GetPrefix(ctx, o.pfx)
	if err != nil {
		return err
	}
	o.cands = make(map[string]gateway.KeyValue, len(r.Kvs))
	for _, kv := range r.Kvs {
		o.cands[string(kv.Key)] = kv
	}
	if !o.report(ctx, r.Header.Revision) {
		return ctx.Err()
	}
	w, err := o.c.WatchPrefix(ctx, o.pfx, gateway.WithRev(r.Header.Revision+1))
	if err != nil {
		return err
	}
	defer w.Stop()
	for resp := range w.Events() {
		if len(resp.Events) == 0 {
			continue
		}
		for _, ev := range resp.Events {
			if ev.Type == gateway.EventDelete {
				delete(o.cands, string(ev.Kv.Key))
			} else {
				o.cands[string(ev.Kv.Key)] = ev.Kv
			}
		}
		if !o.report(ctx, resp.Events[len(resp.Events)-1].Kv.ModRevision) {
			return ctx.Err()
		}
	}
	return w.Err()
}

// report sends the state at rev if it differs from the last one reported.
func (o *observer) report(ctx context.Context, rev int64) bool {
	var leader *gateway.KeyValue
	for _, kv := range o.cands {
		if leader == nil || kv.CreateRevision < leader.CreateRevision {
			leader = &kv
		}
	}
	if o.last != nil {
		if rev <= o.last.Revision || same(o.last.Leader, leader) {
			return true
		}
	}
	l := Leadership{Leader: leader, Revision: rev}
	if leader != nil {
		cp := *leader
		l.Leader = &cp
	}
	select {
	case o.out <- l:
		o.last = &l
		return true
	case <-ctx.Done():
		return false
	}
}

func same(a, b *gateway.KeyValue) bool {
	if a == nil || b == nil {
		return a == b
	}
	return bytes.Equal(a.Key, b.Key) && a.CreateRevision == b.CreateRevision && bytes.Equal(a.Value, b.Value)
}
