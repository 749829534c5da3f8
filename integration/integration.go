package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
)

// DefaultImage is the Docker image used when neither WithImage nor
// $ETCDGW_ETCD_IMAGE names one: the official image of the etcd version this module
// is tested against (ETCD_DEFAULT in the repository's tools/versions.env; a test
// keeps the two the same).
const DefaultImage = "gcr.io/etcd-development/etcd:v3.6.16"

// Backend is where the members run.
type Backend string

const (
	// Auto chooses Docker when an engine answers, and Local otherwise.
	Auto Backend = ""
	// Docker runs each member in a container, through testcontainers-go.
	Docker Backend = "docker"
	// Local runs each member as a process of a local etcd executable.
	Local Backend = "local"
)

// Errors.
var (
	// ErrNoDocker: the Docker backend was asked for and no engine answers.
	ErrNoDocker = errors.New("integration: no Docker engine reachable")
	// ErrNoBinary: the Local backend has no etcd executable.
	ErrNoBinary = errors.New("integration: no etcd executable")
	// ErrTerminated: the cluster was terminated.
	ErrTerminated = errors.New("integration: cluster terminated")
)

type config struct {
	members      int
	backend      Backend
	image        string
	binary       string
	args         []string
	startTimeout time.Duration
	proxies      bool
	client       func(*gateway.Config)
}

// Option configures New and Start.
type Option func(*config)

// WithMembers sets the cluster size: 1 (the default), 3, 5 or 7.
func WithMembers(n int) Option { return func(c *config) { c.members = n } }

// WithBackend chooses where members run. The default is $ETCDGW_BACKEND ("docker"
// or "local") if set, else Auto.
func WithBackend(b Backend) Option { return func(c *config) { c.backend = b } }

// WithImage sets the Docker image (see DefaultImage).
func WithImage(ref string) Option { return func(c *config) { c.image = ref } }

// WithBinary sets the etcd executable of the Local backend.
func WithBinary(path string) Option { return func(c *config) { c.binary = path } }

// WithArgs adds etcd flags to every member, such as "--auth-token-ttl=2" or
// "--quota-backend-bytes=…".
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// WithStartTimeout bounds how long starting waits for every member to be healthy.
// The default is one minute.
func WithStartTimeout(d time.Duration) Option { return func(c *config) { c.startTimeout = d } }

// WithProxies puts a fault-injecting Proxy on loopback in front of each member.
// Endpoints and Client then go through the proxies; see Member.Proxy.
func WithProxies() Option { return func(c *config) { c.proxies = true } }

// WithClientConfig adjusts the configuration of the clients that Client and
// NewClient make (timeouts, a logger…). Endpoints are set by the cluster.
func WithClientConfig(f func(*gateway.Config)) Option { return func(c *config) { c.client = f } }

// Cluster is a running etcd cluster. Its methods are safe for concurrent use.
type Cluster struct {
	backend Backend
	members []*Member
	cfg     config
	closer  func(context.Context) error // ends every member

	mu         sync.Mutex
	client     *gateway.Client
	clients    []*gateway.Client
	terminated bool
}

// New starts a cluster for a test and terminates it when the test ends (after
// logging the members' last log lines, if the test failed). It fails the test when
// the cluster does not start.
func New(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if t.Failed() {
			for _, m := range c.members {
				t.Logf("etcd member %s (%s) log tail:\n%s", m.name, m.url, m.LogTail(ctx, 30))
			}
		}
		if err := c.Terminate(ctx); err != nil {
			t.Errorf("integration: terminate: %v", err)
		}
	})
	return c
}

