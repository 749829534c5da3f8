package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cpu is CPU time used, user plus system.
type cpu time.Duration

// selfCPU is this process's CPU time so far.
func selfCPU() cpu {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return cpu(time.Duration(ru.Utime.Nano() + ru.Stime.Nano()))
}

// procCPU is the CPU time of process pid so far, from /proc/pid/stat (fields
// 14 and 15, in clock ticks of 10 ms on Linux).
func procCPU(pid int) cpu {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// f[0] is field 3 (state): utime is field 14, stime 15.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return cpu(time.Duration(ut+st) * 10 * time.Millisecond)
}

// activeOpens is the kernel's count of TCP connections this host has opened
// (ActiveOpens in /proc/net/snmp).
func activeOpens() int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "Tcp:") {
			continue
		}
		fields := strings.Fields(line)[1:]
		if names == nil {
			names = fields
			continue
		}
		if i := slices.Index(names, "ActiveOpens"); i >= 0 {
			n, _ := strconv.ParseInt(fields[i], 10, 64)
			return n
		}
	}
	return 0
}

// sample is one timed run's figures.
type sample struct {
	ops       int64
	elapsed   time.Duration
	lat       []time.Duration // one per op, or a sample of them
	clientCPU cpu
	serverCPU cpu
	conns     int64 // new TCP connections
	requests  int64 // KV requests the server handled
}

// perRequest is operations per request the server handled: how full
// coalescing's batches were (clientv3 sends one operation per request).
func (s sample) perRequest() float64 {
	if s.requests == 0 {
		return 0
	}
	return float64(s.ops) / float64(s.requests)
}

// kvRequests is how many KV requests the member at endpoint has handled, from
// its metrics: the gateway's requests reach its gRPC server, so both clients'
// requests count there.
func kvRequests(ctx context.Context, endpoint string) (int64, error) {
	n, err := metricSum(ctx, endpoint, func(line string) bool {
		return strings.HasPrefix(line, "grpc_server_handled_total{") && strings.Contains(line, `grpc_service="etcdserverpb.KV"`)
	})
	return int64(n), err
}

// metric is the value of the member's metric name (one without labels).
func metric(ctx context.Context, endpoint, name string) (float64, error) {
	return metricSum(ctx, endpoint, func(line string) bool { return strings.HasPrefix(line, name+" ") })
}

// metricSum sums the values of the member's metrics lines that match.
func metricSum(ctx context.Context, endpoint string, match func(line string) bool) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var n float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !match(line) {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics line %q: %w", line, err)
		}
		n += f
	}
	return n, sc.Err()
}

func (s sample) rate() float64 { return float64(s.ops) / s.elapsed.Seconds() }

func (s sample) pct(p float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	d := slices.Clone(s.lat)
	slices.Sort(d)
	return d[int(float64(len(d)-1)*p)]
}

// perOp is CPU time per operation.
func (s sample) perOp(c cpu) time.Duration {
	if s.ops == 0 {
		return 0
	}
	return time.Duration(c) / time.Duration(s.ops)
}

// meter brackets a run: CPU of this process and the server, TCP opens.
type meter struct {
	pid   int
	start time.Time
	self  cpu
	srv   cpu
	opens int64
}

func startMeter(serverPID int) *meter {
	return &meter{pid: serverPID, start: time.Now(), self: selfCPU(), srv: procCPU(serverPID), opens: activeOpens()}
}

func (m *meter) stop(ops int64, lat []time.Duration) sample {
	return sample{ops: ops, elapsed: time.Since(m.start), lat: lat,
		clientCPU: selfCPU() - m.self, serverCPU: procCPU(m.pid) - m.srv, conns: activeOpens() - m.opens}
}

// latencies gathers per-op latencies from many goroutines, each into its own
// slice, so that recording costs no lock.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
	ops int64
}

func (l *latencies) add(mine []time.Duration, ops int64) {
	l.mu.Lock()
	l.all = append(l.all, mine...)
	l.ops += ops
	l.mu.Unlock()
}

// median returns the median of xs under key.
func median[T any](xs []T, key func(T) float64) T {
	s := slices.Clone(xs)
	slices.SortFunc(s, func(a, b T) int {
		ka, kb := key(a), key(b)
		switch {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}
