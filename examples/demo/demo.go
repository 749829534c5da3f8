package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
)

// options shape one demo run.
type options struct {
	jobs     int
	ttl      int64
	work     time.Duration
	replicas []string
}

// event is one line a worker printed: "<unix ms> <replica> <what> [fields]".
type event struct {
	at     time.Time
	who    string
	what   string
	fields []string
}

// summary is what the demo checked.
type summary struct {
	jobs        int
	acked       map[string][]string // job → the replicas that acked it
	perReplica  map[string]int
	results     int
	staleWrites int // result writes by a holder that was not the lock's owner, accepted
	refused     int // stale writes the server refused
	failover    time.Duration
	ttl         time.Duration
	killedWhile string
	problems    []string
	pids        []int  // every process the demo started: replicas and etcd members
	tmp         string // the demo's own temporary folder
}

func (s *summary) ok() bool { return len(s.problems) == 0 }

// demo runs the whole show and returns its summary; out gets the timeline.
func demo(ctx context.Context, out io.Writer, o options) (*summary, error) {
	start := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(out, "%6.2fs  "+format+"\n", append([]any{time.Since(start).Seconds()}, args...)...)
	}
	root, err := etcdtest.RepoRoot()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "etcdgw-demo")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	s := &summary{jobs: o.jobs, acked: map[string][]string{}, perReplica: map[string]int{}, ttl: time.Duration(o.ttl) * time.Second, tmp: tmp}
	worker := filepath.Join(tmp, "worker")
	build := exec.CommandContext(ctx, "go", "build", "-o", worker, "./examples/worker")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		return s, fmt.Errorf("building the worker: %v\n%s", err, b)
	}

	cl, err := etcdtest.Launch(etcdtest.Options{Size: 3})
	if err != nil {
		return nil, err
	}
	defer cl.Terminate()
	for _, m := range cl.Members {
		s.pids = append(s.pids, m.PID())
	}
	eps := cl.Endpoints()
	say("etcd %s: a 3-member cluster on %s", cl.Version(), strings.Join(eps, " "))
	c, err := gateway.New(gateway.Config{Endpoints: eps, RequestTimeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	defer c.Close()

	events := make(chan event, 1024)
	procs := map[string]*exec.Cmd{}
	var readers sync.WaitGroup
	for _, name := range o.replicas {
		cmd := exec.Command(worker, "-endpoints", strings.Join(eps, ","), "-name", name,
			"-jobs", fmt.Sprint(o.jobs), "-ttl", fmt.Sprint(o.ttl), "-work", o.work.String())
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		procs[name] = cmd
		s.pids = append(s.pids, cmd.Process.Pid)
		readers.Add(1)
		go func() {
			defer readers.Done()
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if e, ok := parseEvent(sc.Text()); ok {
					events <- e
				}
			}
		}()
	}
	// Stop every replica still running, however the demo ends.
	defer func() {
		for _, p := range procs {
			if p.ProcessState == nil {
				_ = p.Process.Signal(syscall.SIGTERM)
			}
		}
		done := make(chan struct{})
		go func() { readers.Wait(); close(done) }()
		for {
			select {
			case <-events:
			case <-done:
				for _, p := range procs {
					if p.ProcessState == nil {
						_ = p.Wait()
					}
				}
				return
			}
		}
	}()
	say("started replicas %s (worker pids %s)", strings.Join(o.replicas, ", "), pids(procs, o.replicas))

	var leader string
	var killedAt time.Time
	killedMember := false
	var memberKilledAt time.Time
	deadline := time.After(50 * time.Second)
	// Until every job is acked, and both kills have happened.
	for len(s.acked) < o.jobs || !killedMember {
		var e event
		select {
		case e = <-events:
		case <-deadline:
			return s, fmt.Errorf("after 50 s: %d of %d jobs acked, failover seen %v, Raft leader killed %v", len(s.acked), o.jobs, s.failover > 0, killedMember)
		case <-ctx.Done():
			return s, ctx.Err()
		}
		switch e.what {
		case "leader":
			if !killedAt.IsZero() && s.failover == 0 {
				s.failover = e.at.Sub(killedAt)
				say("%s leads now (term %s): elected %v after the kill", e.who, field(e, 1), s.failover.Round(time.Millisecond))
			} else {
				say("%s leads (term %s)", e.who, field(e, 1))
			}
			leader = e.who
		case "enqueued":
			say("%s enqueued %s jobs", e.who, field(e, 0))
		case "acked":
			job := field(e, 0)
			s.acked[job] = append(s.acked[job], e.who)
			s.perReplica[e.who]++
			if !memberKilledAt.IsZero() {
				say("work goes on: %s acked %s %v after the Raft leader was killed", e.who, job, e.at.Sub(memberKilledAt).Round(time.Millisecond))
				memberKilledAt = time.Time{}
			}
			if n := len(s.acked); n%max(1, o.jobs/6) == 0 && n < o.jobs {
				say("%d of %d jobs acked (%s)", n, o.jobs, s.done())
			}
		case "stale":
			s.refused++
			say("%s: its result for %s was refused (stale token %s)", e.who, field(e, 0), field(e, 2))
		case "session-ended", "retry", "error", "claim-lost":
			say("%s: %s %s", e.who, e.what, strings.Join(e.fields, " "))
		}
		// A third of the way: kill the leading replica's process.
		if killedAt.IsZero() && leader != "" && len(s.acked) >= o.jobs/3 {
			s.killedWhile = fmt.Sprintf("%d of %d jobs acked", len(s.acked), o.jobs)
			say("SIGKILL replica %s, the leader (pid %d), with %s", leader, procs[leader].Process.Pid, s.killedWhile)
			_ = procs[leader].Process.Kill()
			_ = procs[leader].Wait()
			killedAt = time.Now()
		}
		// Once a new leader leads: kill the etcd member that leads Raft.
		if !killedMember && s.failover > 0 {
			killedMember = true
			m, err := raftLeader(ctx, c, cl)
			if err != nil {
				return s, err
			}
			say("SIGKILL etcd member %s, the Raft leader (pid %d)", m.Name, m.PID())
			m.Kill()
			memberKilledAt = time.Now()
		}
	}
	say("all %d jobs acked; checking", o.jobs)
	check(ctx, c, s)
	return s, nil
}

