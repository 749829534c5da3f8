package gateway

// Coalescing: concurrent Get, Put and Delete calls on one client, and the
// transactions marked Txn.Coalesce, go to the server together, as the
// operations of one kv/txn (a transaction as a nested one). etcd's gateway costs the server
// about three times the CPU of a gRPC request per request, not per operation, so
// fewer, fuller requests serve more callers.
//
// The batching is natural: there is no timer. A call that finds fewer than
// maxInFlight requests on the wire takes a slot and yields once; if nobody
// joined meanwhile, it is sent at once, alone, as the plain request it always
// was. Otherwise it waits in pending, and when a request in flight ends,
// everything pending that fits goes out as the next batch. The busier the
// client, the fuller the batches; a lone caller never waits for company.
// Before it takes the next batch, the goroutine that holds a slot yields to
// the callers it has just answered for as long as they keep joining (gather),
// so that the next batch holds them. Measured: at 16 callers about 7 ops per
// request instead of 5 for one yield; at 256 callers 109 instead of 91 for
// yielding while pending grows; at 64 callers, a freed slot's first caller
// yielding too cut the requests sent with one op from a fifth of all to a
// twentieth. A lone caller costs two yields.
//
// What a batch must respect:
//   - the server's limits: Config.MaxTxnOps operations, counted as etcd counts
//     nested transactions (Op.need), and Config.MaxRequestBytes;
//   - what each caller sees: reads go first and report the revision before
//     the batch's writes; a transaction shares no key with an earlier write,
//     and no later write touches a key it compares or reads (conflicts), so
//     it does and reports what it would have alone;
//   - etcd's refusal of two writes to one key in one txn: a write that overlaps
//     one already in the batch waits for the next, so every put still makes its
//     own event and its own change;
//   - each caller's own outcome: a txn the server refuses as a whole, because
//     of one operation (a lease not found, a permission denied, a value too
//     large), applied nothing, so it is split in halves and sent again until
//     the culprit fails alone and the others succeed;
//   - the resend contract: a batch with a write whose outcome is unknown gives
//     each write ErrOutcomeUnknown, and sends each read again on its own;
//   - serializable reads batch only with serializable reads (a txn of ranges
//     all serializable is served serializably).

import (
	"context"
	"errors"
	"hash/maphash"
	"runtime"
	"slices"
	"sync"
)

// maxInFlight is how many requests one coalescer keeps on the wire. Two keep
// the server busy while the next batch gathers; more make smaller batches,
// which cost the server more than they save (measured with 3 and 4).
const maxInFlight = 2

// maxGather bounds the yields of one gather: a client whose goroutines are
// always runnable must still send.
const maxGather = 16

// coalescer gathers operations into batches. A client has two: one for
// serializable reads, one for everything else.
type coalescer struct {
	c    *Client         // the root client: operations arrive in their wire form, namespaced
	life context.Context // ends when the client closes
	wg   *sync.WaitGroup // the flush goroutines, joined by Close

	mu       sync.Mutex
	closed   bool
	inFlight int
	pending  []*waiter
	writes   conflicts // scratch for take, under mu
}

// waiter is one caller's operation, from submit until its result is delivered.
type waiter struct {
	op   Op // wire form: namespaced, validated
	rpc  rpc
	size int
	need int // a txn's count against the batch's --max-txn-ops (Op.need)

	done   chan struct{} // one token when res and err are set (capacity 1)
	res    OpResponse
	err    error
	ofCall *batch // the batch it went out in, under coalescer.mu; nil while pending
}

// waiters are reused: a Get or Put costs two allocations fewer. A waiter whose
// caller gave up while its batch was in flight is not reused; the batch still
// delivers to it.
var waiterPool = sync.Pool{New: func() any { return &waiter{done: make(chan struct{}, 1)} }}

func newWaiter(o Op, r rpc) *waiter {
	w := waiterPool.Get().(*waiter)
	w.op, w.rpc, w.size, w.need = o, r, o.size(), o.need()
	return w
}

// result returns w's outcome and gives w back to the pool: the caller's last
// use of it.
func (w *waiter) result(err error) (OpResponse, error) {
	res := w.res
	w.release()
	return res, err
}

