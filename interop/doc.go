// Package interop holds tests that run this repository's locks and elections
// against etcd's own Go client (clientv3's concurrency package) and etcdctl on
// the same server. It is a module of its own so that the library's users never
// pull clientv3 or gRPC into their module graph.
package interop