func pids(procs map[string]*exec.Cmd, names []string) string {
	var out []string
	for _, n := range names {
		out = append(out, strconv.Itoa(procs[n].Process.Pid))
	}
	return strings.Join(out, ", ")
}

func field(e event, i int) string {
	if i < len(e.fields) {
		return e.fields[i]
	}
	return ""
}

func parseEvent(line string) (event, bool) {
	f := strings.Fields(line)
	if len(f) < 3 {
		return event{}, false
	}
	ms, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return event{}, false
	}
	return event{at: time.UnixMilli(ms), who: f[1], what: f[2], fields: f[3:]}, true
}

// raftLeader is the member that leads the Raft group, asked of each member.
func raftLeader(ctx context.Context, c *gateway.Client, cl *etcdtest.Cluster) (*etcdtest.Member, error) {
	for _, m := range cl.Members {
		st, err := c.Status(ctx, gateway.WithEndpoint(m.ClientURL))
		if err == nil && st.Leader == st.Header.MemberID {
			return m, nil
		}
	}
	return nil, errors.New("no member says it leads")
}

// check reads the cluster's history and fills in the summary's verdicts:
// every job acked once and none lost, a result for each, no stale write
// accepted, the failover within the TTL plus a second.
func check(ctx context.Context, c *gateway.Client, s *summary) {
	for job, who := range s.acked {
		if len(who) > 1 {
			s.problems = append(s.problems, fmt.Sprintf("%s acked %d times (%s)", job, len(who), strings.Join(who, ", ")))
		}
	}
	if len(s.acked) != s.jobs {
		s.problems = append(s.problems, fmt.Sprintf("%d of %d jobs acked", len(s.acked), s.jobs))
	}
	r, err := c.Get(ctx, "demo/results/", gateway.WithPrefix(), gateway.WithCountOnly())
	if err != nil {
		s.problems = append(s.problems, "reading the results: "+err.Error())
		return
	}
	s.results = int(r.Count)
	if s.results != s.jobs {
		s.problems = append(s.problems, fmt.Sprintf("%d results for %d jobs", s.results, s.jobs))
	}
	if err := checkFenced(ctx, c, s); err != nil {
		s.problems = append(s.problems, "reading the history: "+err.Error())
	}
	if s.failover == 0 || s.failover > s.ttl+time.Second {
		s.problems = append(s.problems, fmt.Sprintf("failover took %v, more than the TTL (%v) plus one second", s.failover, s.ttl))
	}
}

