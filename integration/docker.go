package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/etcdgw/etcdgw/internal/etcdtest"
)

// dockerReachable reports whether a Docker engine answers within a few seconds.
func dockerReachable(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	dc, err := dockerClient(ctx)
	if err != nil {
		return false
	}
	dc.Close()
	return true
}

func dockerClient(ctx context.Context) (*testcontainers.DockerClient, error) {
	dc, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoDocker, err)
	}
	if _, err := dc.Ping(ctx, client.PingOptions{}); err != nil {
		dc.Close()
		return nil, fmt.Errorf("%w: %w", ErrNoDocker, err)
	}
	return dc, nil
}

func imageRef(cfg config) string {
	if cfg.image != "" {
		return cfg.image
	}
	if img := os.Getenv("ETCDGW_ETCD_IMAGE"); img != "" {
		return img
	}
	return DefaultImage
}

// startDocker runs one container per member on the host's network. A port chosen
// free can be taken before etcd binds it; then the cluster is started again on new
// ports, up to three times.
func startDocker(ctx context.Context, cfg config) (*Cluster, error) {
	dc, err := dockerClient(ctx)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		c, err := launchDocker(ctx, dc, cfg)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	dc.Close()
	return nil, lastErr
}

func launchDocker(ctx context.Context, dc *testcontainers.DockerClient, cfg config) (*Cluster, error) {
	specs, err := etcdtest.Specs(cfg.members, "http", func(name string) string { return "/var/lib/etcd/" + name }, cfg.args)
	if err != nil {
		return nil, err
	}
	image := imageRef(cfg)
	var runners []*dockerRunner
	terminate := func(ctx context.Context) error {
		var errs []error
		for _, r := range runners {
			errs = append(errs, r.ctr.Terminate(ctx))
		}
		return errors.Join(errs...)
	}
	c := &Cluster{}
	for _, sp := range specs {
		ctr, err := testcontainers.Run(ctx, image,
			testcontainers.WithEntrypoint("/usr/local/bin/etcd"),
			testcontainers.WithCmd(sp.Args...),
			testcontainers.WithLabels(map[string]string{"org.etcdgw.member": sp.Name}),
			testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
				hc.NetworkMode = "host"
			}),
		)
		if ctr != nil {
			r := &dockerRunner{dc: dc, ctr: ctr, name: sp.Name}
			runners = append(runners, r)
			c.members = append(c.members, newMember(sp.Name, sp.ClientURL, r))
		}
		if err != nil {
			err = fmt.Errorf("integration: run %s (image %s): %w", sp.Name, image, err)
			return nil, errors.Join(err, terminate(context.WithoutCancel(ctx)))
		}
	}
	c.closer = func(ctx context.Context) error {
		err := terminate(ctx)
		dc.Close()
		return err
	}
	if err := c.WaitHealthy(ctx); err != nil {
		for _, m := range c.members {
			m.closeStatusClient()
		}
		return nil, errors.Join(err, terminate(context.WithoutCancel(ctx)))
	}
	return c, nil
}

// dockerRunner runs a member in a container. The container (and with it the
// member's data) lives until Terminate; stop and kill leave it for start.
type dockerRunner struct {
	dc     *testcontainers.DockerClient
	ctr    *testcontainers.DockerContainer
	name   string
	paused bool // guarded by the Member's mutex, like every call here
}

func (r *dockerRunner) stop(ctx context.Context) error {
	timeout := 10 * time.Second
	return r.ctr.Stop(ctx, &timeout)
}

func (r *dockerRunner) kill(ctx context.Context) error {
	if r.paused {
		// The engine refuses to signal a paused container.
		if err := r.resume(ctx); err != nil {
			return err
		}
	}
	if _, err := r.dc.ContainerKill(ctx, r.ctr.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return err
	}
	// SIGKILL is sent: the container ends whatever ctx does now, so wait for
	// that under a bound of its own, and the member's state stays true.
	_, err := r.settled(ctx, func(st *container.State) bool { return !st.Running })
	return err
}

// settled waits until the container's state satisfies ok, for at most
// settleTimeout and not bound by ctx, which may be what ended: it learns how a
// call to the engine that was cut short (or has just returned) left the
// container.
func (r *dockerRunner) settled(ctx context.Context, ok func(*container.State) bool) (*container.State, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	for {
		st, err := r.ctr.State(ctx)
		if err != nil {
			return nil, err
		}
		if ok(st) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("container of %s is %s: %w", r.name, st.Status, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// pause and resume: a call cut short by ctx may still have been carried out,
// so the engine is asked what became of the container before an error stands.
func (r *dockerRunner) pause(ctx context.Context) error {
	_, err := r.dc.ContainerPause(ctx, r.ctr.GetContainerID(), client.ContainerPauseOptions{})
	if err != nil {
		if st, serr := r.settled(ctx, stateKnown); serr != nil || !st.Paused {
			return err
		}
	}
	r.paused = true
	return nil
}

func (r *dockerRunner) resume(ctx context.Context) error {
	_, err := r.dc.ContainerUnpause(ctx, r.ctr.GetContainerID(), client.ContainerUnpauseOptions{})
	if err != nil {
		if st, serr := r.settled(ctx, stateKnown); serr != nil || st.Paused {
			return err
		}
	}
	r.paused = false
	return nil
}

// stateKnown accepts any state: settled then just reads it.
func stateKnown(*container.State) bool { return true }

func (r *dockerRunner) start(ctx context.Context) error { return r.ctr.Start(ctx) }

func (r *dockerRunner) alive(ctx context.Context) error {
	st, err := r.ctr.State(ctx)
	if err != nil {
		return err
	}
	if !st.Running {
		return fmt.Errorf("container of %s is %s (exit code %d): %w", r.name, st.Status, st.ExitCode, errExited)
	}
	return nil
}

func (r *dockerRunner) logTail(ctx context.Context, n int) string {
	rc, err := r.ctr.Logs(ctx)
	if err != nil {
		return "(no logs: " + err.Error() + ")"
	}
	defer rc.Close()
	return etcdtest.TailLines(rc, n)
}
