package main_test

// End-to-end tests: they build the etcdgw binary and run it, as a user would,
// against real etcd members.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

// bin is the etcdgw binary TestMain builds.
var bin string

func TestMain(m *testing.M) { goleak.VerifyTestMain(buildFirst{m}) }

type buildFirst struct{ m *testing.M }

func (b buildFirst) Run() int {
	dir, err := os.MkdirTemp("", "etcdgw-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "etcdgw")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building etcdgw: %v\n%s", err, out)
		return 1
	}
	return b.m.Run()
}

// result is one finished run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

// etcdgw runs the binary with args against eps and returns when it exits.
func etcdgw(t *testing.T, eps []string, stdin string, args ...string) result {
	t.Helper()
	return etcdgwEnv(t, eps, nil, stdin, args...)
}

// etcdgwEnv is etcdgw with more environment variables.
func etcdgwEnv(t *testing.T, eps []string, env []string, stdin string, args ...string) result {
	t.Helper()
	cmd := command(t, eps, args...)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var x *exec.ExitError
	switch {
	case errors.As(err, &x):
		r.code = x.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

func command(t *testing.T, eps []string, args ...string) *exec.Cmd {
	ctx := tu.Ctx(t)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "ETCDGW_ENDPOINTS="+strings.Join(eps, ","), "ETCDCTL_ENDPOINTS=", "ETCDGW_PASSWORD=")
	return cmd
}

// ok checks a run exited 0 and printed want (if given) on stdout.
func ok(t *testing.T, r result, want ...string) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q, stdout %q", r.code, r.stderr, r.stdout)
	}
	if len(want) > 0 && r.stdout != strings.Join(want, "\n")+"\n" {
		t.Fatalf("stdout %q, want %q", r.stdout, strings.Join(want, "\n")+"\n")
	}
}

// fails checks a run exited with code and printed one line on stderr
// containing part.
func fails(t *testing.T, r result, code int, part string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d; stderr %q", r.code, code, r.stderr)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, part) {
		t.Fatalf("stderr %q: want one line containing %q", r.stderr, part)
	}
}

func TestKeys(t *testing.T) {
	cl := etcdtest.Single(t)
	eps := cl.Endpoints()
	ok(t, etcdgw(t, eps, "", "put", "greeting/en", "hello"), "OK")
	ok(t, etcdgw(t, eps, "from stdin", "put", "greeting/fr"), "OK")
	ok(t, etcdgw(t, eps, "", "put", "greeting/de", "--", "-hallo-"), "OK")
	ok(t, etcdgw(t, eps, "", "get", "greeting/en"), "greeting/en", "hello")
	ok(t, etcdgw(t, eps, "", "get", "greeting/", "--prefix", "--print-value-only"), "-hallo-", "hello", "from stdin")
	ok(t, etcdgw(t, eps, "", "get", "--prefix", "greeting/", "--keys-only"), "greeting/de", "greeting/en", "greeting/fr")
	ok(t, etcdgw(t, eps, "", "get", "greeting/", "--prefix", "--count-only"), "3")
	ok(t, etcdgw(t, eps, "", "get", "greeting/a", "greeting/f"), "greeting/de", "-hallo-", "greeting/en", "hello")
	ok(t, etcdgw(t, eps, "", "get", "nothing"))
	ok(t, etcdgw(t, eps, "", "put", "--prev-kv", "greeting/en", "hi"), "OK", "greeting/en", "hello")

	j := etcdgw(t, eps, "", "-w", "json", "get", "greeting/en")
	ok(t, j)
	if !strings.Contains(j.stdout, `"kvs":[{"key":"Z3JlZXRpbmcvZW4="`) { // base64, as etcdctl prints
		t.Fatalf("json: %s", j.stdout)
	}
	tb := etcdgw(t, eps, "", "get", "greeting/en", "-w", "table")
	ok(t, tb)
	if !strings.HasPrefix(tb.stdout, "KEY") || !strings.Contains(tb.stdout, "greeting/en  hi") {
		t.Fatalf("table: %q", tb.stdout)
	}

	ok(t, etcdgw(t, eps, "", "del", "greeting/", "--prefix"), "3")
	ok(t, etcdgw(t, eps, "", "del", "greeting/en"), "0")
}

