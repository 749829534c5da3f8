package mutex

import "github.com/etcdgw/etcdgw/internal/claim"

var (
	// ErrLocked: TryLock found the lock held by someone else (or, for a
	// semaphore, all of its slots taken or awaited).
	ErrLocked = claim.ErrLocked
	// ErrNotLocked: Unlock of a lock that is not held, or the cause of a lock's
	// Context after Unlock.
	ErrNotLocked = claim.ErrNotLocked
	// ErrLost: the lock was lost: its lease ended, or its key was deleted by
	// someone else. Lock returns it when the lease ends while waiting; Unlock
	// returns it when the lock had been lost before.
	ErrLost = claim.ErrLost
	// ErrInUse: the key this lock would use is already held or awaited by
	// another lock object in this process (same lease, same name).
	ErrInUse = claim.ErrInUse
)
