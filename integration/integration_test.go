package integration_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/integration"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
)

// shared is the cluster TestMain starts for the examples: Start and Terminate
// outside any test, as a user's TestMain would.
var shared *integration.Cluster

func TestMain(m *testing.M) {
	if os.Getenv("INTEGRATION_CHILD") != "" {
		// A child run of TestNoDocker: no shared cluster.
		goleak.VerifyTestMain(m)
		return
	}
	goleak.VerifyTestMain(sharedM{m})
}

type sharedM struct{ m *testing.M }

func (s sharedM) Run() int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	if shared, err = integration.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "start etcd:", err)
		return 1
	}
	code := s.m.Run()
	if err := shared.Terminate(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "terminate etcd:", err)
		return 1
	}
	return code
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// backends are the backends every member-control test runs on: both, unless
// $ETCDGW_TEST_BACKENDS names fewer. `make test` starts a Docker engine and
// tests both; `make test DOCKER=0` sets it to "local" for a machine without
// Docker, and says so.
var backends = testBackends()

func testBackends() []integration.Backend {
	env := os.Getenv("ETCDGW_TEST_BACKENDS")
	if env == "" {
		return []integration.Backend{integration.Docker, integration.Local}
	}
	var bs []integration.Backend
	for _, name := range strings.Split(env, ",") {
		b := integration.Backend(strings.TrimSpace(name))
		if b != integration.Docker && b != integration.Local {
			panic(fmt.Sprintf("ETCDGW_TEST_BACKENDS=%s: %q is not a backend (docker, local)", env, b))
		}
		bs = append(bs, b)
	}
	return bs
}

// testsDocker reports whether the Docker backend is under test; when it is not,
// the test says so in its log.
func testsDocker(t *testing.T) bool {
	if slices.Contains(backends, integration.Docker) {
		return true
	}
	t.Logf("the Docker backend is not under test here (ETCDGW_TEST_BACKENDS=%s)", os.Getenv("ETCDGW_TEST_BACKENDS"))
	return false
}

// TestDefaultImagePinned: DefaultImage is the official image of the pinned
// default etcd version.
func TestDefaultImagePinned(t *testing.T) {
	v, err := etcdtest.Pinned("ETCD_DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	if want := "gcr.io/etcd-development/etcd:v" + v; integration.DefaultImage != want {
		t.Fatalf("DefaultImage = %s, want %s (tools/versions.env)", integration.DefaultImage, want)
	}
}

