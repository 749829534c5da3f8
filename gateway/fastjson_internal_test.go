package gateway

import (
	"encoding/json"
	"reflect"
	"testing"
)

// replySeeds are replies as etcd's gateway writes them, and a few it does not.
var replySeeds = []string{
	`{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"42","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"41","version":"7","value":"YmFy","lease":"7587883208377016353"}],"count":"1"}`,
	`{"header":{"revision":"5"},"kvs":[],"more":true,"count":"0"}`,
	`{"header":{"revision":"5"},"prev_kv":{"key":"AA==","value":""}}`,
	`{"header":{"revision":"5"},"deleted":"2","prev_kvs":[{"key":"YQ=="},{"key":"Yg==","value":null}]}`,
	`{"header":{"revision":"9"},"succeeded":true,"responses":[{"response_range":{"header":{"revision":"9"},"kvs":[{"key":"YQ=="}],"count":"1"}},{"response_put":{"header":{}}},{"response_delete_range":{"deleted":"1"}},{"response_txn":{"succeeded":false,"responses":[]}}]}`,
	// a batch's reads of a missing key and of one key, as etcd writes them
	`{"header":{"revision":"9"},"succeeded":true,"responses":[{"response_range":{"header":{"revision":"9"}}},{"response_range":{"header":{"revision":"9"},"kvs":[{"key":"YQ==","create_revision":"2","mod_revision":"2","version":"1","value":"dg=="}],"count":"1"}}]}`,
	`{"Header":{"REVISION":"3"},"unknown":{"a":[1,2.5e3,"x",null,true]},"count":"-0"}`,
	`{"header":{"revision":3}}`,
	`{"count":"1e3"}`,
	`{"kvs":[{"key":"\u0041"}]}`,
	` { "kvs" : null , "more" : null } `,
	`{"header":null,"responses":null}`,
	// base64 texts that only encoding/json may read: a raw line break (the
	// base64 decoder would skip it), an escaped quote, an escape
	"{\"kvs\":[{\"key\":\"YQ==\",\"value\":\"Yg\n==\"}]}",
	`{"kvs":[{"key":"Y\"Q==","value":"Yg=="}]}`,
	`{"kvs":[{"key":"Y\u0051==","value":"Yg=="}]}`,
}

// decodeBoth decodes b into a fresh T with encoding/json and with the
// reader alone; ok is false when the reader gave up.
func decodeBoth[T any, P interface {
	*T
	fastDecoder
}](b []byte) (slow, fast *T, slowErr error, ok bool) {
	slow, fast = new(T), new(T)
	slowErr = json.Unmarshal(b, slow)
	r := reader{b: b}
	ok = P(fast).decodeFast(&r) == nil && r.end()
	return slow, fast, slowErr, ok
}

func checkSame[T any, P interface {
	*T
	fastDecoder
}](t *testing.T, b []byte) {
	slow, fast, err, ok := decodeBoth[T, P](b)
	if !ok {
		return // encoding/json decides
	}
	if err != nil {
		t.Fatalf("%T: the reader accepted %q, encoding/json refused it: %v", fast, b, err)
	}
	if !reflect.DeepEqual(slow, fast) {
		t.Fatalf("%T of %q:\n reader        %+v\n encoding/json %+v", fast, b, fast, slow)
	}
}

// FuzzFastDecode: whatever the reader accepts, encoding/json accepts and
// decodes to the same value.
func FuzzFastDecode(f *testing.F) {
	for _, s := range replySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkSame[GetResponse](t, b)
		checkSame[PutResponse](t, b)
		checkSame[DeleteResponse](t, b)
		checkSame[TxnResponse](t, b)
	})
}

// TestFastDecodeReads: the reader does take the gateway's replies (it is not
// giving everything to encoding/json).
func TestFastDecodeReads(t *testing.T) {
	for _, s := range replySeeds[:6] {
		var g GetResponse
		var tx TxnResponse
		r, r2 := reader{b: []byte(s)}, reader{b: []byte(s)}
		if g.decodeFast(&r) != nil || !r.end() || tx.decodeFast(&r2) != nil || !r2.end() {
			t.Errorf("the reader gave up on %s", s)
		}
	}
}
