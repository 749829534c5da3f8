// Command etcdctl is etcd's etcdctl at a pinned version, built from the Go
// module proxy for the interop tests (`etcdctl lock`, `etcdctl elect`).
package main

import "go.etcd.io/etcd/etcdctl/v3/ctlv3"

func main() { ctlv3.MustStart() }