// release gives w back to the pool.
func (w *waiter) release() {
	*w = waiter{done: w.done}
	waiterPool.Put(w)
}

// batch is one request's worth of waiters. Its context ends when the client
// closes, at Config.RequestTimeout, or when every caller in it has given up.
type batch struct {
	ctx     context.Context
	cancel  context.CancelFunc
	waiting int // callers still waiting, under coalescer.mu
}

func newCoalescer(c *Client, life context.Context, wg *sync.WaitGroup) *coalescer {
	return &coalescer{c: c, life: life, wg: wg, writes: conflicts{seed: maphash.MakeSeed(), puts: map[uint64]struct{}{}}}
}

// do runs one operation, alone or in a batch, and returns its result.
func (q *coalescer) do(ctx context.Context, w *waiter) (OpResponse, error) {
	if err := ctx.Err(); err != nil {
		return OpResponse{}, unsentError(w.rpc.path, "", err)
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return OpResponse{}, localError(w.rpc.path, ErrClosed, "")
	}
	if q.inFlight < maxInFlight {
		// A free slot, taken. Callers that arrive while this one yields find
		// it taken and wait: they go together. Alone, it is sent at once as
		// the plain request it always was, under its own context.
		q.inFlight++
		q.mu.Unlock()
		q.gather()
		q.mu.Lock()
		if len(q.pending) == 0 {
			q.mu.Unlock()
			err := q.c.single(ctx, w)
			q.done()
			return w.result(err)
		}
		q.pending = slices.Insert(q.pending, 0, w) // it came first
		q.send()
	} else {
		q.pending = append(q.pending, w)
	}
	q.mu.Unlock()

	if ctx.Done() == nil { // a context that never ends: a receive is cheaper than a select
		<-w.done
		return w.result(w.err)
	}
	select {
	case <-w.done:
		return w.result(w.err)
	case <-ctx.Done():
	}
	q.mu.Lock()
	select {
	case <-w.done: // delivered while we took the lock
		q.mu.Unlock()
		return w.result(w.err)
	default:
	}
	b := w.ofCall
	if b == nil {
		// Still pending: it was never sent.
		q.remove(w)
		q.mu.Unlock()
		w.release()
		return OpResponse{}, unsentError(w.rpc.path, "", ctx.Err())
	}
	if b.waiting--; b.waiting == 0 {
		b.cancel()
	}
	q.mu.Unlock()
	err := error(&Error{Op: w.rpc.path, Err: ctx.Err(), stage: stageNoReply})
	if !w.rpc.idempotent {
		err = markOutcomeUnknown(err)
	}
	return OpResponse{}, err
}

// done frees the caller's slot, or hands it to the next batch.
func (q *coalescer) done() {
	q.gather()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.send()
}

// send hands the caller's slot to the next batch, sent by a flush goroutine,
// or frees it when nothing is pending. q.mu is held.
func (q *coalescer) send() {
	if ws, b := q.take(); ws != nil {
		q.wg.Add(1)
		go q.flush(ws, b)
		return
	}
	q.inFlight--
}

// flush sends batches until nothing is pending, then frees its slot.
func (q *coalescer) flush(ws []*waiter, b *batch) {
	defer q.wg.Done()
	for ws != nil {
		q.c.sendBatch(b.ctx, ws)
		b.cancel()
		q.gather()
		q.mu.Lock()
		ws, b = q.take()
		if ws == nil {
			q.inFlight--
		}
		q.mu.Unlock()
	}
}

// gather yields while callers keep joining pending: the ones a reply has just
// woken are asking again, and the next batch should hold them. It returns when
// a yield brought nobody, when a batch's worth is pending, or after maxGather
// yields. Natural batching's only wait: no timer, and a lone caller's single
// yield finds nobody.
func (q *coalescer) gather() {
	n := q.pendingLen()
	for range maxGather {
		runtime.Gosched()
		m := q.pendingLen()
		if m == n || m >= q.c.maxTxnOps {
			return
		}
		n = m
	}
}