func TestUsageAndFailures(t *testing.T) {
	cl := etcdtest.Single(t)
	eps := cl.Endpoints()
	fails(t, etcdgw(t, eps, "", "frobnicate"), 2, "unknown command")
	fails(t, etcdgw(t, eps, "", "get"), 2, "wrong number of arguments")
	fails(t, etcdgw(t, eps, "", "get", "k", "--no-such-flag"), 2, "no-such-flag")
	fails(t, etcdgw(t, eps, "", "get", "k", "-w", "yaml"), 2, "want simple, json or table")
	fails(t, etcdgw(t, eps, "", "get", "k", "--prefix", "--from-key"), 2, "one of")
	fails(t, etcdgw(t, eps, "", "put", "k", "v", "--lease", "zz"), 2, "hex ID")
	fails(t, etcdgw(t, eps, "", "put", "k", "v", "--lease", "7eadbeef"), 1, "lease not found")
	// Nothing listens there (a port of a member that was never started).
	dead := []string{"http://127.0.0.1:1"}
	r := etcdgw(t, dead, "", "get", "k", "--command-timeout", "1s")
	fails(t, r, 3, "127.0.0.1:1")
	// Global flags before the command, and help.
	ok(t, etcdgw(t, dead, "", "--endpoints", strings.Join(eps, ","), "get", "k"))
	h := etcdgw(t, eps, "", "help", "lock")
	ok(t, h)
	if !strings.Contains(h.stdout, "-try") {
		t.Fatalf("help lock: %s", h.stdout)
	}
	ok(t, etcdgw(t, eps, "", "help"))
}

func TestLeaseAndCluster(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Size: 3})
	eps := cl.Endpoints()
	g := etcdgw(t, eps, "", "lease", "grant", "60")
	ok(t, g)
	var id string
	if _, err := fmt.Sscanf(g.stdout, "lease %s granted with TTL(60s)", &id); err != nil {
		t.Fatalf("grant: %q", g.stdout)
	}
	ok(t, etcdgw(t, eps, "", "put", "leased", "v", "--lease", id), "OK")
	ttl := etcdgw(t, eps, "", "lease", "timetolive", id, "--keys")
	ok(t, ttl)
	if !strings.Contains(ttl.stdout, "attached keys(leased)") {
		t.Fatalf("timetolive: %q", ttl.stdout)
	}
	if l := etcdgw(t, eps, "", "lease", "list"); !strings.Contains(l.stdout, id) {
		t.Fatalf("list: %q", l.stdout)
	}
	ok(t, etcdgw(t, eps, "", "lease", "keep-alive", "--once", id))
	ok(t, etcdgw(t, eps, "", "lease", "revoke", id), "lease "+id+" revoked")
	ok(t, etcdgw(t, eps, "", "get", "leased"))

	m := etcdgw(t, eps, "", "member", "list")
	ok(t, m)
	tu.Eq(t, "members", strings.Count(m.stdout, "started"), 3)

	// Per endpoint, not round robin: one paused member shows as such.
	h := etcdgw(t, eps, "", "endpoint", "health")
	ok(t, h)
	tu.Eq(t, "healthy lines", strings.Count(h.stdout, "is healthy"), 3)
	st := etcdgw(t, eps, "", "endpoint", "status", "-w", "table")
	ok(t, st)
	tu.Eq(t, "leaders", strings.Count(st.stdout, "true"), 1)
	// A follower: pausing the leader would make the others unhealthy too
	// until they elect a new one.
	f := tu.Follower(t, tu.Ctx(t), cl)
	tu.NoErr(t, f.Pause())
	defer f.Resume()
	h = etcdgw(t, eps, "", "endpoint", "health", "--command-timeout", "1s")
	if h.code == 0 || strings.Count(h.stdout, "is healthy") != 2 || !strings.Contains(h.stdout, f.ClientURL+" is unhealthy") {
		t.Fatalf("health with a paused member: exit %d, %q %q", h.code, h.stdout, h.stderr)
	}
}

