// Command etcd is an etcd server built from the Go module proxy at the version pinned
// in this folder's go.mod. The project's tests run it; it is not part of the library.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
