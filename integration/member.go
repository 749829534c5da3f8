package integration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
)

// runner is one member's process or container, as a backend runs it.
type runner interface {
	stop(ctx context.Context) error   // orderly shutdown; waits for the exit
	kill(ctx context.Context) error   // SIGKILL; waits for the exit
	pause(ctx context.Context) error  // freeze: sockets stay open, nothing answers
	resume(ctx context.Context) error // unfreeze
	start(ctx context.Context) error  // run again after stop or kill, same data
	alive(ctx context.Context) error  // nil while it runs; errExited once it has ended
	logTail(ctx context.Context, n int) string
}

// Member is one etcd member of a Cluster. Its methods are safe for concurrent use.
type Member struct {
	name  string
	url   string // the member's own client URL
	proxy *Proxy
	run   runner

	mu           sync.Mutex
	running      bool
	paused       bool
	id           uint64
	statusClient *gateway.Client // to this member alone, not through its proxy
}

// errExited: the member's process or container has ended.
var errExited = errors.New("exited")

// settleTimeout bounds the questions asked about a member after a call on it
// was cut short, since the caller's ctx may be what ended.
const settleTimeout = 10 * time.Second

func newMember(name, url string, run runner) *Member {
	return &Member{name: name, url: url, run: run, running: true}
}

// Name is the member's name in the cluster ("m0", "m1", …).
func (m *Member) Name() string { return m.name }

// URL is the member's own client URL (http://127.0.0.1:port), never through its
// proxy.
func (m *Member) URL() string { return m.url }

// Endpoint is the URL clients should use: the proxy's with WithProxies, else URL.
func (m *Member) Endpoint() string {
	if m.proxy != nil {
		return m.proxy.URL()
	}
	return m.url
}

// Proxy is the fault-injecting proxy in front of the member, or nil without
// WithProxies.
func (m *Member) Proxy() *Proxy { return m.proxy }

// Running reports whether the member was started and has not been stopped or
// killed since, through this package or (as WaitHealthy finds) on its own. A
// paused member is running.
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running
}

// Paused reports whether the member is paused.
func (m *Member) Paused() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.paused
}

// Stop shuts the member down in order (SIGTERM) and waits for it to exit. Its data
// stays for Restart. A paused member is resumed first, to act on the signal.
// Stopping a stopped member does nothing.
func (m *Member) Stop(ctx context.Context) error {
	return m.end(ctx, "stop", func(ctx context.Context) error {
		if m.paused {
			if err := m.run.resume(ctx); err != nil {
				return err
			}
		}
		return m.run.stop(ctx)
	})
}

// Kill ends the member with SIGKILL and waits for it to exit: a crash. Its data
// stays for Restart. Killing a stopped member does nothing.
func (m *Member) Kill(ctx context.Context) error { return m.end(ctx, "kill", m.run.kill) }

// end runs f, which ends the member's process, under the member's lock. If f
// fails (its wait cut short by ctx, say) but the process has ended, the member
// is recorded as ended all the same, so that Restart brings it back.
func (m *Member) end(ctx context.Context, what string, f func(context.Context) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running {
		return nil
	}
	err := f(ctx)
	if err == nil || m.exited(ctx) {
		m.running, m.paused = false, false
	}
	if err != nil {
		return fmt.Errorf("integration: %s %s: %w", what, m.name, err)
	}
	return nil
}

// exited reports whether the member's process has ended, asking under a bound
// of its own: ctx may be what ended.
func (m *Member) exited(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	return errors.Is(m.run.alive(ctx), errExited)
}

// Pause freezes the member (SIGSTOP, or the container's cgroup freezer): its
// connections stay open and it answers nothing, like a hung process.
func (m *Member) Pause(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.running {
		return fmt.Errorf("integration: pause %s: not running", m.name)
	}
	if m.paused {
		return nil
	}
	if err := m.run.pause(ctx); err != nil {
		return fmt.Errorf("integration: pause %s: %w", m.name, err)
	}
	m.paused = true
	return nil
}

// Resume unfreezes a paused member.
func (m *Member) Resume(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.paused {
		return nil
	}
	if err := m.run.resume(ctx); err != nil {
		return fmt.Errorf("integration: resume %s: %w", m.name, err)
	}
	m.paused = false
	return nil
}

// Restart starts a stopped or killed member again with its name, address and
// data, stopping it first if it runs, and waits until it is healthy.
func (m *Member) Restart(ctx context.Context) error {
	if err := m.Stop(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	err := m.run.start(ctx)
	if err == nil {
		m.running = true
	}
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("integration: restart %s: %w", m.name, err)
	}
	return m.WaitHealthy(ctx)
}

// WaitHealthy waits until the member answers /health with health true.
func (m *Member) WaitHealthy(ctx context.Context) error {
	for {
		st, err := m.status(ctx)
		if err == nil && len(st.Errors) == 0 && st.Leader != 0 {
			return nil
		}
		if aerr := m.run.alive(ctx); aerr != nil {
			if errors.Is(aerr, errExited) {
				// It ended on its own (a failed start, a crash).
				m.mu.Lock()
				m.running, m.paused = false, false
				m.mu.Unlock()
			}
			return fmt.Errorf("integration: member %s is not running: %w; log tail:\n%s", m.name, aerr, m.LogTail(ctx, 20))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("integration: member %s not healthy (%v): %w; log tail:\n%s",
				m.name, err, ctx.Err(), m.LogTail(context.WithoutCancel(ctx), 20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ID is the member's ID in the cluster. The member must answer the first time.
func (m *Member) ID(ctx context.Context) (uint64, error) {
	m.mu.Lock()
	id := m.id
	m.mu.Unlock()
	if id != 0 {
		return id, nil
	}
	st, err := m.status(ctx)
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	m.id = st.Header.MemberID
	m.mu.Unlock()
	return st.Header.MemberID, nil
}

// LogTail returns the member's last n log lines.
func (m *Member) LogTail(ctx context.Context, n int) string { return m.run.logTail(ctx, n) }

// status asks the member itself (not a proxy, not another member) for its status.
func (m *Member) status(ctx context.Context) (*gateway.StatusResponse, error) {
	m.mu.Lock()
	if m.statusClient == nil {
		cl, err := gateway.New(gateway.Config{
			Endpoints:      []string{m.url},
			RetryTimeout:   -1,
			RequestTimeout: time.Second,
			DialTimeout:    time.Second,
		})
		if err != nil {
			m.mu.Unlock()
			return nil, err
		}
		m.statusClient = cl
	}
	cl := m.statusClient
	m.mu.Unlock()
	return cl.Status(ctx)
}

func (m *Member) closeStatusClient() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.statusClient != nil {
		m.statusClient.Close()
		m.statusClient = nil
	}
}