// TestLockExcludes: commands run under `etcdgw lock` from two processes never
// overlap; each records when it enters and leaves.
func TestLockExcludes(t *testing.T) {
	cl := etcdtest.Single(t)
	log := filepath.Join(t.TempDir(), "log")
	const each = 5
	script := fmt.Sprintf(`echo "enter $ETCDGW_LOCK_TOKEN $(date +%%s%%N)" >> %s; sleep 0.05; echo "leave $ETCDGW_LOCK_TOKEN $(date +%%s%%N)" >> %s`, log, log)
	done := make(chan result, 2)
	for range 2 {
		go func() {
			var last result
			for range each {
				last = etcdgw(t, cl.Endpoints(), "", "lock", "shared", "--", "sh", "-c", script)
				if last.code != 0 {
					break
				}
			}
			done <- last
		}()
	}
	for range 2 {
		ok(t, <-done)
	}
	b, err := os.ReadFile(log)
	tu.NoErr(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	tu.Eq(t, "log lines", len(lines), 4*each)
	inside := ""
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case f[0] == "enter" && inside != "":
			t.Fatalf("token %s entered while %s was inside:\n%s", f[1], inside, b)
		case f[0] == "enter":
			inside = f[1]
		case f[0] == "leave" && inside != f[1]:
			t.Fatalf("token %s left while %q was inside:\n%s", f[1], inside, b)
		default:
			inside = ""
		}
	}
}

// syncBuf is a buffer a running command writes while the test reads it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// start runs the binary in the background; the returned func waits for it.
func start(t *testing.T, eps []string, args ...string) (*exec.Cmd, *syncBuf, func() result) {
	t.Helper()
	cmd := command(t, eps, args...)
	var out, errb syncBuf
	cmd.Stdout, cmd.Stderr = &out, &errb
	tu.NoErr(t, cmd.Start())
	return cmd, &out, func() result {
		err := cmd.Wait()
		r := result{stdout: out.String(), stderr: errb.String()}
		var x *exec.ExitError
		if errors.As(err, &x) {
			r.code = x.ExitCode()
			if ws, ok := x.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				r.code = 128 + int(ws.Signal())
			}
		}
		return r
	}
}

