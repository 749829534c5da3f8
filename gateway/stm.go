package gateway

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

// Isolation is how much of the world an STM transaction sees stay still.
type Isolation int

// The isolation levels of RunSTM, strongest first (clientv3's STM has the same
// four).
const (
	// SerializableSnapshot: every read sees the store as of the transaction's
	// first read, and the commit fails if any key read or written changed
	// after that revision. The default.
	SerializableSnapshot Isolation = iota
	// Serializable: every read sees the store as of the first read, and the
	// commit fails if a key read changed since.
	Serializable
	// RepeatableReads: each key is read at most once, at the latest revision,
	// and the commit fails if a key read changed since.
	RepeatableReads
	// ReadCommitted: reads see the latest revision and the commit checks
	// nothing: writes win, whatever was read.
	ReadCommitted
)

// STMOption configures RunSTM.
type STMOption func(*stmConfig)

type stmConfig struct {
	iso      Isolation
	prefetch []string
}

// WithIsolation sets the isolation level (default SerializableSnapshot).
func WithIsolation(iso Isolation) STMOption { return func(c *stmConfig) { c.iso = iso } }

// WithPrefetch reads keys in one request before apply runs, as one snapshot.
func WithPrefetch(keys ...string) STMOption {
	return func(c *stmConfig) { c.prefetch = append(c.prefetch, keys...) }
}

// ErrSTMAborted: apply returned an error; nothing was written. The error
// matches apply's as well.
var ErrSTMAborted = errors.New("gateway: stm aborted")

// STM is one attempt of a software transaction: what apply reads through it
// is remembered, what it writes is buffered, and RunSTM commits the writes in
// one txn whose compares hold only if what was read has not changed. It is
// not safe for concurrent use, and lives only during apply.
type STM struct {
	c      *Client
	ctx    context.Context
	iso    Isolation
	rev    int64 // the snapshot revision: that of the first read; 0 before it
	reads  map[string]stmRead
	writes map[string]stmWrite
}

type stmRead struct {
	value  []byte
	exists bool
	modRev int64 // 0 for an absent key, as etcd compares it
}

type stmWrite struct {
	value  string
	delete bool
	opts   []Option
}

// Get returns key's value as the transaction sees it: its own write if it
// wrote the key, otherwise the value read (at the snapshot revision, for the
// serializable levels); "" and false for an absent key.
func (s *STM) Get(key string) (string, bool, error) {
	if w, ok := s.writes[key]; ok {
		return w.value, !w.delete, nil
	}
	r, err := s.read(key)
	return string(r.value), r.exists, err
}

// Rev returns the modification revision of key as read (0 when absent).
func (s *STM) Rev(key string) (int64, error) {
	r, err := s.read(key)
	return r.modRev, err
}

// Put buffers a put of key; opts are those of Client.Put (WithLease, …).
func (s *STM) Put(key, val string, opts ...Option) {
	s.writes[key] = stmWrite{value: val, opts: opts}
}

// Delete buffers the deletion of key.
func (s *STM) Delete(key string) { s.writes[key] = stmWrite{delete: true} }

func (s *STM) read(key string) (stmRead, error) {
	if r, ok := s.reads[key]; ok {
		return r, nil
	}
	if err := s.fetch(key); err != nil {
		return stmRead{}, err
	}
	return s.reads[key], nil
}

// fetch reads keys in one txn, at the snapshot revision if there is one.
func (s *STM) fetch(keys ...string) error {
	var opts []Option
	if s.rev != 0 && (s.iso == SerializableSnapshot || s.iso == Serializable) {
		opts = append(opts, WithRev(s.rev))
	}
	ops := make([]Op, len(keys))
	for i, k := range keys {
		ops[i] = OpGet(k, opts...)
	}
	r, err := s.c.Txn().Then(ops...).Commit(s.ctx)
	if err != nil {
		return err
	}
	if s.rev == 0 {
		s.rev = r.Header.Revision
	}
	for i, k := range keys {
		var sr stmRead
		if kvs := r.Responses[i].Get.Kvs; len(kvs) > 0 {
			sr = stmRead{value: kvs[0].Value, exists: true, modRev: kvs[0].ModRevision}
		}
		s.reads[k] = sr
	}
	return nil
}

// commit sends the writes under the compares the isolation level asks for,
// and reports whether they held.
func (s *STM) commit() (*TxnResponse, error) {
	var cmps []Cmp
	if s.iso != ReadCommitted {
		for k, r := range s.reads {
			cmps = append(cmps, CmpModRevision(k, Equal, r.modRev))
		}
	}
	if s.iso == SerializableSnapshot && s.rev != 0 {
		for k := range s.writes {
			if _, read := s.reads[k]; !read {
				cmps = append(cmps, CmpModRevision(k, Less, s.rev+1))
			}
		}
	}
	keys := make([]string, 0, len(s.writes))
	for k := range s.writes {
		keys = append(keys, k)
	}
	sort.Strings(keys) // a stable request: the same writes, the same txn
	ops := make([]Op, 0, len(keys))
	for _, k := range keys {
		w := s.writes[k]
		if w.delete {
			ops = append(ops, OpDelete(k))
		} else {
			ops = append(ops, OpPut(k, w.value, w.opts...))
		}
	}
	return s.c.Txn().If(cmps...).Then(ops...).Commit(s.ctx)
}

// RunSTM runs apply as a software transaction, clientv3's STM: apply reads
// and writes keys through the STM it is given; the writes are committed in one
// txn that holds only if what apply read is unchanged (as the isolation level
// says). When another writer got in between, apply runs again on fresh reads,
// after a short random backoff, until it commits or ctx ends. So apply must
// have no effects but through the STM, and may run more than once.
//
// An error from apply aborts the transaction (nothing is written) and is
// returned, matching ErrSTMAborted. A commit whose outcome is unknown is not
// retried: running apply again could apply its effect twice; the error matches
// ErrOutcomeUnknown.
func (c *Client) RunSTM(ctx context.Context, apply func(s *STM) error, opts ...STMOption) (*TxnResponse, error) {
	var cfg stmConfig
	for _, o := range opts {
		o(&cfg)
	}
	wait := 5 * time.Millisecond
	for {
		s := &STM{c: c, ctx: ctx, iso: cfg.iso, reads: map[string]stmRead{}, writes: map[string]stmWrite{}}
		if len(cfg.prefetch) > 0 {
			if err := s.fetch(cfg.prefetch...); err != nil {
				return nil, err
			}
		}
		if err := apply(s); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSTMAborted, err)
		}
		r, err := s.commit()
		if err != nil {
			return nil, err
		}
		if r.Succeeded {
			return r, nil
		}
		// A conflict: back off a little (randomly, so that contenders spread
		// out), then run apply again on fresh reads.
		t := time.NewTimer(time.Duration(rand.Int64N(int64(wait))) + time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}
