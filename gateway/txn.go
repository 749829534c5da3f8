package gateway

import "context"

// CmpResult is the relation a comparison checks.
type CmpResult int

// Comparison results, as etcd numbers them.
const (
	Equal CmpResult = iota
	Greater
	Less
	NotEqual
)

type cmpTarget int

const (
	targetVersion cmpTarget = iota
	targetCreate
	targetMod
	targetValue
	targetLease
)

// Cmp is one comparison of a transaction's guard. Build it with CmpValue,
// CmpVersion, CmpCreateRevision, CmpModRevision or CmpLease.
type Cmp struct {
	key    []byte
	end    []byte
	target cmpTarget
	result CmpResult
	value  []byte
	n      int64
}

// CmpValue compares key's value with value. A missing key fails every value
// comparison.
func CmpValue(key string, r CmpResult, value string) Cmp {
	return Cmp{key: []byte(key), target: targetValue, result: r, value: []byte(value)}
}

// CmpVersion compares key's version (0 when it does not exist).
func CmpVersion(key string, r CmpResult, version int64) Cmp {
	return Cmp{key: []byte(key), target: targetVersion, result: r, n: version}
}

// CmpCreateRevision compares key's create revision (0 when it does not exist).
func CmpCreateRevision(key string, r CmpResult, rev int64) Cmp {
	return Cmp{key: []byte(key), target: targetCreate, result: r, n: rev}
}

// CmpModRevision compares key's last modification revision (0 when it does not
// exist).
func CmpModRevision(key string, r CmpResult, rev int64) Cmp {
	return Cmp{key: []byte(key), target: targetMod, result: r, n: rev}
}

// CmpLease compares the ID of the lease attached to key (0 for none).
func CmpLease(key string, r CmpResult, lease int64) Cmp {
	return Cmp{key: []byte(key), target: targetLease, result: r, n: lease}
}

// WithRange makes the comparison hold for every key in [key, end).
func (c Cmp) WithRange(end string) Cmp { c.end = []byte(end); return c }

// WithPrefix makes the comparison hold for every key starting with key.
func (c Cmp) WithPrefix() Cmp { c.end = PrefixEnd(c.key); return c }

// Key returns the compared key.
func (c Cmp) Key() string { return string(c.key) }

// Txn is a transaction under construction: If the comparisons all hold, Then runs
// its operations, Else the others; Commit sends it. A Txn is not safe for
// concurrent use; build one per transaction.
type Txn struct {
	c        *Client
	op       Op
	coalesce bool
}

// Txn starts a transaction.
func (c *Client) Txn() *Txn { return &Txn{c: c, op: Op{kind: opTxn}} }

// If adds comparisons; all must hold for Then to run.
func (t *Txn) If(cmps ...Cmp) *Txn { t.op.cmps = append(t.op.cmps, cmps...); return t }

// Then adds operations run when every comparison holds.
func (t *Txn) Then(ops ...Op) *Txn { t.op.then = append(t.op.then, ops...); return t }

// Else adds operations run when a comparison fails.
func (t *Txn) Else(ops ...Op) *Txn { t.op.els = append(t.op.els, ops...); return t }

// Coalesce lets Commit send the transaction in one request with Get, Put,
// Delete and other coalescable transactions that goroutines of the client
// make at the same time, as coalescing does for those calls (see the package
// documentation). Transactions are otherwise never merged.
//
// The transaction joins a batch only where that cannot change what it does or
// what it returns: none of the keys it compares, reads or writes is written by
// an earlier operation of the batch, and no later write of the batch touches a
// key it compares or reads. What it gives up is a revision of its own: its
// writes share one with the batch's other writes, where alone they would have
// had the next. Leave it off for transactions whose writes are ordered by
// revision against writes to other keys (a queue of lock claims ordered by
// create revision is one: two claims coalesced together would tie).
//
// A transaction of more than half of Config.MaxTxnOps operations (counted
// as etcd counts nested ones) is sent alone, as is every transaction when
// Config.DisableCoalescing is set.
func (t *Txn) Coalesce() *Txn { t.coalesce = true; return t }

// Commit sends the transaction. It is applied atomically, at most once: when the
// connection breaks after sending, or the server times out, a transaction that
// writes is not sent again and the error matches ErrOutcomeUnknown. One that only
// reads is retried on another member.
func (t *Txn) Commit(ctx context.Context) (*TxnResponse, error) {
	if err := t.op.validate("kv/txn"); err != nil {
		return nil, err
	}
	r := rpcTxn
	if t.op.readOnly() {
		r = rpcTxnReadOnly
	}
	w := newWaiter(t.c.inNS(t.op), r)
	var res OpResponse
	var err error
	if q := t.c.batches; t.coalesce && q != nil && w.need <= t.c.maxTxnOps/2 {
		res, err = q.do(ctx, w)
	} else {
		res, err = w.result(t.c.single(ctx, w))
	}
	if err != nil {
		return nil, err
	}
	t.c.stripTxn(res.Txn)
	return res.Txn, nil
}

// TxnResponse is the result of a transaction.
type TxnResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
	// Succeeded reports whether every comparison held, so the Then branch ran.
	Succeeded bool `json:"succeeded"`
	// Responses hold one result per operation of the branch that ran.
	Responses []OpResponse `json:"responses"`
}

// OpResponse is the result of one operation in a transaction: exactly one field
// is set, matching the operation's kind.
type OpResponse struct {
	// Get is the result of an OpGet.
	Get *GetResponse `json:"response_range"`
	// Put is the result of an OpPut.
	Put *PutResponse `json:"response_put"`
	// Delete is the result of an OpDelete.
	Delete *DeleteResponse `json:"response_delete_range"`
	// Txn is the result of a nested OpTxn.
	Txn *TxnResponse `json:"response_txn"`
}
