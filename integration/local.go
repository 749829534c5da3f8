package integration

// The Local backend is the engine this repository's own tests run on:
// internal/etcdtest starts, kills, pauses and restarts the processes, and
// lays out their flags (etcdtest.Specs, which the Docker backend uses too). A
// localRunner only adapts an etcdtest.Member to the runner interface, so a
// member behaves the same here as in the library's tests.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/etcdgw/etcdgw/internal/etcdtest"
)

// localBinary finds the Local backend's etcd: WithBinary, $ETCDGW_ETCD_BINARY,
// $ETCD_BIN, etcd on $PATH, or (inside this repository) the one `make etcd` built.
func localBinary(cfg config) (string, error) {
	for _, b := range []string{cfg.binary, os.Getenv("ETCDGW_ETCD_BINARY"), os.Getenv("ETCD_BIN")} {
		if b != "" {
			if _, err := os.Stat(b); err != nil {
				return "", fmt.Errorf("%w: %w", ErrNoBinary, err)
			}
			return b, nil
		}
	}
	if b, err := exec.LookPath("etcd"); err == nil {
		return b, nil
	}
	if b, err := etcdtest.Binary(); err == nil {
		return b, nil
	}
	return "", fmt.Errorf("%w: set ETCDGW_ETCD_BINARY, put etcd on $PATH, or use WithBinary", ErrNoBinary)
}

func startLocal(ctx context.Context, cfg config) (*Cluster, error) {
	bin, err := localBinary(cfg)
	if err != nil {
		return nil, err
	}
	timeout := time.Minute
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	ec, err := etcdtest.Launch(etcdtest.Options{Size: cfg.members, Binary: bin, Args: cfg.args, StartTimeout: timeout})
	if err != nil {
		return nil, fmt.Errorf("integration: start etcd: %w", err)
	}
	c := &Cluster{closer: func(context.Context) error { ec.Terminate(); return nil }}
	for _, em := range ec.Members {
		c.members = append(c.members, newMember(em.Name, em.ClientURL, localRunner{em}))
	}
	return c, nil
}

// localRunner runs a member as a process of the test's own.
type localRunner struct{ m *etcdtest.Member }

func (r localRunner) stop(ctx context.Context) error          { return r.m.Stop(ctx) }
func (r localRunner) kill(context.Context) error              { r.m.Kill(); return nil }
func (r localRunner) pause(context.Context) error             { return r.m.Pause() }
func (r localRunner) resume(context.Context) error            { return r.m.Resume() }
func (r localRunner) start(context.Context) error             { return r.m.Start() }
func (r localRunner) logTail(_ context.Context, n int) string { return r.m.LogTail(n) }
func (r localRunner) alive(context.Context) error {
	if !r.m.Running() {
		return fmt.Errorf("process of %s: %w", r.m.Name, errExited)
	}
	return nil
}
