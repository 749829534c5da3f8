// Package lease keeps an etcd lease alive in the background and says, before the
// server could act on it, when the lease is lost.
//
// A Lease is granted (or adopted by ID after a restart) with New, renewed about
// every third of its TTL, and retried with backoff when a renewal fails. It ends
// when the server says the lease is gone, or when no renewal has succeeded for the
// TTL minus a safety margin, counted from the moment the last successful renewal
// was sent. The server cannot expire the lease before that moment plus the TTL,
// so the holder learns of the loss first: Done closes, Context is cancelled and
// Err says why. Locks and elections built on a Lease stop at that signal.
//
// A process that is paused (a long GC, SIGSTOP, a frozen VM) cannot notice
// anything while it is paused; writes guarded by a lock's fencing compare are the
// protection against that case, not the lease.
//
// One Lease can back many locks and elections. Close revokes it (everything
// attached to it goes at once); Orphan stops renewing and leaves the lease to
// expire on the server, for a successor that adopts it with WithID.
//
// What it leaves out: a lease is not a lock. Nothing here keeps two holders
// apart; package mutex does, with keys bound to a lease.
package lease
