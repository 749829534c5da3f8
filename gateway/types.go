package gateway

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// The gateway encodes int64 and uint64 fields as JSON strings and omits fields
// that hold their zero value (proto3 JSON); the ",string" tags below read them.

// Header is the response header every reply carries.
type Header struct {
	ClusterID uint64 `json:"cluster_id,string"`
	MemberID  uint64 `json:"member_id,string"`
	// Revision is the store's revision when the request was served.
	Revision int64  `json:"revision,string"`
	RaftTerm uint64 `json:"raft_term,string"`
}

// KeyValue is a key and its value with their metadata.
type KeyValue struct {
	Key   []byte `json:"key"`
	Value []byte `json:"value"`
	// CreateRevision is the revision of the key's creation. It rises
	// monotonically across creations, which makes it a fencing token.
	CreateRevision int64 `json:"create_revision,string"`
	// ModRevision is the revision of the key's last modification.
	ModRevision int64 `json:"mod_revision,string"`
	// Version counts modifications since creation; a deletion resets it to 0.
	Version int64 `json:"version,string"`
	// Lease is the ID of the lease attached to the key, or 0.
	Lease int64 `json:"lease,string"`
}

// GetResponse is the result of a range read.
type GetResponse struct {
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
	Header Header `json:"header"`
	// PrevKv is the key before the put, when WithPrevKV was given and it existed.
	PrevKv *KeyValue `json:"prev_kv"`
}

// DeleteResponse is the result of a delete.
type DeleteResponse struct {
	Header Header `json:"header"`
	// Deleted is the number of keys deleted.
	Deleted int64 `json:"deleted,string"`
	// PrevKvs are the deleted keys, when WithPrevKV was given.
	PrevKvs []KeyValue `json:"prev_kvs"`
}

// TxnResponse is the result of a transaction.
type TxnResponse struct {
	Header Header `json:"header"`
	// Succeeded reports whether every comparison held, so the Then branch ran.
	Succeeded bool `json:"succeeded"`
	// Responses hold one result per operation of the branch that ran.
	Responses []OpResponse `json:"responses"`
}

// OpResponse is the result of one operation in a transaction: exactly one field
// is set, matching the operation's kind.
type OpResponse struct {
	Get    *GetResponse    `json:"response_range"`
	Put    *PutResponse    `json:"response_put"`
	Delete *DeleteResponse `json:"response_delete_range"`
	Txn    *TxnResponse    `json:"response_txn"`
}

// CompactResponse is the result of a compaction.
type CompactResponse struct {
	Header Header `json:"header"`
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

// EventType is the kind of a watch event.
type EventType int

// Event types.
const (
	EventPut EventType = iota
	EventDelete
)

func (t EventType) String() string {
	switch t {
	case EventPut:
		return "PUT"
	case EventDelete:
		return "DELETE"
	}
	return "EventType(" + strconv.Itoa(int(t)) + ")"
}

// UnmarshalJSON accepts the enum's name or number.
func (t *EventType) UnmarshalJSON(b []byte) error {
	n, err := unmarshalEnum(b, map[string]int{"PUT": 0, "DELETE": 1})
	*t = EventType(n)
	return err
}

func unmarshalEnum(b []byte, names map[string]int) (int, error) {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return 0, err
		}
		if n, ok := names[s]; ok {
			return n, nil
		}
		if n, err := strconv.Atoi(s); err == nil {
			return n, nil
		}
		return 0, fmt.Errorf("gateway: unknown enum value %q", s)
	}
	var n int
	err := json.Unmarshal(b, &n)
	return n, err
}