func TestMembers(t *testing.T) {
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) {
			ctx := ctxFor(t)
			etcd := integration.New(t, integration.WithBackend(b), integration.WithMembers(3))
			if got := etcd.Backend(); got != b {
				t.Fatalf("backend %q, want %q", got, b)
			}
			if n := len(etcd.Endpoints()); n != 3 {
				t.Fatalf("%d endpoints, want 3", n)
			}
			for _, ep := range etcd.Endpoints() {
				if !strings.HasPrefix(ep, "http://127.0.0.1:") {
					t.Fatalf("endpoint %s is not on loopback", ep)
				}
			}
			c := etcd.Client()
			if _, err := c.Put(ctx, "k", "v1"); err != nil {
				t.Fatal(err)
			}

			// A killed follower: the cluster serves on; restarted, the member
			// has its data back and serves it itself.
			leader, err := etcd.Leader(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var follower *integration.Member
			for _, m := range etcd.Members() {
				if m != leader {
					follower = m
					break
				}
			}
			if err := follower.Kill(ctx); err != nil {
				t.Fatal(err)
			}
			if follower.Running() {
				t.Fatal("killed member still running")
			}
			if _, err := c.Put(ctx, "k", "v2"); err != nil {
				t.Fatal(err)
			}
			direct, err := etcd.NewClient(follower.Endpoint())
			if err != nil {
				t.Fatal(err)
			}
			short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			_, err = direct.Get(short, "k")
			cancel()
			if err == nil {
				t.Fatal("a killed member answered")
			}
			if err := follower.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			kv, err := direct.GetOne(ctx, "k", gateway.WithSerializable())
			if err != nil {
				t.Fatal(err)
			}
			if kv == nil || string(kv.Value) != "v2" {
				t.Fatalf("restarted member has %v, want v2", kv)
			}

			// Killing the leader elects another.
			if err := leader.Kill(ctx); err != nil {
				t.Fatal(err)
			}
			newLeader, err := etcd.Leader(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if newLeader == leader {
				t.Fatal("the killed leader still leads")
			}
			if _, err := c.Put(ctx, "k", "v3"); err != nil {
				t.Fatal(err)
			}
			if err := leader.Restart(ctx); err != nil {
				t.Fatal(err)
			}

			// A paused member answers nothing until resumed.
			if err := follower.Pause(ctx); err != nil {
				t.Fatal(err)
			}
			if !follower.Paused() {
				t.Fatal("Paused() false after Pause")
			}
			short, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
			_, err = direct.Get(short, "k", gateway.WithSerializable())
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("paused member: %v, want a timeout", err)
			}
			if err := follower.Resume(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := direct.Get(ctx, "k", gateway.WithSerializable()); err != nil {
				t.Fatal(err)
			}

			// An orderly stop, and a restart of a running member.
			if err := follower.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if err := follower.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			if err := follower.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			// Kill of a paused member works too (the engine needs it resumed).
			if err := follower.Pause(ctx); err != nil {
				t.Fatal(err)
			}
			if err := follower.Kill(ctx); err != nil {
				t.Fatal(err)
			}
			if err := follower.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			if err := etcd.WaitHealthy(ctx); err != nil {
				t.Fatal(err)
			}
			if tail := follower.LogTail(ctx, 5); tail == "" {
				t.Fatal("no log lines from a member that ran")
			}
		})
	}
}