// checkFenced replays the history of the results lock and the results: each
// result must have been written while the token it carries belonged to the
// lock's holder (the oldest lock key then).
func checkFenced(ctx context.Context, c *gateway.Client, s *summary) error {
	w, err := c.WatchPrefix(ctx, "demo/", gateway.WithRev(1))
	if err != nil {
		return err
	}
	defer w.Stop()
	end, err := c.Put(ctx, "demo/~end", "")
	if err != nil {
		return err
	}
	holders := map[string]int64{} // lock key → create revision
	for r := range w.Events() {
		for _, ev := range r.Events {
			key := string(ev.Kv.Key)
			switch {
			case ev.Kv.ModRevision >= end.Header.Revision:
				return nil
			case strings.HasPrefix(key, "demo/results-lock/"):
				if ev.Type == gateway.EventPut {
					holders[key] = ev.Kv.CreateRevision
				} else {
					delete(holders, key)
				}
			case strings.HasPrefix(key, "demo/results/") && ev.Type == gateway.EventPut:
				var who string
				var token int64
				if _, err := fmt.Sscanf(string(ev.Kv.Value), "%s token %d", &who, &token); err != nil {
					return err
				}
				if oldest(holders) != token {
					s.staleWrites++
					s.problems = append(s.problems, fmt.Sprintf("%s written by %s with token %d at revision %d, when the holder's token was %d",
						key, who, token, ev.Kv.ModRevision, oldest(holders)))
				}
			}
		}
	}
	return w.Err()
}

func oldest(holders map[string]int64) int64 {
	var revs []int64
	for _, r := range holders {
		revs = append(revs, r)
	}
	if len(revs) == 0 {
		return 0
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i] < revs[j] })
	return revs[0]
}

// done is the jobs done per replica, as "a 3, b 4".
func (s *summary) done() string {
	var per []string
	for name, n := range s.perReplica {
		per = append(per, fmt.Sprintf("%s %d", name, n))
	}
	sort.Strings(per)
	return strings.Join(per, ", ")
}

// print writes the summary.
func (s *summary) print(out io.Writer) {
	mark := func(ok bool) string {
		if ok {
			return "ok  "
		}
		return "FAIL"
	}
	dup := 0
	for _, who := range s.acked {
		if len(who) > 1 {
			dup++
		}
	}
	fmt.Fprintf(out, "\nsummary\n")
	fmt.Fprintf(out, "  jobs done per replica: %s\n", s.done())
	fmt.Fprintf(out, "  %s every job acked exactly once: %d of %d acked, %d acked twice\n", mark(len(s.acked) == s.jobs && dup == 0), len(s.acked), s.jobs, dup)
	fmt.Fprintf(out, "  %s none lost: %d results for %d jobs\n", mark(s.results == s.jobs), s.results, s.jobs)
	fmt.Fprintf(out, "  %s no stale write accepted: %d accepted, %d refused by the server\n", mark(s.staleWrites == 0), s.staleWrites, s.refused)
	fmt.Fprintf(out, "  %s new leader within the lease TTL plus one second: %v (TTL %v)\n", mark(s.failover > 0 && s.failover <= s.ttl+time.Second), s.failover.Round(time.Millisecond), s.ttl)
	for _, p := range s.problems {
		fmt.Fprintf(out, "  problem: %s\n", p)
	}
}