func (q *coalescer) pendingLen() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// take removes the next batch from pending: in order, every waiter that fits
// the limits and writes nothing another in the batch writes. It returns nil
// when nothing is pending. q.mu is held.
func (q *coalescer) take() ([]*waiter, *batch) {
	if len(q.pending) == 0 {
		return nil, nil
	}
	if q.closed {
		for _, w := range q.pending {
			deliver(w, localError(w.rpc.path, ErrClosed, ""))
		}
		q.pending = nil
		return nil, nil
	}
	limitOps, limitBytes := q.c.maxTxnOps, q.c.maxReqBytes
	q.writes.reset()
	var ws []*waiter
	bytes, deepest := 0, 0
	kept := q.pending[:0]
	for _, w := range q.pending {
		fits := len(ws) == 0 || len(ws)+1+max(deepest, w.need) <= limitOps &&
			(limitBytes <= 0 || bytes+w.size <= limitBytes)
		if fits && q.writes.add(&w.op) {
			ws = append(ws, w)
			bytes += w.size
			deepest = max(deepest, w.need)
			continue
		}
		kept = append(kept, w)
	}
	clear(q.pending[len(kept):])
	q.pending = kept
	readsFirst(ws)
	ctx, cancel := context.WithCancel(q.life)
	if d := q.c.reqTimeout; d > 0 {
		// The timeout's context is a child: cancelling it leaves the parent
		// to cancel too.
		parentCancel := cancel
		var timeoutCancel context.CancelFunc
		ctx, timeoutCancel = context.WithTimeout(ctx, d)
		cancel = func() { timeoutCancel(); parentCancel() }
	}
	b := &batch{ctx: ctx, cancel: cancel, waiting: len(ws)}
	for _, w := range ws {
		w.ofCall = b
	}
	return ws, b
}

// readsFirst moves a batch's reads before its writes, keeping each group's
// order. A read that came after a write would see that write but not the
// batch's later ones, though they all share one revision: no revision would
// describe what it read, and a watch from the revision it reports would miss
// the later writes. First, every read sees the state before the batch's writes
// and reports its revision (etcd gives each operation in a txn the revision it
// read at). The callers in a batch all wait at once, so any order of their
// operations is one they could have run in.
func readsFirst(ws []*waiter) {
	reads := 0
	for i, w := range ws {
		if w.op.kind == opGet {
			copy(ws[reads+1:i+1], ws[reads:i])
			ws[reads] = w
			reads++
		}
	}
}

// remove drops w from pending. q.mu is held.
func (q *coalescer) remove(w *waiter) {
	for i, p := range q.pending {
		if p == w {
			q.pending = append(q.pending[:i], q.pending[i+1:]...)
			q.pending = q.pending[:len(q.pending):len(q.pending)]
			return
		}
	}
}

// close fails every pending waiter with ErrClosed; batches in flight end with
// the client's life.
func (q *coalescer) close() {
	q.mu.Lock()
	q.closed = true
	for _, w := range q.pending {
		deliver(w, localError(w.rpc.path, ErrClosed, ""))
	}
	q.pending = nil
	q.mu.Unlock()
}

// conflicts tracks the keys a batch writes, and the keys its transactions
// read, as operations join it in order:
//   - etcd refuses a txn that puts one key twice, or puts a key that a delete
//     in it covers;
//   - a transaction (Txn.Coalesce) compares and reads the state before the
//     batch (etcd evaluates every nested comparison first), so it may not
//     touch a key an earlier operation wrote;
//   - and no later write may touch a key it compares or reads, which would
//     change at the revision its reply reports.
//
// Gets never conflict: they go first (readsFirst) and report the revision
// before the batch's writes. Puts are known by their keys' hashes, which costs
// no allocation; two keys with one hash make a false conflict, which only sends
// the later operation in the next batch.
type conflicts struct {
	seed    maphash.Seed
	puts    map[uint64]struct{} // hashes of the keys put
	putKeys [][]byte            // the keys put, for ranges to check
	dels    []Op                // single-key deletes and range deletes
	reads   []Op                // what transactions compare or read
	txn     txnKeys             // scratch for addTxn
}

func (w *conflicts) reset() {
	clear(w.puts)
	clear(w.putKeys)
	w.putKeys = w.putKeys[:0]
	w.dels = w.dels[:0]
	w.reads = w.reads[:0]
}

