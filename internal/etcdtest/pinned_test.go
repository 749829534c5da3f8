package etcdtest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdgw/etcdgw/internal/etcdtest"
)

// TestVersionsPinned: every etcd version tools/versions.env names has its build
// module pinned to that version, and nothing else in the tree pins one it does
// not name.
func TestVersionsPinned(t *testing.T) {
	root, err := etcdtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	pinned := func(key string) []string {
		v, err := etcdtest.Pinned(key)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Fields(v)
	}
	def := pinned("ETCD_DEFAULT")
	if len(def) != 1 {
		t.Fatalf("ETCD_DEFAULT = %q: one version", def)
	}
	want := map[string]string{} // build module folder -> the require it must have
	for _, v := range append(def, pinned("ETCD_OTHERS")...) {
		want["tools/etcd/v"+v] = "go.etcd.io/etcd/server/v3 v" + v
	}
	want["tools/etcdctl/v"+def[0]] = "go.etcd.io/etcd/etcdctl/v3 v" + def[0]
	for dir, req := range want {
		b, err := os.ReadFile(filepath.Join(root, dir, "go.mod"))
		if err != nil {
			t.Errorf("%s: %v (a pinned version needs its build module)", dir, err)
			continue
		}
		if !strings.Contains(string(b), req) {
			t.Errorf("%s/go.mod does not require %s", dir, req)
		}
	}
	for _, tool := range []string{"etcd", "etcdctl"} {
		dirs, err := os.ReadDir(filepath.Join(root, "tools", tool))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs {
			if _, ok := want[filepath.Join("tools", tool, d.Name())]; !ok {
				t.Errorf("tools/%s/%s builds a version tools/versions.env does not name", tool, d.Name())
			}
		}
	}
}
