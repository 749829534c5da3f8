// Package barrier provides barriers over etcd's gateway: a Barrier that blocks
// waiters until its holder releases it, and a DoubleBarrier that lets N
// participants start together and finish together.
//
// Every key a barrier writes is bound to the writer's lease, so a holder or a
// participant that crashes cannot block the others past its lease's TTL.
// Every wait honours its ctx and the lease; retries loop, they never recurse.
//
// What it leaves out: a barrier whose key outlives its holder. Every key here
// is bound to a lease, so a barrier is never stuck up by a crashed process.
package barrier
