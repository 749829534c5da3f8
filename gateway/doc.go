// Package gateway is a client for etcd's HTTP/JSON gateway (the grpc-gateway that
// every etcd member serves on its client URLs under /v3).
//
// It covers the v3 API that coordination needs: key-value ranges, puts, deletes and
// transactions; leases; watches that resume by themselves after a dropped connection
// without losing or repeating an event (and, over HTTP/2, answer progress requests:
// Watch.RequestProgress); cluster membership and maintenance. It speaks
// plain HTTP/1.1 (or HTTP/2 over TLS) and JSON, so it works wherever HTTP passes, and
// it depends on no gRPC or protobuf code.
//
// Keys and values are Go strings in arguments and []byte in results; both are
// binary-safe (a Go string holds any bytes). Every call that does I/O takes a
// context first; every error it returns is a *Error (or wraps one) that callers
// match with errors.Is against the sentinels in this package, such as ErrCompacted
// or ErrLeaseNotFound.
//
// # Fewer, fuller requests
//
// etcd's gateway costs the server about three times the CPU of a gRPC request,
// per request rather than per operation. So Get, Put and Delete calls made at the
// same time from different goroutines go to the server together, as the
// operations of one transaction: a call made while the client is idle is sent at
// once and alone; while requests are in flight, new calls gather into the next
// one (no timer, no added latency). Each call still gets its own response and its
// own error: a transaction refused because of one operation (a lease not found, a
// permission denied, a value too large) is split until that call fails alone;
// two writes to one key never share a transaction, so every put makes its own
// event. A write whose batch's reply is lost fails with ErrOutcomeUnknown, as it
// would alone; reads are sent again. One difference shows: writes coalesced
// together share one revision (each at its own key), as the operations of any
// transaction do, where separately they would have had consecutive ones. Code
// that orders writes to different keys by their revisions should use
// transactions, which are never merged unless marked Txn.Coalesce, or set
// Config.DisableCoalescing. Reads in a batch run before its writes, and each
// reports the revision it read at: watching from a read's revision + 1 sees
// every write its result does not show.
//
// A transaction marked Txn.Coalesce joins a batch as a nested transaction,
// where that cannot change its outcome: it shares no key with an earlier write
// of the batch, and no later write of the batch touches a key it compares or
// reads. It gives up a revision of its own, which is why it is asked for.
//
// The server pays in memory for it. etcd keeps its raft log in memory between
// snapshots, and counts it in entries (--snapshot-count: 10,000 since 3.6,
// 100,000 before; and 5,000 more kept for followers to catch up), not in
// bytes; a coalesced write batch is one entry. Measured with 256 callers
// putting 256-byte values: on etcd 3.6.16 the member's heap held 220–400 MB,
// against about 30 MB under clientv3 sending the same puts one by one; on etcd
// 3.5.21 its resident memory grew by about 35 MB a second, to 1.4 GB after 40
// s, and grows until 100,000 entries. Run etcd before 3.6 with
// --snapshot-count=10000 (the default etcd chose for 3.6), and bound a batch with
// Config.MaxTxnOps: at 32, the same load on 3.6.16 ran at about 45,000 puts/s
// (128: about 75,000) with 80–140 MB. Config.DisableCoalescing removes the
// difference.
//
// Waits (Await, and through it every lock, election, barrier and queue wait)
// share one watch stream per scope per client, so a hand-off between waiters
// opens no connection.
//
// What it leaves out: locks, elections and the other recipes live in their own
// packages (lease, mutex, election, barrier, queue), which are built on this one.
// The v2 API and etcd's own lock and election services (/v3/lock, /v3/election),
// which tie a lock to a gRPC session, are not wrapped; the recipes implement the
// same key layouts client-side.
package gateway
