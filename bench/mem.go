package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
)

// memCallers and memDur shape the memory runs: enough writes for the member's
// raft log to fill, as a busy writer's would.
const (
	memCallers = 256
	memDur     = 10 * time.Second
)

// memRow is one client's memory run: the member's memory after memDur of
// memCallers callers putting, each on a fresh member.
type memRow struct {
	client string
	rate   float64 // puts/s
	heap   int64   // the member's Go heap in use, bytes
	rss    int64   // the member's resident memory, bytes
}

// memSection measures what a write load costs the member in memory: a
// coalesced batch is one raft entry, and etcd keeps its raft log by a count
// of entries. Each client gets a fresh member, so that neither inherits the
// other's log.
func memSection(ctx context.Context) ([]memRow, error) {
	clients := []struct {
		name string
		make func(eps []string) (kvClient, error)
	}{
		{"clientv3", newV3},
		{"etcdgw", func(eps []string) (kvClient, error) { return newGW(eps) }},
		{"etcdgw, MaxTxnOps 32", func(eps []string) (kvClient, error) {
			return newGW(eps, func(c *gateway.Config) { c.MaxTxnOps = 32 })
		}},
	}
	var rows []memRow
	for _, cl := range clients {
		row, err := memRun(ctx, cl.name, cl.make)
		if err != nil {
			return nil, fmt.Errorf("memory, %s: %w", cl.name, err)
		}
		say("memory, %s: %.0f puts/s, member heap %d MB, resident %d MB", row.client, row.rate, row.heap>>20, row.rss>>20)
		rows = append(rows, row)
	}
	return rows, nil
}

func memRun(ctx context.Context, name string, mk func([]string) (kvClient, error)) (memRow, error) {
	cl, err := etcdtest.Launch(etcdtest.Options{})
	if err != nil {
		return memRow{}, err
	}
	defer cl.Terminate()
	c, err := mk(cl.Endpoints())
	if err != nil {
		return memRow{}, err
	}
	defer c.close()
	m := cl.Members[0]
	s, err := kvRun(ctx, c, "put", memCallers, memDur, strings.Repeat("v", 256), m.PID(), cl.Endpoints()[0])
	if err != nil {
		return memRow{}, err
	}
	heap, err := metric(ctx, cl.Endpoints()[0], "go_memstats_heap_inuse_bytes")
	if err != nil {
		return memRow{}, err
	}
	rss, err := residentBytes(m.PID())
	if err != nil {
		return memRow{}, err
	}
	return memRow{client: name, rate: s.rate(), heap: int64(heap), rss: rss}, nil
}

// residentBytes is the resident memory of process pid, from /proc.
func residentBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
