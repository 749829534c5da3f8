package gateway

// opKind is what an Op does.
type opKind int

const (
	opGet opKind = iota + 1
	opPut
	opDelete
	opTxn
)

// Op is one operation: a range read, a put, a delete or a nested transaction. Build
// it with OpGet, OpPut, OpDelete or OpTxn and use it in a Txn; the Client's Get,
// Put and Delete build one internally. An Op is a value; it may be copied and
// reused.
type Op struct {
	kind opKind
	key  []byte
	end  []byte
	val  string // the caller's own string: a value is never copied

	// the option flags that shape the key range, resolved in applyRange
	prefix  bool
	fromKey bool

	// range
	limit        int64
	rev          int64
	sortOrder    SortOrder
	sortTarget   SortTarget
	serializable bool
	keysOnly     bool
	countOnly    bool
	minModRev    int64
	maxModRev    int64
	minCreateRev int64
	maxCreateRev int64
	// put
	lease       int64
	ignoreValue bool
	ignoreLease bool
	// put, delete, watch
	prevKV bool
	// watch
	filterPut      bool
	filterDelete   bool
	match          func(*Event, []Event) bool // Await only
	progressNotify bool
	fragment       bool
	requireLeader  bool
	// lease
	attachedKeys bool
	// compaction
	physical bool
	// any call: the one member it goes to (WithEndpoint)
	endpoint string

	// txn
	cmps []Cmp
	then []Op
	els  []Op
}

// Option shapes an operation. Options that do not apply to an operation are
// ignored by it.
type Option func(*Op)

// WithEndpoint sends the call to the member at url alone, once: it is neither
// sent to another member nor retried. For per-member work (Status, Defragment,
// HashKV, AlarmList, MoveLeader, Health) and for reading one member's own data
// (Get with WithSerializable). url need not be one of the client's endpoints.
func WithEndpoint(url string) Option { return func(o *Op) { o.endpoint = url } }

// WithRange makes the operation cover the keys in [key, end).
func WithRange(end string) Option { return func(o *Op) { o.end = []byte(end) } }

// WithPrefix makes the operation cover every key that starts with key. With an
// empty key it covers the whole keyspace.
func WithPrefix() Option { return func(o *Op) { o.prefix = true } }

// WithFromKey makes the operation cover every key greater than or equal to key.
func WithFromKey() Option { return func(o *Op) { o.fromKey = true } }

// WithLimit caps the number of keys a range returns. Zero means no limit.
func WithLimit(n int64) Option { return func(o *Op) { o.limit = n } }

// WithRev reads at the given revision, or starts a watch there. Zero means the
// current revision (for a watch: from now on).
func WithRev(rev int64) Option { return func(o *Op) { o.rev = rev } }

// WithSort orders a range's result.
func WithSort(target SortTarget, order SortOrder) Option {
	return func(o *Op) { o.sortTarget, o.sortOrder = target, order }
}

// WithSerializable serves a range from the member's local state, without a
// consensus round: faster, possibly stale.
func WithSerializable() Option { return func(o *Op) { o.serializable = true } }

// WithKeysOnly returns keys without values.
func WithKeysOnly() Option { return func(o *Op) { o.keysOnly = true } }

// WithCountOnly returns only the number of keys in the range.
func WithCountOnly() Option { return func(o *Op) { o.countOnly = true } }

// WithMinModRev filters a range to keys modified at or after rev.
func WithMinModRev(rev int64) Option { return func(o *Op) { o.minModRev = rev } }

// WithMaxModRev filters a range to keys modified at or before rev.
func WithMaxModRev(rev int64) Option { return func(o *Op) { o.maxModRev = rev } }

// WithMinCreateRev filters a range to keys created at or after rev.
func WithMinCreateRev(rev int64) Option { return func(o *Op) { o.minCreateRev = rev } }

// WithMaxCreateRev filters a range to keys created at or before rev.
func WithMaxCreateRev(rev int64) Option { return func(o *Op) { o.maxCreateRev = rev } }

// WithLease attaches a put's key to a lease. With Grant, it asks for that lease ID.
func WithLease(id int64) Option { return func(o *Op) { o.lease = id } }

// WithPrevKV returns the previous key-value of a put or delete, and the previous
// key-value with each watch event.
func WithPrevKV() Option { return func(o *Op) { o.prevKV = true } }

// WithIgnoreValue updates a key's lease and keeps its value.
func WithIgnoreValue() Option { return func(o *Op) { o.ignoreValue = true } }

// WithIgnoreLease updates a key's value and keeps its lease.
func WithIgnoreLease() Option { return func(o *Op) { o.ignoreLease = true } }

// WithFilterPut drops put events from a watch.
func WithFilterPut() Option { return func(o *Op) { o.filterPut = true } }

// WithFilterDelete drops delete events from a watch.
func WithFilterDelete() Option { return func(o *Op) { o.filterDelete = true } }

// WithMatch makes Client.Await return only for an event that match accepts,
// among those its range and filters let through. match sees the event and
// every event of the same revision (the other changes of its transaction, the
// event itself among them), with keys as the client sees them. It runs on the
// goroutine that dispatches the shared stream's events: it must be quick and
// must not block. Other calls ignore it.
func WithMatch(match func(ev *Event, sameRevision []Event) bool) Option {
	return func(o *Op) { o.match = match }
}

// WithProgressNotify asks the server to send a watch periodic empty responses
// carrying the current revision.
func WithProgressNotify() Option { return func(o *Op) { o.progressNotify = true } }

