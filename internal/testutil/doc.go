// Package testutil holds the helpers this repository's tests share, one file a
// job: clients, leases and bounded contexts (client.go), a cluster's leader and
// followers and a server for examples (cluster.go), terse assertions
// (assert.go), calls run in the background (async.go), and log lines (log.go).
//
// Every helper that can fail the test takes it first, then ctx: Lease(t, ctx,
// …), Leader(t, ctx, cl). Members are named by *etcdtest.Member, never by
// index.
package testutil