// TestCallsCutShort: a Stop or Pause whose ctx has ended may or may not have
// been carried out (the local backend signals at once; the engine refuses a
// request whose ctx has ended). Whichever happened, Running and Paused must
// say it, and Restart and Resume must bring the member back.
func TestCallsCutShort(t *testing.T) {
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) {
			ctx := ctxFor(t)
			etcd := integration.New(t, integration.WithBackend(b))
			m := etcd.Member(0)
			ended, cancel := context.WithCancel(ctx)
			cancel()
			answers := func() bool {
				short, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				return m.WaitHealthy(short) == nil
			}

			// The state is read before asking the member, since WaitHealthy
			// records a member it finds dead.
			err := m.Stop(ended)
			running := m.Running()
			t.Logf("Stop under an ended ctx: %v; running %v", err, running)
			if running != answers() {
				t.Fatalf("Running says %v, but the member answering says otherwise", running)
			}
			if err := m.Restart(ctx); err != nil {
				t.Fatal(err)
			}

			err = m.Pause(ended)
			paused := m.Paused()
			t.Logf("Pause under an ended ctx: %v; paused %v", err, paused)
			if paused == answers() {
				t.Fatalf("Paused says %v, but the member answering says otherwise", paused)
			}
			if err := m.Resume(ctx); err != nil {
				t.Fatal(err)
			}
			if !answers() {
				t.Fatal("the member does not answer after Resume")
			}
			if _, err := etcd.Client().Put(ctx, "k", "v"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTerminate: after Terminate nothing answers, clients are closed, and a second
// Terminate does nothing.
func TestTerminate(t *testing.T) {
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) {
			ctx := ctxFor(t)
			etcd, err := integration.Start(ctx, integration.WithBackend(b))
			if err != nil {
				t.Fatal(err)
			}
			ep := etcd.Member(0).URL()
			c := etcd.Client()
			if _, err := c.Put(ctx, "a", "b"); err != nil {
				t.Fatal(err)
			}
			if err := etcd.Terminate(ctx); err != nil {
				t.Fatal(err)
			}
			if err := etcd.Terminate(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Get(ctx, "a"); !errors.Is(err, gateway.ErrClosed) {
				t.Fatalf("client after Terminate: %v, want ErrClosed", err)
			}
			if _, err := etcd.NewClient(); !errors.Is(err, integration.ErrTerminated) {
				t.Fatalf("NewClient after Terminate: %v", err)
			}
			probe, err := gateway.New(gateway.Config{Endpoints: []string{ep}, RetryTimeout: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer probe.Close()
			if _, err := probe.Get(ctx, "a"); err == nil {
				t.Fatal("member answers after Terminate")
			}
		})
	}
}

func TestBadOptions(t *testing.T) {
	ctx := ctxFor(t)
	if _, err := integration.Start(ctx, integration.WithMembers(2)); err == nil {
		t.Fatal("2 members accepted")
	}
	if _, err := integration.Start(ctx, integration.WithBackend("vm")); err == nil {
		t.Fatal("unknown backend accepted")
	}
	_, err := integration.Start(ctx, integration.WithBackend(integration.Local), integration.WithBinary("/nonexistent/etcd"))
	if !errors.Is(err, integration.ErrNoBinary) {
		t.Fatalf("missing binary: %v, want ErrNoBinary", err)
	}
	// A client configuration that cannot work fails Start, and leaves nothing
	// running (goleak and the Local backend's process check see to it).
	_, err = integration.Start(ctx, integration.WithBackend(integration.Local), integration.WithClientConfig(func(c *gateway.Config) {
		c.CertFile, c.KeyFile = "/nonexistent/cert.pem", "/nonexistent/key.pem"
	}))
	if err == nil || !strings.Contains(err.Error(), "gateway client") {
		t.Fatalf("a client config with missing files: %v", err)
	}
	if !testsDocker(t) {
		return
	}
	// An image reference that cannot be valid fails before anything is pulled.
	_, err = integration.Start(ctx, integration.WithBackend(integration.Docker), integration.WithImage("etcdgw-test/Not A Reference"))
	if err == nil || !strings.Contains(err.Error(), "Not A Reference") {
		t.Fatalf("bad image: %v", err)
	}
}

// TestNoDocker runs this test binary again where no Docker engine can be reached
// (its socket hidden in a mount namespace of its own): Auto must fall back to
// Local, and Docker must fail with ErrNoDocker.
func TestNoDocker(t *testing.T) {
	if os.Getenv("INTEGRATION_CHILD") != "" {
		ctx := ctxFor(t)
		etcd := integration.New(t)
		if etcd.Backend() != integration.Local {
			t.Fatalf("Auto without Docker chose %q", etcd.Backend())
		}
		if _, err := etcd.Client().Put(ctx, "k", "v"); err != nil {
			t.Fatal(err)
		}
		_, err := integration.Start(ctx, integration.WithBackend(integration.Docker))
		if !errors.Is(err, integration.ErrNoDocker) {
			t.Fatalf("Docker without an engine: %v, want ErrNoDocker", err)
		}
		return
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("this test hides the Docker socket with unshare(1) (util-linux): %v", err)
	}
	hide := `for s in /run/docker.sock /var/run/docker.sock; do [ -S "$s" ] && mount --bind /dev/null "$s"; done; exec "$0" "$@"`
	args := []string{"--mount", "--propagation", "private", "sh", "-c", hide, os.Args[0], "-test.run=^TestNoDocker$", "-test.v"}
	if os.Geteuid() != 0 {
		args = append([]string{"--map-root-user"}, args...)
	}
	cmd := exec.Command(unshare, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_HOST=") && !strings.HasPrefix(kv, "ETCDGW_BACKEND=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "INTEGRATION_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestNoDocker") {
		t.Fatalf("child run: %v\n%s", err, out)
	}
}
