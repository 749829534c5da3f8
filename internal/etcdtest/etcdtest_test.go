package etcdtest_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/etcdgw/etcdgw/internal/etcdtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func health(ctx context.Context, url string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func TestMemberControl(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	c := etcdtest.Start(t, etcdtest.Options{Size: 3})
	if len(c.Endpoints()) != 3 || c.Version() == "" {
		t.Fatalf("cluster: %v %q", c.Endpoints(), c.Version())
	}
	m := c.Members[1]
	ctx := t.Context()

	// Paused: the socket accepts, nothing answers.
	if err := m.Pause(); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err := health(short, m.ClientURL)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("paused member answered: %v", err)
	}
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}

	// Killed: refused; restarted: healthy again with its data.
	m.Kill()
	if m.Running() {
		t.Fatal("killed member still running")
	}
	if err := health(ctx, m.ClientURL); err == nil {
		t.Fatal("killed member answered")
	}
	if err := m.Pause(); err == nil {
		t.Fatal("pausing a stopped member succeeded")
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err == nil {
		t.Fatal("restarting a running member succeeded")
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestBinaryMissing(t *testing.T) {
	t.Setenv("ETCD_BIN", "/nonexistent/etcd")
	if _, err := etcdtest.Binary(); err == nil {
		t.Fatal("a missing ETCD_BIN was accepted")
	}
}

func TestVersionAtLeast(t *testing.T) {
	for _, tc := range []struct {
		v    string
		ok34 bool
		ok36 bool
	}{{"3.4.23", true, false}, {"3.6.16", true, true}, {"3.10.0", true, true}, {"4.0.0", true, true}, {"3.3.9", false, false}} {
		if etcdtest.VersionAtLeast(tc.v, 3, 4) != tc.ok34 || etcdtest.VersionAtLeast(tc.v, 3, 6) != tc.ok36 {
			t.Errorf("VersionAtLeast(%s) wrong", tc.v)
		}
	}
}
