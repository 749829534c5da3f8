package gateway

// The requests' shapes in encoding/json's terms: the reference that
// TestEncodeMatches holds the hand-built encoders of encode.go to. The client
// itself no longer uses them.

type rangeRequest struct {
	Key          []byte     `json:"key"`
	RangeEnd     []byte     `json:"range_end,omitempty"`
	Limit        int64      `json:"limit,omitempty"`
	Revision     int64      `json:"revision,omitempty"`
	SortOrder    SortOrder  `json:"sort_order,omitempty"`
	SortTarget   SortTarget `json:"sort_target,omitempty"`
	Serializable bool       `json:"serializable,omitempty"`
	KeysOnly     bool       `json:"keys_only,omitempty"`
	CountOnly    bool       `json:"count_only,omitempty"`
	MinModRev    int64      `json:"min_mod_revision,omitempty"`
	MaxModRev    int64      `json:"max_mod_revision,omitempty"`
	MinCreateRev int64      `json:"min_create_revision,omitempty"`
	MaxCreateRev int64      `json:"max_create_revision,omitempty"`
}

type putRequest struct {
	Key         []byte `json:"key"`
	Value       []byte `json:"value,omitempty"`
	Lease       int64  `json:"lease,omitempty"`
	PrevKV      bool   `json:"prev_kv,omitempty"`
	IgnoreValue bool   `json:"ignore_value,omitempty"`
	IgnoreLease bool   `json:"ignore_lease,omitempty"`
}

type deleteRequest struct {
	Key      []byte `json:"key"`
	RangeEnd []byte `json:"range_end,omitempty"`
	PrevKV   bool   `json:"prev_kv,omitempty"`
}

type txnRequest struct {
	Compare []compare   `json:"compare,omitempty"`
	Success []requestOp `json:"success,omitempty"`
	Failure []requestOp `json:"failure,omitempty"`
}

type requestOp struct {
	Range  *rangeRequest  `json:"request_range,omitempty"`
	Put    *putRequest    `json:"request_put,omitempty"`
	Delete *deleteRequest `json:"request_delete_range,omitempty"`
	Txn    *txnRequest    `json:"request_txn,omitempty"`
}

// compare sets exactly one of the target fields, and sets it even when it is zero:
// a comparison "create_revision == 0" must say so.
type compare struct {
	Result         CmpResult `json:"result"`
	Target         cmpTarget `json:"target"`
	Key            []byte    `json:"key"`
	RangeEnd       []byte    `json:"range_end,omitempty"`
	Version        *int64    `json:"version,omitempty,string"`
	CreateRevision *int64    `json:"create_revision,omitempty,string"`
	ModRevision    *int64    `json:"mod_revision,omitempty,string"`
	Value          *[]byte   `json:"value,omitempty"`
	Lease          *int64    `json:"lease,omitempty,string"`
}

func (o *Op) rangeRequest() *rangeRequest {
	return &rangeRequest{
		Key: o.key, RangeEnd: o.end, Limit: o.limit, Revision: o.rev,
		SortOrder: o.sortOrder, SortTarget: o.sortTarget, Serializable: o.serializable,
		KeysOnly: o.keysOnly, CountOnly: o.countOnly,
		MinModRev: o.minModRev, MaxModRev: o.maxModRev,
		MinCreateRev: o.minCreateRev, MaxCreateRev: o.maxCreateRev,
	}
}

func (o *Op) putRequest() *putRequest {
	return &putRequest{Key: o.key, Value: []byte(o.val), Lease: o.lease, PrevKV: o.prevKV,
		IgnoreValue: o.ignoreValue, IgnoreLease: o.ignoreLease}
}

func (o *Op) deleteRequest() *deleteRequest {
	return &deleteRequest{Key: o.key, RangeEnd: o.end, PrevKV: o.prevKV}
}

func (o *Op) txnRequest() *txnRequest {
	t := &txnRequest{
		Compare: make([]compare, len(o.cmps)),
		Success: make([]requestOp, len(o.then)),
		Failure: make([]requestOp, len(o.els)),
	}
	for i, c := range o.cmps {
		t.Compare[i] = c.wire()
	}
	for i := range o.then {
		t.Success[i] = o.then[i].requestOp()
	}
	for i := range o.els {
		t.Failure[i] = o.els[i].requestOp()
	}
	return t
}

func (o *Op) requestOp() requestOp {
	switch o.kind {
	case opGet:
		return requestOp{Range: o.rangeRequest()}
	case opPut:
		return requestOp{Put: o.putRequest()}
	case opDelete:
		return requestOp{Delete: o.deleteRequest()}
	case opTxn:
		return requestOp{Txn: o.txnRequest()}
	}
	return requestOp{}
}

func (c Cmp) wire() compare {
	w := compare{Result: c.result, Target: c.target, Key: c.key, RangeEnd: c.end}
	n := c.n
	switch c.target {
	case targetVersion:
		w.Version = &n
	case targetCreate:
		w.CreateRevision = &n
	case targetMod:
		w.ModRevision = &n
	case targetLease:
		w.Lease = &n
	case targetValue:
		v := c.value
		if v == nil {
			v = []byte{}
		}
		w.Value = &v
	}
	return w
}
