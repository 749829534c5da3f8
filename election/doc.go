// Package election elects one leader among candidates, over etcd's gateway.
//
// It uses the key layout and algorithm of etcd's Go concurrency package: each
// candidate's key is <name>/<lease ID in hex>, holding its value, and the
// candidate with the oldest key leads. A clientv3 concurrency.Election and
// `etcdctl elect` take part in the same election.
//
// Unlike clientv3, Campaign re-checks its own key after waiting and fails if its
// lease was lost meanwhile (etcd issue 11007, "two leaders"); a leader gets a
// context that ends when its leadership does (lease lost, key deleted,
// resigned), in the spirit of client-go's OnStartedLeading(ctx); and Observe
// reports "no leader" too, survives compaction and member failover, and never
// reports an older leader after a newer one.
//
// What it leaves out: choosing a leader by anything but the order in which the
// candidates' keys were created (no priorities, no preferred leader), and etcd's
// own election service (/v3/election), which ties a campaign to a gRPC session.
package election
