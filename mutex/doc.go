// Package mutex provides distributed locks over etcd's gateway: Mutex, RWMutex
// and Semaphore. Each lock is a key bound to a lease (package lease); holders
// and waiters queue in the order their keys were created.
//
// Every lock here:
//   - waits with a watch on the one key it is queued behind, so a release wakes
//     one waiter, not all of them (a semaphore's first waiter watches the
//     holders' deletions);
//   - re-checks its own key after waiting, and stops waiting as soon as its
//     lease ends;
//   - removes its key when Lock's ctx ends before the lock is acquired;
//   - unlocks with a delete fenced by the key's create revision, so a late or
//     repeated Unlock never deletes a newer holder's key;
//   - gives a fencing token (Token: the key's create revision, which rises
//     with every acquisition) and a compare (IsOwner) to put into your own
//     transactions, so that a write happens only while the lock is held;
//   - ends its Context when the lock is lost: the lease ended, or someone
//     deleted the key.
//
// Mutex uses the key layout and algorithm of etcd's Go concurrency package
// (<name>/<lease ID in hex>, lowest create revision holds), so a program using
// this package, one using clientv3's concurrency.Mutex and `etcdctl lock`
// exclude each other on the same name.
//
// KeyLock takes a lock in the layout of the Python client etcd3gw's Lock, or of
// tooz's etcd3gw driver (one key, holding a token), so that Go and Python
// services exclude each other on one name. Locker adapts a lock to
// sync.Locker without ever panicking.
//
// A paused process cannot notice anything while it is paused, and its lease may
// expire meanwhile: guard the writes a lock protects with IsOwner (or compare
// Token in your store) rather than trusting that the lock is still held.
package mutex
