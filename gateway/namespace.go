package gateway

import "bytes"

// WithNamespace returns a view of the client in which every key lives under
// ns, as clientv3's namespace package does: the keys and ranges it sends
// (reads, writes, deletes, compares, nested transactions, watches) are
// prefixed with ns, the keys it returns (in reads, previous values,
// transactions, watch events, a lease's keys) have ns stripped, and a range
// "to the end of the keyspace" (WithPrefix on "", WithFromKey) ends at the
// end of the namespace. Leases, locks, elections, barriers and queues made
// through the view live inside it; two views with different namespaces never
// meet.
//
// The view shares the client's connections, endpoints, token, watches and
// life: closing either closes both. A view of a view nests the namespaces. An
// empty ns returns c itself.
func (c *Client) WithNamespace(ns string) *Client {
	if ns == "" {
		return c
	}
	v := *c // the configuration; state is a pointer, shared
	v.ns = append(append([]byte{}, c.ns...), ns...)
	return &v
}

// Namespace is the view's namespace; "" for a client that is none.
func (c *Client) Namespace() string { return string(c.ns) }

// inNS returns o with its keys in the client's namespace.
func (c *Client) inNS(o Op) Op {
	if len(c.ns) == 0 {
		return o
	}
	o.key, o.end = c.nsRange(o.key, o.end)
	if o.kind != opTxn {
		return o
	}
	cmps := make([]Cmp, len(o.cmps))
	for i, cmp := range o.cmps {
		cmp.key, cmp.end = c.nsRange(cmp.key, cmp.end)
		cmps[i] = cmp
	}
	then, els := make([]Op, len(o.then)), make([]Op, len(o.els))
	for i := range o.then {
		then[i] = c.inNS(o.then[i])
	}
	for i := range o.els {
		els[i] = c.inNS(o.els[i])
	}
	o.cmps, o.then, o.els = cmps, then, els
	return o
}

// nsRange puts a key and its range end in the namespace. A range to the end
// of the keyspace ("\x00") becomes one to the end of the namespace, and one
// from its start ("\x00" too) one from the namespace's start.
func (c *Client) nsRange(key, end []byte) ([]byte, []byte) {
	if len(key) == 0 {
		return key, end // no key: nothing to send (validate refuses it)
	}
	if bytes.Equal(end, []byte{0}) {
		if bytes.Equal(key, []byte{0}) {
			return c.ns, PrefixEnd(c.ns)
		}
		return c.join(key), PrefixEnd(c.ns)
	}
	if len(end) > 0 {
		end = c.join(end)
	}
	return c.join(key), end
}

func (c *Client) join(k []byte) []byte {
	out := make([]byte, 0, len(c.ns)+len(k))
	return append(append(out, c.ns...), k...)
}

// strip takes the namespace off a key the server returned.
func (c *Client) strip(k []byte) []byte {
	if len(c.ns) > 0 && bytes.HasPrefix(k, c.ns) {
		return k[len(c.ns):]
	}
	return k
}

func (c *Client) stripKVs(kvs []KeyValue) {
	for i := range kvs {
		kvs[i].Key = c.strip(kvs[i].Key)
	}
}

func (c *Client) stripKV(kv *KeyValue) {
	if kv != nil {
		kv.Key = c.strip(kv.Key)
	}
}

// stripTxn takes the namespace off every key a transaction's results hold.
func (c *Client) stripTxn(r *TxnResponse) {
	if len(c.ns) == 0 || r == nil {
		return
	}
	for i := range r.Responses {
		switch res := r.Responses[i]; {
		case res.Get != nil:
			c.stripKVs(res.Get.Kvs)
		case res.Put != nil:
			c.stripKV(res.Put.PrevKv)
		case res.Delete != nil:
			c.stripKVs(res.Delete.PrevKvs)
		case res.Txn != nil:
			c.stripTxn(res.Txn)
		}
	}
}

// stripEvents takes the namespace off the keys of watch events.
func (c *Client) stripEvents(evs []Event) {
	if len(c.ns) == 0 {
		return
	}
	for i := range evs {
		evs[i].Kv.Key = c.strip(evs[i].Kv.Key)
		c.stripKV(evs[i].PrevKv)
	}
}
