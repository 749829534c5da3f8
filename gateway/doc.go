// Package gateway is a client for etcd's HTTP/JSON gateway (the grpc-gateway that
// every etcd member serves on its client URLs under /v3).
//
// It covers the v3 API that coordination needs: key-value ranges, puts, deletes and
// transactions; leases; watches that resume by themselves after a dropped connection
// without losing or repeating an event; cluster membership and maintenance. It speaks
// plain HTTP/1.1 (or HTTP/2 over TLS) and JSON, so it works wherever HTTP passes, and
// it depends on no gRPC or protobuf code.
//
// Keys and values are Go strings in arguments and []byte in results; both are
// binary-safe (a Go string holds any bytes). Every call that does I/O takes a
// context first; every error it returns is a *Error (or wraps one) that callers
// match with errors.Is against the sentinels in this package, such as ErrCompacted
// or ErrLeaseNotFound.
//
// What it leaves out: locks, elections and the other recipes live in their own
// packages (lease, mutex, election, barrier, queue), which are built on this one.
// The v2 API and etcd's own lock and election services (/v3/lock, /v3/election),
// which tie a lock to a gRPC session, are not wrapped; the recipes implement the
// same key layouts client-side.
package gateway
