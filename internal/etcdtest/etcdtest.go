// Package etcdtest starts real etcd servers for tests: one member or a cluster of
// three, on 127.0.0.1 with free ports and temporary data directories, and gives the
// test control of each member's process (kill, restart, pause, resume).
//
// The etcd binary is taken from $ETCD_BIN, or else from the repository's .bin folder
// that `make etcd` fills. Without one the test fails and says how to get one: a test
// that needs etcd never passes by skipping.
//
// Every process it starts is ended in t.Cleanup. It listens on loopback only.
package etcdtest

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options says what cluster to start. The zero value starts one member.
type Options struct {
	// Size is the number of members: 1, 3, 5 or 7. Zero means 1.
	Size int
	// Binary is the etcd executable. Empty means Binary().
	Binary string
	// Args are extra flags given to every member (for example
	// "--auth-token-ttl=2" or "--quota-backend-bytes=…").
	Args []string
	// StartTimeout bounds how long Start waits for the cluster to be healthy.
	// Zero means 30 seconds.
	StartTimeout time.Duration
	// TLS, if set, makes the members serve clients over https with these
	// certificates (peers stay on http). With ClientCertAuth they require a
	// client certificate signed by the CA.
	TLS            *Certs
	ClientCertAuth bool
}

// Cluster is a running etcd cluster. Its methods are safe for concurrent use.
type Cluster struct {
	Members []*Member
	binary  string
	version string
	dir     string       // data and logs of every member
	health  *http.Client // for https members; nil: a plain client
}

// Member is one etcd process.
type Member struct {
	Name      string
	ClientURL string // http://127.0.0.1:port, the client (and gateway) URL
	PeerURL   string
	logPath   string
	binary    string
	args      []string
	health    *http.Client

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
}

// Binary returns the etcd executable the tests use: $ETCD_BIN, or the default
// version (ETCD_DEFAULT in tools/versions.env) built by `make etcd` into the
// repository's .bin folder.
func Binary() (string, error) {
	if b := os.Getenv("ETCD_BIN"); b != "" {
		if _, err := os.Stat(b); err != nil {
			return "", fmt.Errorf("etcdtest: ETCD_BIN=%s: %w", b, err)
		}
		return b, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("etcdtest: no etcd binary: set ETCD_BIN to an etcd executable (%w)", err)
	}
	v, err := Pinned("ETCD_DEFAULT")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, ".bin", "etcd-"+v)
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("etcdtest: no etcd binary: run `make etcd` in the repository root "+
			"(it builds etcd %s into .bin/), or set ETCD_BIN to an etcd executable: %w", v, err)
	}
	return bin, nil
}

// versionsFile is the one place where the repository pins versions.
const versionsFile = "tools/versions.env"

// RepoRoot returns the repository's root: the nearest folder at or above the
// working directory that holds tools/versions.env.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, versionsFile)); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("etcdtest: no %s at or above the working directory", versionsFile)
		}
		dir = parent
	}
}

// Pinned returns the value of key in tools/versions.env ("3.6.16" for
// ETCD_DEFAULT).
func Pinned(key string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(root, versionsFile))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && k == key && !strings.HasPrefix(k, "#") {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("etcdtest: %s is not set in %s", key, versionsFile)
}

var versionRE = regexp.MustCompile(`etcd Version: (\S+)`)

// BinaryVersion runs `etcd --version` and returns the version it prints ("3.6.16").
func BinaryVersion(binary string) (string, error) {
	out, err := exec.Command(binary, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("etcdtest: %s --version: %w", binary, err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("etcdtest: %s --version printed no version: %q", binary, out)
	}
	return string(m[1]), nil
}

// Start starts a cluster and waits until every member answers /health. It fails the
// test if the cluster does not come up; the processes are ended and their data
// removed in t.Cleanup (after the member logs are printed, if the test failed).
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c, err := Launch(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, m := range c.Members {
				t.Logf("etcd member %s (%s) log tail:\n%s", m.Name, m.ClientURL, m.LogTail(30))
			}
		}
		c.Terminate()
	})
	return c
}

