package gateway

import (
	"context"
	"fmt"
)

// Get reads key, or a range of keys with WithRange, WithPrefix or WithFromKey.
// Other options: WithRev, WithLimit, WithSort, WithSerializable, WithKeysOnly,
// WithCountOnly, WithMin/MaxModRev, WithMin/MaxCreateRev.
func (c *Client) Get(ctx context.Context, key string, opts ...Option) (*GetResponse, error) {
	o := OpGet(key, opts...)
	return c.get(ctx, &o)
}

func (c *Client) get(ctx context.Context, o *Op) (*GetResponse, error) {
	if err := o.validate("kv/range"); err != nil {
		return nil, err
	}
	r, err := c.pinned(rpcRange, o)
	if err != nil {
		return nil, err
	}
	res, err := c.kv(ctx, r, c.inNS(*o))
	if err != nil {
		return nil, err
	}
	c.stripKVs(res.Get.Kvs)
	return res.Get, nil
}

// kv sends one Get, Put or Delete in its wire form: through a coalescer, or
// alone when coalescing is off or the call goes to one member.
func (c *Client) kv(ctx context.Context, r rpc, o Op) (OpResponse, error) {
	w := newWaiter(o, r)
	q := c.batches
	if o.kind == opGet && o.serializable {
		q = c.serialBatches
	}
	if q == nil || r.pin != nil {
		return w.result(c.single(ctx, w))
	}
	return q.do(ctx, w)
}

// GetOne reads a single key and returns it, or an error matching ErrKeyNotFound
// when it does not exist.
func (c *Client) GetOne(ctx context.Context, key string, opts ...Option) (*KeyValue, error) {
	resp, err := c.Get(ctx, key, opts...)
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, localError("kv/range", ErrKeyNotFound, fmt.Sprintf("key %q not found", key))
	}
	return &resp.Kvs[0], nil
}

// GetPrefix reads every key that starts with prefix (etcd3gw's get_prefix).
func (c *Client) GetPrefix(ctx context.Context, prefix string, opts ...Option) (*GetResponse, error) {
	return c.Get(ctx, prefix, append(opts, WithPrefix())...)
}

// GetAll reads every key in the store, in key order unless WithSort says otherwise
// (etcd3gw's get_all). On a large store, page through it with WithLimit and
// WithFromKey instead.
func (c *Client) GetAll(ctx context.Context, opts ...Option) (*GetResponse, error) {
	return c.Get(ctx, "", append(opts, WithPrefix())...)
}

// Put sets key to val. Options: WithLease, WithPrevKV, WithIgnoreValue,
// WithIgnoreLease. The value may be empty.
func (c *Client) Put(ctx context.Context, key, val string, opts ...Option) (*PutResponse, error) {
	o := OpPut(key, val, opts...)
	if err := o.validate("kv/put"); err != nil {
		return nil, err
	}
	r, err := c.pinned(rpcPut, &o)
	if err != nil {
		return nil, err
	}
	res, err := c.kv(ctx, r, c.inNS(o))
	if err != nil {
		return nil, err
	}
	c.stripKV(res.Put.PrevKv)
	return res.Put, nil
}

// Delete deletes key, or a range with WithRange, WithPrefix or WithFromKey.
// WithPrevKV returns the deleted keys.
func (c *Client) Delete(ctx context.Context, key string, opts ...Option) (*DeleteResponse, error) {
	o := OpDelete(key, opts...)
	if err := o.validate("kv/deleterange"); err != nil {
		return nil, err
	}
	r, err := c.pinned(rpcDelete, &o)
	if err != nil {
		return nil, err
	}
	res, err := c.kv(ctx, r, c.inNS(o))
	if err != nil {
		return nil, err
	}
	c.stripKVs(res.Delete.PrevKvs)
	return res.Delete, nil
}

// DeleteRange deletes the keys in [key, end).
func (c *Client) DeleteRange(ctx context.Context, key, end string, opts ...Option) (*DeleteResponse, error) {
	return c.Delete(ctx, key, append(opts, WithRange(end))...)
}

// DeletePrefix deletes every key that starts with prefix. An empty prefix
// deletes every key in the store.
func (c *Client) DeletePrefix(ctx context.Context, prefix string, opts ...Option) (*DeleteResponse, error) {
	return c.Delete(ctx, prefix, append(opts, WithPrefix())...)
}

// Create sets key to val only if key does not exist, in one transaction, and
// reports whether it did. WithLease attaches the new key to a lease.
func (c *Client) Create(ctx context.Context, key, val string, opts ...Option) (bool, error) {
	resp, err := c.Txn().
		If(CmpCreateRevision(key, Equal, 0)).
		Then(OpPut(key, val, opts...)).
		Commit(ctx)
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// Replace sets key to newVal only if its current value is oldVal, in one
// transaction, and reports whether it did.
func (c *Client) Replace(ctx context.Context, key, oldVal, newVal string, opts ...Option) (bool, error) {
	resp, err := c.Txn().
		If(CmpValue(key, Equal, oldVal)).
		Then(OpPut(key, newVal, opts...)).
		Commit(ctx)
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// Compact discards the history before rev. Watches and reads at older revisions
// then fail with ErrCompacted. WithPhysical waits until the space is reclaimed.
func (c *Client) Compact(ctx context.Context, rev int64, opts ...Option) (*CompactResponse, error) {
	var o Op
	for _, opt := range opts {
		opt(&o)
	}
	req := struct {
		Revision int64 `json:"revision"`
		Physical bool  `json:"physical,omitempty"`
	}{rev, o.physical}
	return call[CompactResponse](ctx, c, rpcCompact, 0, req)
}

// GetResponse is the result of a range read.
type GetResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
	// Kvs are the keys found, in the requested order (by key by default).
	Kvs []KeyValue `json:"kvs"`
	// More reports that the range held more keys than Limit allowed.
	More bool `json:"more"`
	// Count is the number of keys in the range, whatever the limit.
	Count int64 `json:"count,string"`
}

// PutResponse is the result of a put.
type PutResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
	// PrevKv is the key before the put, when WithPrevKV was given and it existed.
	PrevKv *KeyValue `json:"prev_kv"`
}

// DeleteResponse is the result of a delete.
type DeleteResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
	// Deleted is the number of keys deleted.
	Deleted int64 `json:"deleted,string"`
	// PrevKvs are the deleted keys, when WithPrevKV was given.
	PrevKvs []KeyValue `json:"prev_kvs"`
}

// CompactResponse is the result of a compaction.
type CompactResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
}