// WithFragment lets the server split a large watch response; the client joins the
// pieces again before delivering them.
func WithFragment() Option { return func(o *Op) { o.fragment = true } }

// WithRequireLeader makes a watch end with ErrNoLeader (and resume elsewhere)
// when its member loses its leader, instead of going silent.
func WithRequireLeader() Option { return func(o *Op) { o.requireLeader = true } }

// WithAttachedKeys makes TimeToLive list the keys attached to the lease.
func WithAttachedKeys() Option { return func(o *Op) { o.attachedKeys = true } }

// WithPhysical makes Compact wait until the compaction is physically applied.
func WithPhysical() Option { return func(o *Op) { o.physical = true } }

// OpGet is a range read of key, shaped by opts.
func OpGet(key string, opts ...Option) Op { return newOp(opGet, key, "", opts) }

// OpPut sets key to val.
func OpPut(key, val string, opts ...Option) Op { return newOp(opPut, key, val, opts) }

// OpDelete deletes key (or a range, with WithRange or WithPrefix).
func OpDelete(key string, opts ...Option) Op { return newOp(opDelete, key, "", opts) }

// OpTxn is a transaction nested in another: if every comparison holds, then
// runs, else els.
func OpTxn(cmps []Cmp, then, els []Op) Op {
	return Op{kind: opTxn, cmps: cmps, then: then, els: els}
}

func newOp(kind opKind, key, val string, opts []Option) Op {
	o := Op{kind: kind, key: []byte(key), val: val}
	if len(opts) == 0 {
		return o // no option saw its address: it stays on the stack
	}
	return withOptions(o, opts)
}

// withOptions applies opts to o. Their calls take o's address, which puts it
// on the heap; newOp calls this only when there are options, so that a plain
// Get or Put costs one allocation fewer.
func withOptions(o Op, opts []Option) Op {
	for _, opt := range opts {
		opt(&o)
	}
	o.applyRange()
	return o
}

func (o *Op) applyRange() {
	switch {
	case o.prefix:
		if len(o.key) == 0 {
			o.key, o.end = []byte{0}, []byte{0}
		} else {
			o.end = PrefixEnd(o.key)
		}
	case o.fromKey:
		if len(o.key) == 0 {
			o.key = []byte{0}
		}
		o.end = []byte{0}
	}
}

// PrefixEnd returns the range end that covers every key starting with prefix: the
// prefix with its last byte incremented after dropping trailing 0xff bytes. When
// there is no such key (an empty or all-0xff prefix) it returns "\x00", which etcd
// reads as "to the end of the keyspace".
func PrefixEnd(prefix []byte) []byte {
	end := make([]byte, len(prefix))
	copy(end, prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{0}
}

// IsRange reports whether the operation covers a range rather than one key.
func (o Op) IsRange() bool { return len(o.end) > 0 }

// validate reports an operation that can only fail on the server, before sending.
func (o *Op) validate(op string) error {
	switch o.kind {
	case opGet, opPut, opDelete:
		if len(o.key) == 0 {
			return localError(op, ErrEmptyKey, "the key is empty")
		}
	case opTxn:
		for i := range o.then {
			if err := o.then[i].validate(op); err != nil {
				return err
			}
		}
		for i := range o.els {
			if err := o.els[i].validate(op); err != nil {
				return err
			}
		}
		for _, c := range o.cmps {
			if len(c.key) == 0 {
				return localError(op, ErrEmptyKey, "a comparison's key is empty")
			}
		}
	}
	return nil
}

// size estimates the operation's encoded protobuf size, which is what the server
// compares with its --max-request-bytes.
func (o *Op) size() int {
	const fieldOverhead = 8
	n := len(o.key) + len(o.end) + len(o.val) + 4*fieldOverhead
	for _, c := range o.cmps {
		n += len(c.key) + len(c.end) + len(c.value) + 4*fieldOverhead
	}
	for i := range o.then {
		n += o.then[i].size()
	}
	for i := range o.els {
		n += o.els[i].size()
	}
	return n
}

// need is what etcd's --max-txn-ops check counts for o nested in a txn: a
// nested txn may hold the limit minus its parent's operations, so a batch of n
// operations fits when n plus its members' largest need is within the limit.
// A txn's own count is its longest list (compares, then, else).
func (o *Op) need() int {
	if o.kind != opTxn {
		return 0
	}
	deeper := 0
	for i := range o.then {
		deeper = max(deeper, o.then[i].need())
	}
	for i := range o.els {
		deeper = max(deeper, o.els[i].need())
	}
	return max(len(o.cmps), len(o.then), len(o.els)) + deeper
}

// readOnly reports whether a transaction only reads, so that it may be retried.
func (o *Op) readOnly() bool {
	switch o.kind {
	case opGet:
		return true
	case opTxn:
		for i := range o.then {
			if !o.then[i].readOnly() {
				return false
			}
		}
		for i := range o.els {
			if !o.els[i].readOnly() {
				return false
			}
		}
		return true
	}
	return false
}

// SortOrder orders the keys of a range.
type SortOrder int

// Sort orders.
const (
	SortNone SortOrder = iota
	SortAscend
	SortDescend
)

// SortTarget is the field a range is sorted by.
type SortTarget int

// Sort targets.
const (
	SortByKey SortTarget = iota
	SortByVersion
	SortByCreateRevision
	SortByModRevision
	SortByValue
)
