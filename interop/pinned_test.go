package interop_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdgw/etcdgw/internal/etcdtest"
)

// TestClientv3Pinned: the clientv3 these tests compare with is the version of
// the etcd they run against (tools/versions.env).
func TestClientv3Pinned(t *testing.T) {
	v, err := etcdtest.Pinned("ETCD_DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	root, err := etcdtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "interop", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "go.etcd.io/etcd/client/v3 v" + v; !strings.Contains(string(b), want) {
		t.Fatalf("interop/go.mod does not require %s", want)
	}
}