// Single starts one member with default options.
func Single(t testing.TB) *Cluster { t.Helper(); return Start(t, Options{}) }

// Launch starts a cluster without a test to tie it to, for TestMain: the caller
// must call Stop.
func Launch(opts Options) (*Cluster, error) {
	bin := opts.Binary
	if bin == "" {
		var err error
		if bin, err = Binary(); err != nil {
			return nil, err
		}
	}
	version, err := BinaryVersion(bin)
	if err != nil {
		return nil, err
	}
	size := opts.Size
	if size == 0 {
		size = 1
	}
	if size < 1 || size > 7 || size%2 == 0 {
		return nil, fmt.Errorf("etcdtest: size %d: want 1, 3, 5 or 7", size)
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	// A port picked free can be taken by someone else before etcd binds it; on a
	// failed start, try again with new ports.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		c, err := launch(bin, version, size, opts)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err = c.WaitHealthy(ctx)
		cancel()
		if err == nil {
			return c, nil
		}
		lastErr = err
		c.Terminate()
	}
	return nil, lastErr
}

// Spec is one member of a cluster before it runs: its name, URLs and flags.
type Spec struct {
	Name      string
	ClientURL string // scheme://127.0.0.1:port
	PeerURL   string // http://127.0.0.1:port
	Args      []string
}

// Specs lays out a cluster of size members on 127.0.0.1, each with two free ports,
// the data directory dataDir(name), and the flags that make them one new cluster,
// followed by extra. The client URLs use scheme ("http" or "https").
func Specs(size int, scheme string, dataDir func(name string) string, extra []string) ([]Spec, error) {
	ports, err := freePorts(2 * size)
	if err != nil {
		return nil, err
	}
	specs := make([]Spec, size)
	initial := make([]string, size)
	for i := range specs {
		specs[i] = Spec{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i]),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
		}
		initial[i] = specs[i].Name + "=" + specs[i].PeerURL
	}
	token := fmt.Sprintf("etcdtest-%d-%d", os.Getpid(), time.Now().UnixNano())
	for i := range specs {
		sp := &specs[i]
		sp.Args = append([]string{
			"--name=" + sp.Name,
			"--data-dir=" + dataDir(sp.Name),
			"--listen-client-urls=" + sp.ClientURL,
			"--advertise-client-urls=" + sp.ClientURL,
			"--listen-peer-urls=" + sp.PeerURL,
			"--initial-advertise-peer-urls=" + sp.PeerURL,
			"--initial-cluster=" + strings.Join(initial, ","),
			"--initial-cluster-state=new",
			"--initial-cluster-token=" + token,
			"--log-level=warn",
			// Short election timings keep failover tests quick on loopback.
			"--heartbeat-interval=50",
			"--election-timeout=500",
		}, extra...)
	}
	return specs, nil
}

func launch(bin, version string, size int, opts Options) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "etcdtest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{binary: bin, version: version, dir: dir}
	scheme := "http"
	args := append([]string(nil), opts.Args...)
	if opts.TLS != nil {
		scheme = "https"
		args = append(args, "--cert-file="+opts.TLS.ServerCert, "--key-file="+opts.TLS.ServerKey,
			"--trusted-ca-file="+opts.TLS.CA)
		if opts.ClientCertAuth {
			args = append(args, "--client-cert-auth")
		}
		hc, err := healthClient(opts.TLS)
		if err != nil {
			c.Terminate()
			return nil, err
		}
		c.health = hc
	}
	specs, err := Specs(size, scheme, func(name string) string { return filepath.Join(dir, name+".data") }, args)
	if err != nil {
		c.Terminate()
		return nil, err
	}
	for _, sp := range specs {
		c.Members = append(c.Members, &Member{
			Name:      sp.Name,
			ClientURL: sp.ClientURL,
			PeerURL:   sp.PeerURL,
			logPath:   filepath.Join(dir, sp.Name+".log"),
			binary:    bin,
			args:      sp.Args,
			health:    c.health,
		})
	}
	for _, m := range c.Members {
		if err := m.startProcess(); err != nil {
			c.Terminate()
			return nil, err
		}
	}
	return c, nil
}

