package mutex

import (
	"errors"

	"github.com/etcdgw/etcdgw/internal/ticket"
)

// The errors of Mutex, RWMutex and Semaphore. Package election has an ErrLost
// of its own, for leadership; each package's errors match only its own
// sentinels.
var (
	// ErrLocked: TryLock found the lock held by someone else (or, for a
	// semaphore, all of its slots taken or awaited).
	ErrLocked = errors.New("mutex: locked by another holder")
	// ErrNotLocked: Unlock of a lock that is not held, or the cause of a lock's
	// Context after Unlock.
	ErrNotLocked = errors.New("mutex: not locked")
	// ErrLost: the lock was lost: its lease ended, or its key was deleted by
	// someone else. Lock returns it when the lease ends while waiting; Unlock
	// returns it when the lock had been lost before; it is the cause of the
	// lock's Context then. When the lease ended, the error also matches the
	// lease's (lease.ErrLost or lease.ErrClosed).
	ErrLost = errors.New("mutex: lock lost")
	// ErrInvalidArgument: NewSemaphore was given a size that is not positive.
	ErrInvalidArgument = errors.New("mutex: invalid argument")
	// ErrInUse: the key this lock would use is already held or awaited by
	// another lock object in this process (same lease, same name).
	ErrInUse = errors.New("mutex: already held or awaited in this process")
)

var ticketErrors = &ticket.Errors{Busy: ErrLocked, NotHeld: ErrNotLocked, Released: ErrNotLocked, Lost: ErrLost, InUse: ErrInUse}
