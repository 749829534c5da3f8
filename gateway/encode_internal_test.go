package gateway

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestEncodeMatches: the hand-built request bodies mean what encoding/json
// makes of the request structs, for every option of every operation.
func TestEncodeMatches(t *testing.T) {
	ops := []Op{
		OpGet("k"),
		OpGet("k\x00\xff binary", WithPrefix(), WithLimit(7), WithRev(42), WithSort(SortByModRevision, SortDescend),
			WithSerializable(), WithKeysOnly(), WithCountOnly(), WithMinModRev(1), WithMaxModRev(2),
			WithMinCreateRev(3), WithMaxCreateRev(4)),
		OpGet("a", WithRange("z")),
		OpGet("a", WithFromKey()),
		OpPut("k", ""),
		OpPut("k", "v\"\\\n", WithLease(0x7fffffffffffffff), WithPrevKV(), WithIgnoreValue(), WithIgnoreLease()),
		OpDelete("k"),
		OpDelete("k", WithPrefix(), WithPrevKV()),
		OpTxn(nil, nil, nil),
		OpTxn([]Cmp{
			CmpValue("k", Equal, ""), CmpValue("k", NotEqual, "v\x00").WithPrefix(),
			CmpVersion("k", Greater, 0), CmpCreateRevision("k", Less, -1).WithRange("z"),
			CmpModRevision("k", Equal, 1<<62), CmpLease("k", Equal, 7),
		}, []Op{OpPut("k", "v", WithLease(3)), OpGet("k", WithPrefix()),
			OpTxn([]Cmp{CmpVersion("j", Equal, 0)}, nil, []Op{OpDelete("j")})},
			[]Op{OpGet("k", WithCountOnly())}),
	}
	same := func(what string, built []byte, want any) {
		t.Helper()
		ref, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal(built, &a); err != nil {
			t.Fatalf("%s: built %s: %v", what, built, err)
		}
		if err := json.Unmarshal(ref, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s:\n built %s\n want  %s", what, built, ref)
		}
	}
	var ws []*waiter
	var req txnRequest
	for i := range ops {
		o := &ops[i]
		var want any
		switch o.kind {
		case opGet:
			want = o.rangeRequest()
		case opPut:
			want = o.putRequest()
		case opDelete:
			want = o.deleteRequest()
		case opTxn:
			want = o.txnRequest()
		}
		same("request", appendRequest(nil, o), want)
		same("request op", appendRequestOp(nil, o), o.requestOp())
		ws = append(ws, &waiter{op: *o})
		req.Success = append(req.Success, o.requestOp())
	}
	same("batch", appendBatch(nil, ws), req)
}