// add records o's writes and reports true, or reports false when o conflicts
// with what is already recorded.
func (w *conflicts) add(o *Op) bool {
	switch o.kind {
	case opPut:
		if w.written(o) || w.read(o) {
			return false
		}
		w.recordPut(o.key)
	case opDelete:
		if w.putIn(o) || w.read(o) {
			return false
		}
		w.dels = append(w.dels, Op{key: o.key, end: o.end})
	case opTxn:
		return w.addTxn(o)
	}
	return true
}

// addTxn is add for a transaction: what either branch may write, and what it
// compares or reads, checked first and then recorded.
func (w *conflicts) addTxn(o *Op) bool {
	k := &w.txn
	k.reads, k.puts, k.dels = k.reads[:0], k.puts[:0], k.dels[:0]
	k.collect(o)
	for i := range k.reads {
		if w.written(&k.reads[i]) {
			return false
		}
	}
	for i := range k.puts {
		if w.written(&k.puts[i]) || w.read(&k.puts[i]) {
			return false
		}
	}
	for i := range k.dels {
		if w.putIn(&k.dels[i]) || w.read(&k.dels[i]) {
			return false
		}
	}
	for i := range k.puts {
		w.recordPut(k.puts[i].key)
	}
	w.dels = append(w.dels, k.dels...)
	w.reads = append(w.reads, k.reads...)
	return true
}

// recordPut records a key the batch puts.
func (w *conflicts) recordPut(key []byte) {
	w.puts[maphash.Bytes(w.seed, key)] = struct{}{}
	w.putKeys = append(w.putKeys, key)
}

// written reports whether a recorded put or delete touches the key or range of s.
func (w *conflicts) written(s *Op) bool {
	if len(s.end) == 0 {
		if _, ok := w.puts[maphash.Bytes(w.seed, s.key)]; ok {
			return true
		}
	} else if w.putIn(s) {
		return true
	}
	for i := range w.dels {
		if overlap(&w.dels[i], s) {
			return true
		}
	}
	return false
}

// putIn reports whether a recorded put is in the key or range of s.
func (w *conflicts) putIn(s *Op) bool {
	for _, k := range w.putKeys {
		if covers(s, k) {
			return true
		}
	}
	return false
}

// read reports whether a recorded transaction compares or reads a key in s.
func (w *conflicts) read(s *Op) bool {
	for i := range w.reads {
		if overlap(&w.reads[i], s) {
			return true
		}
	}
	return false
}

// txnKeys are the keys and ranges of one transaction, nested ones included,
// each as an Op holding only a key and an end.
type txnKeys struct{ reads, puts, dels []Op }

func (k *txnKeys) collect(o *Op) {
	for i := range o.cmps {
		k.reads = append(k.reads, Op{key: o.cmps[i].key, end: o.cmps[i].end})
	}
	for _, branch := range [2][]Op{o.then, o.els} {
		for i := range branch {
			switch p := &branch[i]; p.kind {
			case opGet:
				k.reads = append(k.reads, Op{key: p.key, end: p.end})
			case opPut:
				k.puts = append(k.puts, Op{key: p.key})
			case opDelete:
				k.dels = append(k.dels, Op{key: p.key, end: p.end})
			case opTxn:
				k.collect(p)
			}
		}
	}
}

// overlap reports whether the keys or ranges of a and b share a key.
func overlap(a, b *Op) bool { return below(a.key, b) && below(b.key, a) }

// below reports whether key comes before the end of o's key or range (for a
// single key: is at most that key).
func below(key []byte, o *Op) bool {
	switch {
	case len(o.end) == 0:
		return string(key) <= string(o.key)
	case len(o.end) == 1 && o.end[0] == 0:
		return true
	}
	return string(key) < string(o.end)
}

// covers reports whether the key or range of o holds key.
func covers(o *Op, key []byte) bool { return string(o.key) <= string(key) && below(key, o) }

// single sends one operation as its own plain request (kv/range, kv/put,
// kv/deleterange, kv/txn), with the ordinary resend contract, and stores its result in
// w.res.
func (c *Client) single(ctx context.Context, w *waiter) error {
	var resp any
	switch w.op.kind {
	case opGet:
		w.res.Get = new(GetResponse)
		resp = w.res.Get
	case opPut:
		w.res.Put = new(PutResponse)
		resp = w.res.Put
	case opDelete:
		w.res.Delete = new(DeleteResponse)
		resp = w.res.Delete
	case opTxn:
		w.res.Txn = new(TxnResponse)
		resp = w.res.Txn
	}
	err := c.postBuilt(ctx, w.rpc, w.size, func(b []byte) []byte { return appendRequest(b, &w.op) }, resp)
	if err != nil {
		w.res = OpResponse{}
	}
	return err
}

