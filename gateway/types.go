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
	// ClusterID is the ID of the cluster.
	ClusterID uint64 `json:"cluster_id,string"`
	// MemberID is the ID of the member that served the request.
	MemberID uint64 `json:"member_id,string"`
	// Revision is the store's revision when the request was served.
	Revision int64 `json:"revision,string"`
	// RaftTerm is the member's Raft term when it served the request.
	RaftTerm uint64 `json:"raft_term,string"`
}

// KeyValue is a key and its value with their metadata.
type KeyValue struct {
	// Key is the key, as raw bytes.
	Key []byte `json:"key"`
	// Value is its value (empty with WithKeysOnly).
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
