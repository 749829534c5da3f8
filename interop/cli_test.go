package interop

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

// TestCLILockExcludesEtcdctl: `etcdgw lock` and `etcdctl lock` on one name
// exclude each other. Each runs a command that records when it enters and
// leaves; no two records overlap.
func TestCLILockExcludesEtcdctl(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "etcdgw")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/etcdgw/etcdgw/cmd/etcdgw").CombinedOutput(); err != nil {
		t.Fatalf("building etcdgw: %v\n%s", err, out)
	}
	cl := etcdtest.Single(t)
	eps := "--endpoints=" + strings.Join(cl.Endpoints(), ",")
	log := filepath.Join(t.TempDir(), "log")
	script := func(who string) string {
		return fmt.Sprintf(`echo "enter %s $(date +%%s%%N)" >> %s; sleep 0.05; echo "leave %s $(date +%%s%%N)" >> %s`, who, log, who, log)
	}
	const each = 5
	ctx := tu.Ctx(t)
	runs := map[string][]string{
		"etcdgw":  {bin, eps, "lock", "shared-cli", "--", "sh", "-c", script("etcdgw")},
		"etcdctl": {etcdctl(t), eps, "lock", "shared-cli", "--", "sh", "-c", script("etcdctl")},
	}
	done := make(chan error, len(runs))
	for who, argv := range runs {
		go func() {
			for range each {
				if out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput(); err != nil {
					done <- fmt.Errorf("%s: %v\n%s", who, err, out)
					return
				}
			}
			done <- nil
		}()
	}
	for range runs {
		tu.NoErr(t, <-done)
	}
	b, err := os.ReadFile(log)
	tu.NoErr(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	tu.Eq(t, "records", len(lines), 2*2*each)
	inside := ""
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case f[0] == "enter" && inside != "":
			t.Fatalf("%s entered while %s held the lock:\n%s", f[1], inside, b)
		case f[0] == "enter":
			inside = f[1]
		default:
			inside = ""
		}
	}
}
