// Package faults holds etcdgw's fault-injection suite, in its tests: real
// three-member etcd clusters started with the integration package, real faults
// (members killed and restarted, leader and followers, members frozen with
// SIGSTOP, TCP proxies on loopback that cut, delay or blackhole a client's
// connections, clients whose keepalives stop past their TTL, zombie clients,
// lock keys deleted under their holders), and workloads whose histories are
// checked afterwards: KV linearizability with porcupine and no write applied
// twice, lock fencing and exclusion, one leader per term, losses signalled or
// reported, no lost or doubly acknowledged work item and no item claimed by two,
// and watches that see every revision once and in order.
//
// A zombie is a client paused past its lease, as by a long GC, a SIGSTOP or a
// frozen VM: the nemesis aims at an actor that holds a lock, a leadership or a
// claimed item, makes every connection of its client silent for the TTL plus two
// seconds (its leases expire; others take over) and stops its worker at its next
// step; then both resume and the worker carries on with what it was doing. It
// runs in the test's process: its lease manager keeps running while its worker
// is frozen, so the library's loss signal may come during the pause, and the
// worker sees it when it thaws, as a paused process sees its lease timer fire
// when it wakes.
//
// Holds are short or long (a guarded write every 300 ms for one to three TTLs,
// ending only on the loss signal or a deadline); half the holders watch their
// loss signal, the others learn of a loss from Unlock; waiters give up after one
// to ten seconds; one work item in ten takes longer than the TTL to process.
//
// The suite has teeth: `make mutants` applies each deliberate bug listed in
// mutants/list to a scratch copy of the tree and requires a workload to report a
// violation within its short run.
//
// `go test .` runs the short version, each workload for 20 seconds (the lock and
// election workloads on, up to 60, until every kind of holder has held the lock
// and written under it); -soak=10m runs each for longer. Each run prints a
// summary table: workload, faults injected, operations checked, violations. A
// history porcupine finds not linearizable is written as porcupine's HTML
// visualisation to $FAULTS_OUT (default: the system's temporary directory).
package faults
