// Package integration gives tests a real, throwaway etcd: one member or a cluster,
// a ready gateway client, and control of each member (stop, kill, pause, restart).
//
//	func TestWorker(t *testing.T) {
//		etcd := integration.New(t, integration.WithMembers(3))
//		m, err := mutex.Acquire(ctx, etcd.Client(), "jobs/lock", 10)
//		…
//	}
//
// Members run in Docker containers started with testcontainers-go, or, where no
// Docker engine is reachable, as local etcd processes: the same API either way (see
// Backend). Every member listens on 127.0.0.1 only; the containers use the host's
// network, so no port is published and no traffic leaves loopback.
//
// # Docker
//
// The image defaults to DefaultImage, the official etcd image of the version this
// module is tested with; $ETCDGW_ETCD_IMAGE or WithImage choose another. Any image
// with a static etcd at /usr/local/bin/etcd works, such as one built FROM scratch
// where no registry can be reached:
//
//	FROM scratch
//	COPY etcd /usr/local/bin/etcd
//
// Host networking needs a Linux engine (Docker Desktop: enable host networking in
// its settings). Where testcontainers' reaper image cannot be pulled, set
// TESTCONTAINERS_RYUK_DISABLED=true: Terminate removes the containers either way.
//
// # Local binaries
//
// The Local backend runs the executable given by WithBinary, or else
// $ETCDGW_ETCD_BINARY, $ETCD_BIN, or etcd on $PATH. Its processes end with the test
// binary even when it crashes.
//
// # Leaks
//
// Terminate closes every client, connection and goroutine this package opened,
// so a test that checks for leaked goroutines with go.uber.org/goleak needs no
// option for it when the reaper is disabled. With testcontainers' reaper (Ryuk)
// enabled, testcontainers keeps its connection to the reaper open until the
// process exits, on purpose; tell goleak so:
//
//	goleak.VerifyTestMain(m,
//		goleak.IgnoreAnyFunction("github.com/testcontainers/testcontainers-go.(*Reaper).connect.func1"))
package integration
