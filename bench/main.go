// Command bench measures etcdgw and clientv3 side by side on the same etcd:
// KV throughput and latency at several caller counts, lock hand-offs, election
// failover and work-queue throughput. It starts its own etcd members (one, one
// serving https for the lock hand-offs over TLS, and a cluster of three), runs
// both clients interleaved in one process, round after round, and prints the
// medians as one markdown table. It also writes an SVG plot of ops/s against
// callers.
//
//	cd bench && go run . -rounds 5 -dur 3s -svg ../docs/bench.svg
//
// `make bench` runs it with the etcd the repository pins.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/etcdgw/etcdgw/internal/etcdtest"
)

func main() {
	rounds := flag.Int("rounds", 5, "rounds of every measurement; the table shows medians")
	dur := flag.Duration("dur", 3*time.Second, "length of one timed run")
	callers := flag.String("callers", "1,16,64,256", "caller counts for the KV runs")
	ops := flag.String("ops", "put,get,txn,txn-coalesce", "KV operations to run (txn-coalesce: etcdgw's txn marked Txn.Coalesce)")
	only := flag.String("only", "kv,lock,election,queue,mem", "which sections to run")
	svg := flag.String("svg", "", "write the ops/s plot to this SVG file")
	md := flag.String("md", "", "also write the markdown table to this file")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg := config{rounds: *rounds, dur: *dur, ops: strings.Split(*ops, ",")}
	for _, s := range strings.Split(*callers, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			fatal(fmt.Errorf("bad -callers %q", *callers))
		}
		cfg.callers = append(cfg.callers, n)
	}
	sections := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		sections[s] = true
	}
	rep, err := run(ctx, cfg, sections)
	if err != nil {
		fatal(err)
	}
	table := rep.markdown()
	fmt.Print(table)
	if *md != "" {
		if err := os.WriteFile(*md, []byte(table), 0o644); err != nil {
			fatal(err)
		}
	}
	if *svg != "" && len(rep.kv) > 0 {
		if err := os.WriteFile(*svg, []byte(rep.plot()), 0o644); err != nil {
			fatal(err)
		}
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

type config struct {
	rounds  int
	dur     time.Duration
	callers []int
	ops     []string
}

// run starts the servers and runs the chosen sections.
func run(ctx context.Context, cfg config, sections map[string]bool) (*report, error) {
	single, err := etcdtest.Launch(etcdtest.Options{})
	if err != nil {
		return nil, err
	}
	defer single.Terminate()
	rep := &report{cfg: cfg, version: single.Version(), cpus: runtime.NumCPU(), goVersion: runtime.Version()}
	m := single.Members[0]
	say("etcd %s, one member at %s (pid %d)", single.Version(), m.ClientURL, m.PID())
	if sections["kv"] {
		if rep.kv, err = kvSection(ctx, cfg, single); err != nil {
			return nil, err
		}
	}
	if sections["lock"] {
		if rep.locks, err = lockSection(ctx, cfg, single, nil); err != nil {
			return nil, err
		}
		if rep.locksTLS, err = tlsLocks(ctx, cfg); err != nil {
			return nil, err
		}
	}
	if sections["mem"] {
		if rep.mem, err = memSection(ctx); err != nil {
			return nil, err
		}
	}
	if sections["election"] || sections["queue"] {
		three, err := etcdtest.Launch(etcdtest.Options{Size: 3})
		if err != nil {
			return nil, err
		}
		defer three.Terminate()
		if sections["election"] {
			if rep.failover, err = electionSection(ctx, cfg, three); err != nil {
				return nil, err
			}
		}
		if sections["queue"] {
			if rep.queue, err = queueSection(ctx, cfg, single, three); err != nil {
				return nil, err
			}
		}
	}
	return rep, nil
}

// tlsLocks runs the lock section on a member of its own that serves https, so
// that hand-offs over HTTP/2 are measured too.
func tlsLocks(ctx context.Context, cfg config) (pair, error) {
	dir, err := os.MkdirTemp("", "etcdgw-bench-certs-")
	if err != nil {
		return pair{}, err
	}
	defer os.RemoveAll(dir)
	certs, err := etcdtest.MakeCerts(dir)
	if err != nil {
		return pair{}, err
	}
	tlsCfg, err := certs.ClientTLS()
	if err != nil {
		return pair{}, err
	}
	cl, err := etcdtest.Launch(etcdtest.Options{TLS: certs})
	if err != nil {
		return pair{}, err
	}
	defer cl.Terminate()
	return lockSection(ctx, cfg, cl, tlsCfg)
}

// say prints progress on stderr, so that stdout holds the table alone.
func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