// Terminate kills every member, waits for them to exit, and removes their data
// (integration.Cluster.Terminate does the same for its members).
func (c *Cluster) Terminate() {
	for _, m := range c.Members {
		m.Kill()
	}
	os.RemoveAll(c.dir)
}

// Version is the etcd version of the cluster's binary ("3.6.16").
func (c *Cluster) Version() string { return c.version }

// Binary is the etcd executable the cluster runs.
func (c *Cluster) Binary() string { return c.binary }

// Endpoints returns the client URLs of all members.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.ClientURL
	}
	return out
}

// WaitHealthy waits until every running member answers /health with health true.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	for _, m := range c.Members {
		if err := m.WaitHealthy(ctx); err != nil {
			return err
		}
	}
	return nil
}

// AtLeast reports whether the cluster's version is at least major.minor.
func (c *Cluster) AtLeast(major, minor int) bool { return VersionAtLeast(c.version, major, minor) }

// BinaryAtLeast reports whether the etcd that Binary returns is at least
// major.minor, for choosing flags before a cluster starts. It fails the test when
// there is no binary.
func BinaryAtLeast(t testing.TB, major, minor int) bool {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	v, err := BinaryVersion(bin)
	if err != nil {
		t.Fatal(err)
	}
	return VersionAtLeast(v, major, minor)
}

// ProgressNotifyFlag returns the flag that sets the watch progress notification
// interval: its name changed in etcd 3.6.
func ProgressNotifyFlag(t testing.TB, d time.Duration) string {
	if BinaryAtLeast(t, 3, 6) {
		return "--watch-progress-notify-interval=" + d.String()
	}
	return "--experimental-watch-progress-notify-interval=" + d.String()
}

// VersionAtLeast reports whether version ("3.6.16") is at least major.minor.
func VersionAtLeast(version string, major, minor int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, _ := strconv.Atoi(parts[0])
	mi, _ := strconv.Atoi(parts[1])
	return ma > major || (ma == major && mi >= minor)
}

func (m *Member) startProcess() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return fmt.Errorf("etcdtest: member %s is already running", m.Name)
	}
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(m.binary, m.args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Own process group, so that a signal sent to the test does not reach etcd and
	// etcd's children (there are none) would be ended with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL} // ends with the test binary, even when it panics
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("etcdtest: start %s: %w", m.binary, err)
	}
	done := make(chan struct{})
	m.cmd, m.done = cmd, done
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	return nil
}

// Kill ends the member's process with SIGKILL and waits for it to exit. The data
// directory stays, so Restart brings the same member back. Killing a member that is
// not running does nothing.
func (m *Member) Kill() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Stop ends the member's process with SIGTERM, as an orderly shutdown, and waits
// for it to exit (or for ctx, after which it is killed). Like Kill, it keeps the data.
func (m *Member) Stop(ctx context.Context) error {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if cmd == nil {
		return nil
	}
	// A paused process does not act on SIGTERM until it is continued.
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		m.mu.Lock()
		if m.cmd == cmd {
			m.cmd = nil
		}
		m.mu.Unlock()
		return nil
	case <-ctx.Done():
		m.Kill()
		return fmt.Errorf("etcdtest: member %s did not stop: %w", m.Name, ctx.Err())
	}
}

// Start starts the member again after Kill or Stop, with the same name, ports
// and data. It fails if the member runs, and does not wait for health: call
// WaitHealthy. (integration.Member.Restart stops the member first and waits.)
func (m *Member) Start() error { return m.startProcess() }

// Pause stops the member with SIGSTOP: its sockets stay open but it answers
// nothing. It returns once the kernel reports the process stopped, so a request
// sent after Pause cannot be answered by a thread that had not yet stopped.
func (m *Member) Pause() error { return m.signal(syscall.SIGSTOP, true) }

