package gateway

import (
	"encoding/base64"
	"strconv"
	"sync"
)

// Hand-built JSON for the requests of the hot path (Get, Put, Delete, Txn, and
// the txns coalescing makes of them): appending to a pooled buffer costs a
// fraction of encoding/json's reflection, which on a client sharing two cores
// with its server is throughput. The shapes and field names match the request
// structs of encode_reference_test.go, and TestEncodeMatches holds the two to
// the same bytes' meaning.

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func appendBase64(b, v []byte) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}

// appendField appends ,"name": (or "name": first in an object).
func appendField(b []byte, name string) []byte {
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

func appendInt(b []byte, name string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(appendField(b, name), v, 10)
}

func appendTrue(b []byte, name string, v bool) []byte {
	if !v {
		return b
	}
	return append(appendField(b, name), "true"...)
}

func appendBytesField(b []byte, name string, v []byte, omitEmpty bool) []byte {
	if omitEmpty && len(v) == 0 {
		return b
	}
	return appendBase64(appendField(b, name), v)
}

// appendRangeRequest appends o as a RangeRequest.
func appendRangeRequest(b []byte, o *Op) []byte {
	b = append(b, '{')
	b = appendBytesField(b, "key", o.key, false)
	b = appendBytesField(b, "range_end", o.end, true)
	b = appendInt(b, "limit", o.limit)
	b = appendInt(b, "revision", o.rev)
	b = appendInt(b, "sort_order", int64(o.sortOrder))
	b = appendInt(b, "sort_target", int64(o.sortTarget))
	b = appendTrue(b, "serializable", o.serializable)
	b = appendTrue(b, "keys_only", o.keysOnly)
	b = appendTrue(b, "count_only", o.countOnly)
	b = appendInt(b, "min_mod_revision", o.minModRev)
	b = appendInt(b, "max_mod_revision", o.maxModRev)
	b = appendInt(b, "min_create_revision", o.minCreateRev)
	b = appendInt(b, "max_create_revision", o.maxCreateRev)
	return append(b, '}')
}

// appendPutRequest appends o as a PutRequest.
func appendPutRequest(b []byte, o *Op) []byte {
	b = append(b, '{')
	b = appendBytesField(b, "key", o.key, false)
	// The conversion copies nothing: the compiler sees that the bytes are only
	// read (go build -gcflags=-m says "zero-copy").
	b = appendBytesField(b, "value", []byte(o.val), true)
	b = appendInt(b, "lease", o.lease)
	b = appendTrue(b, "prev_kv", o.prevKV)
	b = appendTrue(b, "ignore_value", o.ignoreValue)
	b = appendTrue(b, "ignore_lease", o.ignoreLease)
	return append(b, '}')
}

// appendDeleteRequest appends o as a DeleteRangeRequest.
func appendDeleteRequest(b []byte, o *Op) []byte {
	b = append(b, '{')
	b = appendBytesField(b, "key", o.key, false)
	b = appendBytesField(b, "range_end", o.end, true)
	b = appendTrue(b, "prev_kv", o.prevKV)
	return append(b, '}')
}

// cmpTargetFields name the field that holds each numeric target's operand.
var cmpTargetFields = [...]string{
	targetVersion: "version",
	targetCreate:  "create_revision",
	targetMod:     "mod_revision",
	targetLease:   "lease",
}

// appendCompare appends c as a Compare: its one target field is always set,
// even to zero, and numbers are strings.
func appendCompare(b []byte, c *Cmp) []byte {
	b = append(b, `{"result":`...)
	b = strconv.AppendInt(b, int64(c.result), 10)
	b = append(b, `,"target":`...)
	b = strconv.AppendInt(b, int64(c.target), 10)
	b = appendBytesField(b, "key", c.key, false)
	b = appendBytesField(b, "range_end", c.end, true)
	if c.target == targetValue {
		b = appendBytesField(b, "value", c.value, false)
	} else {
		b = append(appendField(b, cmpTargetFields[c.target]), '"')
		b = append(strconv.AppendInt(b, c.n, 10), '"')
	}
	return append(b, '}')
}

// appendTxnRequest appends o as a TxnRequest.
func appendTxnRequest(b []byte, o *Op) []byte {
	b = append(b, '{')
	if len(o.cmps) > 0 {
		b = append(appendField(b, "compare"), '[')
		for i := range o.cmps {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCompare(b, &o.cmps[i])
		}
		b = append(b, ']')
	}
	b = appendRequestOps(b, "success", o.then)
	b = appendRequestOps(b, "failure", o.els)
	return append(b, '}')
}

// appendRequestOps appends a txn branch, unless it is empty.
func appendRequestOps(b []byte, name string, ops []Op) []byte {
	if len(ops) == 0 {
		return b
	}
	b = append(appendField(b, name), '[')
	for i := range ops {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRequestOp(b, &ops[i])
	}
	return append(b, ']')
}

// appendRequest appends a Get, Put, Delete or Txn as its own request.
func appendRequest(b []byte, o *Op) []byte {
	switch o.kind {
	case opPut:
		return appendPutRequest(b, o)
	case opDelete:
		return appendDeleteRequest(b, o)
	case opTxn:
		return appendTxnRequest(b, o)
	}
	return appendRangeRequest(b, o)
}

// appendRequestOp appends a Get, Put, Delete or Txn as a RequestOp of a txn.
func appendRequestOp(b []byte, o *Op) []byte {
	switch o.kind {
	case opPut:
		b = append(b, `{"request_put":`...)
	case opDelete:
		b = append(b, `{"request_delete_range":`...)
	case opTxn:
		b = append(b, `{"request_txn":`...)
	default:
		b = append(b, `{"request_range":`...)
	}
	return append(appendRequest(b, o), '}')
}

// appendBatch appends a txn without comparisons whose success branch holds the
// waiters' operations.
func appendBatch(b []byte, ws []*waiter) []byte {
	b = append(b, `{"success":[`...)
	for i, w := range ws {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRequestOp(b, &w.op)
	}
	return append(b, ']', '}')
}