// waitKeys waits until prefix holds n keys.
func waitKeys(t *testing.T, eps []string, prefix string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		r := etcdgw(t, eps, "", "get", prefix, "--prefix", "--count-only")
		if strings.TrimSpace(r.stdout) == fmt.Sprint(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %s keys, want %d", prefix, strings.TrimSpace(r.stdout), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLockTryInterruptAndLoss(t *testing.T) {
	cl := etcdtest.Single(t)
	eps := cl.Endpoints()
	_, out, wait := start(t, eps, "lock", "busy", "--ttl", "3", "--", "sleep", "60")
	waitKeys(t, eps, "busy/", 1)
	if !strings.HasPrefix(out.String(), "busy/") {
		t.Fatalf("holder printed %q", out.String())
	}

	// --try on a held lock: exit 4 at once.
	t0 := time.Now()
	fails(t, etcdgw(t, eps, "", "lock", "--try", "busy"), 4, "held by another")
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("--try took %v", d)
	}

	// --timeout on a held lock: exit 6 once it passes, and no key left.
	fails(t, etcdgw(t, eps, "", "lock", "busy", "--timeout", "300ms"), 6, "not held within 300ms")
	waitKeys(t, eps, "busy/", 1)

	// Ctrl-C while waiting: exit 130, and the waiter's key is gone.
	waiter, _, waitWaiter := start(t, eps, "lock", "busy")
	waitKeys(t, eps, "busy/", 2)
	tu.NoErr(t, waiter.Process.Signal(os.Interrupt))
	tu.Eq(t, "interrupted waiter's exit", waitWaiter().code, 130)
	waitKeys(t, eps, "busy/", 1)

	// The holder's member stops answering past the TTL: the lease is lost,
	// the command is stopped, exit 5.
	tu.NoErr(t, cl.Members[0].Pause())
	r := wait()
	tu.NoErr(t, cl.Members[0].Resume())
	if r.code != 5 || !strings.Contains(r.stderr, "lost") {
		t.Fatalf("holder after its lease was lost: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestElect(t *testing.T) {
	cl := etcdtest.Single(t)
	eps := cl.Endpoints()
	obs, obsOut, waitObs := start(t, eps, "elect", "--observe", "chief")
	waitFor := func(part string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(obsOut.String(), part); {
			if time.Now().After(deadline) {
				t.Fatalf("observer printed %q, want %q", obsOut.String(), part)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("no leader")
	r := etcdgw(t, eps, "", "elect", "chief", "alice", "--", "sh", "-c", `echo "leading as $ETCDGW_LOCK_KEY"; exit 3`)
	if r.code != 3 || !strings.Contains(r.stdout, "leading as chief/") {
		t.Fatalf("elect with a command: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	waitFor("alice")
	tu.NoErr(t, obs.Process.Signal(os.Interrupt))
	ok(t, waitObs())
	if n := strings.Count(obsOut.String(), "no leader"); n < 2 {
		t.Fatalf("observer saw the leader go %d times: %q", n-1, obsOut.String())
	}
}

func TestBarrier(t *testing.T) {
	cl := etcdtest.Single(t)
	eps := cl.Endpoints()
	ok(t, etcdgw(t, eps, "", "barrier", "wait", "gate")) // down: returns at once
	_, out, waitHolder := start(t, eps, "barrier", "hold", "gate")
	waitKeys(t, eps, "gate", 1)
	fails(t, etcdgw(t, eps, "", "barrier", "hold", "gate"), 4, "held")
	_, _, waitWaiter := start(t, eps, "barrier", "wait", "gate")
	waited := make(chan error, 1)
	go func() {
		r := waitWaiter()
		if r.code != 0 {
			waited <- fmt.Errorf("barrier wait: exit %d, %s", r.code, r.stderr)
			return
		}
		waited <- nil
	}()
	tu.Pending(t, "barrier wait while the barrier is up", waited, 300*time.Millisecond)
	ok(t, etcdgw(t, eps, "", "barrier", "release", "gate"), "released gate")
	tu.NoErr(t, <-waited)
	ok(t, waitHolder())
	if !strings.Contains(out.String(), "held gate") {
		t.Fatalf("holder printed %q", out.String())
	}
}

// TestTLSAndAuth: TLS with client certificates, and authentication, from the
// flags; the password comes from the environment and shows nowhere. (etcd's
// gateway refuses password authentication from a client whose certificate
// has a CommonName, so the two are tested on two members.)
func TestTLSAndAuth(t *testing.T) {
	certs, err := etcdtest.MakeCerts(t.TempDir())
	tu.NoErr(t, err)
	secure := etcdtest.Start(t, etcdtest.Options{TLS: certs, ClientCertAuth: true})
	tlsFlags := []string{"--cacert", certs.CA, "--cert", certs.ClientCert, "--key", certs.ClientKey}
	ok(t, etcdgw(t, secure.Endpoints(), "", append(tlsFlags, "put", "secured", "yes")...), "OK")
	ok(t, etcdgw(t, secure.Endpoints(), "", append(tlsFlags, "get", "secured", "--print-value-only")...), "yes")
	r := etcdgw(t, secure.Endpoints(), "", "get", "secured") // no CA, no certificate
	if r.code == 0 || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("without TLS flags: exit %d, stderr %q", r.code, r.stderr)
	}

	cl := etcdtest.Single(t)
	eps := cl.Endpoints()
	const password = "s3cret-Pa55-9d2e"
	ctx := tu.Ctx(t)
	admin := tu.Client(t, eps)
	tu.Must[*gateway.AuthResponse](t)(admin.RoleAdd(ctx, "root"))
	tu.Must[*gateway.AuthResponse](t)(admin.UserAdd(ctx, "root", password))
	tu.Must[*gateway.AuthResponse](t)(admin.UserGrantRole(ctx, "root", "root"))
	tu.Must[*gateway.AuthResponse](t)(admin.AuthEnable(ctx))
	pw := []string{"ETCDGW_PASSWORD=" + password}
	ok(t, etcdgwEnv(t, eps, pw, "", "--user", "root", "put", "secured", "yes"), "OK")
	ok(t, etcdgwEnv(t, eps, pw, "", "get", "secured", "--user=root", "--print-value-only"), "yes")

	// No password and no terminal to ask on; a wrong one; a password in
	// --user; no user at all: one clear line each, the secret nowhere.
	for _, r := range []result{
		etcdgw(t, eps, "", "--user", "root", "get", "secured"),
		etcdgwEnv(t, eps, []string{"ETCDGW_PASSWORD=wrong-" + password}, "", "--user", "root", "get", "secured"),
		etcdgw(t, eps, "", "--user", "root:"+password, "get", "secured"),
		etcdgw(t, eps, "", "get", "secured"),
	} {
		if r.code == 0 || strings.Count(r.stderr, "\n") != 1 {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		if strings.Contains(r.stderr+r.stdout, "s3cret") {
			t.Fatalf("the password shows: %q", r.stderr)
		}
		t.Logf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	}
}

func TestTxn(t *testing.T) {
	cl := etcdtest.Single(t)
	eps := cl.Endpoints()
	ok(t, etcdgw(t, eps, "", "put", "tk", "one"), "OK")
	stdin := "value(\"tk\") = \"one\"\n\nput tk \"two words\"\nget tk\n\nput tk never\n"
	ok(t, etcdgw(t, eps, stdin, "txn"), "SUCCESS", "", "OK", "", "tk", "two words")
	ok(t, etcdgw(t, eps, stdin, "txn"), "FAILURE", "", "OK")
	ok(t, etcdgw(t, eps, "", "get", "tk", "--print-value-only"), "never")
	ok(t, etcdgw(t, eps, "", "txn", "--if", `version("absent") = "0"`, "--then", "put absent here", "--else", "del absent"),
		"SUCCESS", "", "OK")
	ok(t, etcdgw(t, eps, "", "txn", "--if", `version("absent") = "0"`, "--then", "put absent here", "--else", "del absent"),
		"FAILURE", "", "1")
	fails(t, etcdgw(t, eps, "", "txn", "--if", `size("k") = "0"`), 2, "comparison")
	fails(t, etcdgw(t, eps, "", "txn", "--then", "frob k"), 2, "operation")
}

// TestLockInterruptWhileHolding: Ctrl-C while holding stops the command and
// releases the lock.
func TestLockInterruptWhileHolding(t *testing.T) {
	cl := etcdtest.Single(t)
	eps := cl.Endpoints()
	dir := t.TempDir()
	flag, ready := filepath.Join(dir, "stopped"), filepath.Join(dir, "ready")
	// The command notes the SIGTERM it gets, then exits. It says when its trap
	// is set: a SIGTERM before that would end the shell without a note.
	script := fmt.Sprintf(`trap 'echo term > %s; exit 7' TERM; touch %s; while true; do sleep 0.05; done`, flag, ready)
	holder, _, wait := start(t, eps, "lock", "held-then-interrupted", "--", "sh", "-c", script)
	waitKeys(t, eps, "held-then-interrupted/", 1)
	tu.WaitFor(t, tu.Ctx(t), "the command's trap", func() bool { _, err := os.Stat(ready); return err == nil })
	tu.NoErr(t, holder.Process.Signal(os.Interrupt))
	tu.Eq(t, "exit", wait().code, 130)
	b, err := os.ReadFile(flag)
	tu.NoErr(t, err)
	tu.Eq(t, "the command got", strings.TrimSpace(string(b)), "term")
	waitKeys(t, eps, "held-then-interrupted/", 0)
}

func TestQueue(t *testing.T) {
	cl := etcdtest.Single(t)
	eps := cl.Endpoints()
	ok(t, etcdgw(t, eps, "", "queue", "push", "jobs", "a", "b", "c"), "OK 3")
	ok(t, etcdgw(t, eps, "", "queue", "pop", "jobs"), "a")
	ok(t, etcdgw(t, eps, "", "queue", "push", "jobs", "bad"), "OK 1")

	// Each item on the command's stdin: exit 0 acks, anything else gives the
	// item back, until its attempts are spent and it is a dead letter.
	log := filepath.Join(t.TempDir(), "done")
	script := fmt.Sprintf(`v=$(cat); if [ "$v" = bad ]; then exit 1; fi; echo "$v" >> %s`, log)
	worker, _, wait := start(t, eps, "queue", "work", "jobs", "--concurrency", "2", "--max-attempts", "2", "--retry-backoff", "1s", "--", "sh", "-c", script)
	for deadline := time.Now().Add(20 * time.Second); ; {
		b, _ := os.ReadFile(log)
		dead := etcdgw(t, eps, "", "queue", "len", "jobs")
		if string(b) != "" && len(strings.Fields(string(b))) == 2 && dead.stdout == "waiting 0, delayed 0, claimed 0, dead 1\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worked %q, dead letters %q", b, dead.stdout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	tu.NoErr(t, worker.Process.Signal(os.Interrupt))
	ok(t, wait())
	b, err := os.ReadFile(log)
	tu.NoErr(t, err)
	got := strings.Fields(string(b))
	sort.Strings(got)
	tu.Eq(t, "worked", strings.Join(got, " "), "b c")

	// The dead letter: listed (key, value), put back, worked by pop.
	dead := etcdgw(t, eps, "", "queue", "dead", "jobs")
	ok(t, dead)
	lines := strings.Split(strings.TrimSpace(dead.stdout), "\n")
	if len(lines) != 2 || lines[1] != "bad" {
		t.Fatalf("dead letters: %q", dead.stdout)
	}
	ok(t, etcdgw(t, eps, "", "queue", "dead", "jobs", "requeue", lines[0]), "requeued 1")
	fails(t, etcdgw(t, eps, "", "queue", "dead", "jobs", "requeue", lines[0]), 1, "no such item")
	ok(t, etcdgw(t, eps, "", "queue", "peek", "jobs"), "bad")
	ok(t, etcdgw(t, eps, "", "queue", "len", "jobs"), "waiting 1, delayed 0, claimed 0, dead 0")
	ok(t, etcdgw(t, eps, "", "queue", "pop", "jobs"), "bad")
	ok(t, etcdgw(t, eps, "", "queue", "peek", "jobs"))
	ok(t, etcdgw(t, eps, "", "queue", "dead", "jobs", "purge"), "purged 0")
	fails(t, etcdgw(t, eps, "", "queue", "dead", "jobs", "frob"), 2, "queue dead NAME")
	ok(t, etcdgw(t, eps, "", "queue", "push", "jobs", "later", "--delay", "3s"), "OK 1")
	ok(t, etcdgw(t, eps, "", "queue", "len", "jobs"), "waiting 0, delayed 1, claimed 0, dead 0")
	ok(t, etcdgw(t, eps, "", "queue", "peek", "jobs"))
	fails(t, etcdgw(t, eps, "", "queue", "pop", "jobs", "--timeout", "300ms"), 6, "no item")
	fails(t, etcdgw(t, eps, "", "queue", "work", "jobs"), 2, "command after --")

	// Unique items, and the last error a failed command leaves.
	ok(t, etcdgw(t, eps, "", "queue", "push", "once", "report", "--unique", "r1"), "OK 1")
	fails(t, etcdgw(t, eps, "", "queue", "push", "once", "report again", "--unique", "r1"), 1, "unique key")
	fails(t, etcdgw(t, eps, "", "queue", "push", "once", "a", "b", "--unique", "r2"), 2, "one VALUE")
	worker, _, wait = start(t, eps, "queue", "work", "once", "--max-attempts", "1", "--", "sh", "-c", "exit 3")
	for deadline := time.Now().Add(20 * time.Second); ; {
		if etcdgw(t, eps, "", "queue", "len", "once").stdout == "waiting 0, delayed 0, claimed 0, dead 1\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the failing item did not go to the dead letters")
		}
		time.Sleep(50 * time.Millisecond)
	}
	tu.NoErr(t, worker.Process.Signal(os.Interrupt))
	ok(t, wait())
	if r := etcdgw(t, eps, "", "-w", "json", "queue", "dead", "once"); r.code != 0 || !strings.Contains(r.stdout, `"LastError":"sh exited 3"`) {
		t.Fatalf("dead letters: exit %d, %q", r.code, r.stdout)
	}
	ok(t, etcdgw(t, eps, "", "queue", "push", "once", "report", "--unique", "r1"), "OK 1")
}

func TestWatch(t *testing.T) {
	cl := etcdtest.Single(t)
	eps := cl.Endpoints()
	rev := etcdgw(t, eps, "", "-w", "json", "put", "w/a", "1")
	ok(t, rev)
	var first struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
	}
	tu.NoErr(t, json.Unmarshal([]byte(rev.stdout), &first))
	ok(t, etcdgw(t, eps, "", "put", "w/b", "2"), "OK")
	ok(t, etcdgw(t, eps, "", "del", "w/a"), "1")
	// From a past revision: the history replays, then the watch goes on
	// until interrupted.
	w, out, wait := start(t, eps, "watch", "w/", "--prefix", "--rev", first.Header.Revision)
	want := "PUT\nw/a\n1\nPUT\nw/b\n2\nDELETE\nw/a\n"
	for deadline := time.Now().Add(10 * time.Second); out.String() != want; {
		if time.Now().After(deadline) {
			t.Fatalf("watch printed %q, want %q", out.String(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tu.NoErr(t, w.Process.Signal(os.Interrupt))
	ok(t, wait(), strings.TrimSuffix(want, "\n"))
}