// deliver sets a waiter's outcome and wakes its caller.
func deliver(w *waiter, err error) {
	w.err = err
	w.done <- struct{}{}
}

// sendBatch sends ws and delivers each waiter's own outcome.
func (c *Client) sendBatch(ctx context.Context, ws []*waiter) {
	if len(ws) == 1 {
		deliver(ws[0], c.single(ctx, ws[0]))
		return
	}
	r := rpcTxnReadOnly
	for _, w := range ws {
		if !w.op.readOnly() {
			r = rpcTxn
		}
	}
	resp := new(TxnResponse)
	err := c.postBuilt(ctx, r, 0, func(b []byte) []byte { return appendBatch(b, ws) }, resp)
	if err == nil && len(resp.Responses) != len(ws) {
		err = &Error{Op: r.path, kind: ErrMalformedResponse,
			Message: "a batch's reply does not hold one response per operation"}
	}
	switch {
	case err == nil:
		readRev := resp.Header.Revision
		if resp.wrote() {
			readRev-- // the batch's writes made one revision; its reads saw the one before
		}
		for i, w := range ws {
			w.res = resp.Responses[i]
			if !w.res.setHeader(w.op.kind, resp.Header, readRev) {
				deliver(w, &Error{Op: w.rpc.path, kind: ErrMalformedResponse,
					Message: "a batch's reply holds a response of another kind for this operation"})
				continue
			}
			deliver(w, nil)
		}
	case refusedWhole(err):
		// Nothing was applied: send each half again, down to the culprit.
		mid := len(ws) / 2
		c.sendBatch(ctx, ws[:mid])
		c.sendBatch(ctx, ws[mid:])
	case errors.Is(err, ErrOutcomeUnknown):
		for _, w := range ws {
			if w.op.readOnly() && ctx.Err() == nil {
				deliver(w, c.single(ctx, w))
				continue
			}
			deliver(w, asOp(err, w))
		}
	default:
		for _, w := range ws {
			deliver(w, asOp(err, w))
		}
	}
}

// refusedWhole reports a batch the server refused with an error reply: a txn is
// atomic, so none of its operations was applied, and one of them may be the
// cause.
func refusedWhole(err error) bool {
	e := asError(err)
	return e != nil && e.stage == stageAnswered && e.Status != 0 && e.Status != 200 && !e.unknown
}

// asOp returns a batch's error as the error of w's own call.
func asOp(err error, w *waiter) error {
	e := asError(err)
	if e == nil {
		return err
	}
	c := *e
	c.Op = w.rpc.path
	return &c
}

// setHeader gives an operation of a batch the batch's header, and reports
// whether the response is of kind k. What only read reports readRev, the
// revision its reads saw: a Get keeps the one etcd gives it in its own header,
// which is that one, as it went before the batch's writes.
func (r *OpResponse) setHeader(k opKind, h Header, readRev int64) bool {
	switch {
	case k == opGet && r.Get != nil:
		h.Revision = readRev
		if rev := r.Get.Header.Revision; rev != 0 {
			h.Revision = rev
		}
		r.Get.Header = h
	case k == opTxn && r.Txn != nil:
		if !r.Txn.wrote() {
			h.Revision = readRev
		}
		r.Txn.Header = h
	case k == opPut && r.Put != nil:
		r.Put.Header = h
	case k == opDelete && r.Delete != nil:
		r.Delete.Header = h
	default:
		return false
	}
	return true
}

// wrote reports whether the branch that ran changed anything: a put, or a
// delete that deleted. etcd makes a revision exactly when a txn does.
func (t *TxnResponse) wrote() bool {
	for _, r := range t.Responses {
		switch {
		case r.Put != nil, r.Delete != nil && r.Delete.Deleted > 0, r.Txn != nil && r.Txn.wrote():
			return true
		}
	}
	return false
}