// Start starts a cluster and waits until every member is healthy. The caller must
// call Terminate; use it from TestMain, or New in a test.
func Start(ctx context.Context, opts ...Option) (*Cluster, error) {
	cfg := config{members: 1, backend: Backend(os.Getenv("ETCDGW_BACKEND")), startTimeout: time.Minute}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.members < 1 || cfg.members > 7 || cfg.members%2 == 0 {
		return nil, fmt.Errorf("integration: %d members: want 1, 3, 5 or 7", cfg.members)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.startTimeout)
	defer cancel()
	backend := cfg.backend
	switch backend {
	case Docker, Local:
	case Auto:
		backend = Local
		if dockerReachable(ctx) {
			backend = Docker
		}
	default:
		return nil, fmt.Errorf("integration: unknown backend %q: want %q or %q", backend, Docker, Local)
	}
	var c *Cluster
	var err error
	if backend == Docker {
		c, err = startDocker(ctx, cfg)
	} else {
		c, err = startLocal(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	c.backend, c.cfg = backend, cfg
	if cfg.proxies {
		for _, m := range c.members {
			if m.proxy, err = NewProxy(m.url); err != nil {
				_ = c.Terminate(context.WithoutCancel(ctx))
				return nil, err
			}
		}
	}
	if c.client, err = gateway.New(c.clientConfig(c.Endpoints())); err != nil {
		_ = c.Terminate(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("integration: gateway client: %w", err)
	}
	return c, nil
}

// Backend is where the members run: Docker or Local.
func (c *Cluster) Backend() Backend { return c.backend }

// Members returns the members, in a fixed order.
func (c *Cluster) Members() []*Member { return append([]*Member(nil), c.members...) }

// Member returns member i (0-based).
func (c *Cluster) Member(i int) *Member { return c.members[i] }

// Endpoints returns the members' client URLs, through their proxies with
// WithProxies.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = m.Endpoint()
	}
	return out
}

// Client returns a gateway client to every member, shared by the callers and
// closed by Terminate.
func (c *Cluster) Client() *gateway.Client { return c.client }

// NewClient returns a new gateway client to the given endpoints, or to every
// member when none are given. Terminate closes it if the caller has not.
func (c *Cluster) NewClient(endpoints ...string) (*gateway.Client, error) {
	if len(endpoints) == 0 {
		endpoints = c.Endpoints()
	}
	cl, err := gateway.New(c.clientConfig(endpoints))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.terminated {
		cl.Close()
		return nil, ErrTerminated
	}
	c.clients = append(c.clients, cl)
	return cl, nil
}

func (c *Cluster) clientConfig(endpoints []string) gateway.Config {
	cfg := gateway.Config{}
	if c.cfg.client != nil {
		c.cfg.client(&cfg)
	}
	cfg.Endpoints = endpoints
	return cfg
}

// Leader waits until the members that run (and are not paused) agree on a leader
// that is one of them, and returns it. After the leader is killed it returns the
// new one, once elected.
func (c *Cluster) Leader(ctx context.Context) (*Member, error) {
	for {
		l, err := c.agreedLeader(ctx)
		if err == nil {
			return l, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("integration: no leader: %w (last: %w)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) agreedLeader(ctx context.Context) (*Member, error) {
	var leader uint64
	for _, m := range c.members {
		if !m.Running() || m.Paused() {
			continue
		}
		st, err := m.status(ctx)
		if err != nil {
			return nil, err
		}
		if st.Leader == 0 || (leader != 0 && st.Leader != leader) {
			return nil, fmt.Errorf("member %s sees leader %x, others %x", m.name, st.Leader, leader)
		}
		leader = st.Leader
	}
	for _, m := range c.members {
		if id, err := m.ID(ctx); err == nil && id == leader && m.Running() && !m.Paused() {
			return m, nil
		}
	}
	return nil, fmt.Errorf("leader %x is not a running member", leader)
}

// WaitHealthy waits until every member that runs and is not paused reports healthy.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	for _, m := range c.members {
		if m.Running() && !m.Paused() {
			if err := m.WaitHealthy(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// Terminate closes the clients, the proxies and every member, and removes their
// data. It is safe to call more than once.
func (c *Cluster) Terminate(ctx context.Context) error {
	c.mu.Lock()
	if c.terminated {
		c.mu.Unlock()
		return nil
	}
	c.terminated = true
	clients := c.clients
	if c.client != nil {
		clients = append(clients, c.client)
	}
	c.mu.Unlock()
	for _, cl := range clients {
		cl.Close()
	}
	var errs []error
	for _, m := range c.members {
		if m.proxy != nil {
			errs = append(errs, m.proxy.Close())
		}
		m.closeStatusClient()
	}
	errs = append(errs, c.closer(ctx))
	return errors.Join(errs...)
}
