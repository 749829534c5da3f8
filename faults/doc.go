// Package faults holds etcdgw's fault-injection suite, in its tests: real
// three-member etcd clusters started with the integration package, real faults
// (members killed and restarted, leader and followers, members frozen with
// SIGSTOP, TCP proxies on loopback that cut, delay or blackhole a client's
// connections, clients whose keepalives stop past their TTL), and workloads whose
// histories are checked afterwards: KV linearizability with porcupine, lock
// fencing and exclusion, one leader per term, no lost or doubly acknowledged work
// item, and watches that see every revision once and in order.
//
// `go test .` runs the short version, each workload for 20 seconds; -soak=10m runs
// each for longer. Each run prints a summary table: workload, faults injected,
// operations checked, violations. A history porcupine finds not linearizable is
// written as porcupine's HTML visualisation to $FAULTS_OUT (default: the system's
// temporary directory).
package faults