// Resume continues a paused member with SIGCONT, and returns once the process
// runs again.
func (m *Member) Resume() error { return m.signal(syscall.SIGCONT, false) }

func (m *Member) signal(sig syscall.Signal, stopped bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return fmt.Errorf("etcdtest: member %s is not running", m.Name)
	}
	if err := m.cmd.Process.Signal(sig); err != nil {
		return err
	}
	return waitStopped(m.cmd.Process.Pid, stopped)
}

// waitStopped waits, up to five seconds, until /proc says every thread of the
// process is stopped (state T), or none is, as asked. kill(2) only queues
// SIGSTOP; each thread stops when next scheduled. Without /proc it returns at
// once.
func waitStopped(pid int, stopped bool) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		done, err := threadsStopped(pid, stopped)
		if err != nil || done {
			return nil // no procfs, or the process is gone: nothing to wait for
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcdtest: process %d did not %s", pid, map[bool]string{true: "stop", false: "continue"}[stopped])
		}
		time.Sleep(time.Millisecond)
	}
}

// threadsStopped reports whether every thread of pid is in the asked state.
func threadsStopped(pid int, stopped bool) (bool, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return false, fmt.Errorf("etcdtest: no threads listed for %d", pid)
	}
	for _, path := range tasks {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the thread exited
		}
		// The state follows the command name in parentheses, which may hold spaces.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) {
			return false, fmt.Errorf("etcdtest: unreadable %s", path)
		}
		if (b[i+2] == 'T') != stopped {
			return false, nil
		}
	}
	return true, nil
}

// PID returns the member's process ID, or 0 when it is not running.
func (m *Member) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Running reports whether the member's process is started and has not exited.
func (m *Member) Running() bool {
	m.mu.Lock()
	done := m.done
	running := m.cmd != nil
	m.mu.Unlock()
	if !running {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// WaitHealthy polls the member's /health until it reports healthy or ctx ends.
func (m *Member) WaitHealthy(ctx context.Context) error {
	err := WaitURLHealthy(ctx, m.health, m.ClientURL, func() error {
		if !m.Running() {
			return fmt.Errorf("etcdtest: member %s is not running", m.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w; log tail:\n%s", err, m.LogTail(20))
	}
	return nil
}

// WaitURLHealthy polls url's /health every 50ms until it reports healthy, ctx ends,
// or alive (called before each poll) returns an error. A nil hc means a plain HTTP
// client with a one-second timeout.
func WaitURLHealthy(ctx context.Context, hc *http.Client, url string, alive func() error) error {
	if hc == nil {
		hc = &http.Client{Timeout: time.Second}
		defer hc.CloseIdleConnections()
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		if err := alive(); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
		resp, err := hc.Do(req)
		if err == nil {
			var body [256]byte
			n, _ := resp.Body.Read(body[:])
			resp.Body.Close()
			last = string(body[:n])
			if resp.StatusCode == http.StatusOK && strings.Contains(last, `"health":"true"`) {
				return nil
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcdtest: %s not healthy (%s): %w", url, last, ctx.Err())
		case <-tick.C:
		}
	}
}

// LogTail returns the last n lines the member's process wrote.
func (m *Member) LogTail(n int) string {
	f, err := os.Open(m.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	return TailLines(f, n)
}

// TailLines returns the last n lines r holds.
func TailLines(r io.Reader, n int) string {
	var lines []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// healthClient checks https members with the test's CA and client certificate.
func healthClient(c *Certs) (*http.Client, error) {
	cfg, err := c.ClientTLS()
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}, nil
}

// ClientTLS is a client's TLS configuration for members started with these
// certificates: it trusts their CA and presents the client certificate.
func (c *Certs) ClientTLS() (*tls.Config, error) {
	pem, err := os.ReadFile(c.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cert, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}, nil
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("etcdtest: free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
