package faults_test

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var soak = flag.Duration("soak", 0, "run each workload this long; 0: the short run of CI")

// runFor is how long each workload runs with faults injected.
func runFor() time.Duration {
	if *soak > 0 {
		return *soak
	}
	return 20 * time.Second
}

// row is one line of the summary table.
type row struct {
	workload   string
	faults     map[string]int
	ops        int
	violations int
	catches    string // what the workload's checks can catch
}

var (
	summaryMu sync.Mutex
	summary   []row
)

// record adds a workload's line to the summary and logs it.
func record(t *testing.T, r row) {
	t.Helper()
	t.Logf("%s: faults %s; %d operations checked; %d violations", r.workload, faultList(r.faults), r.ops, r.violations)
	summaryMu.Lock()
	summary = append(summary, r)
	summaryMu.Unlock()
}

func faultList(m map[string]int) string {
	names := make([]string, 0, len(m))
	total := 0
	for k, n := range m {
		names = append(names, fmt.Sprintf("%s %d", k, n))
		total += n
	}
	sort.Strings(names)
	return fmt.Sprintf("%d (%s)", total, strings.Join(names, ", "))
}

func writeSummary(w io.Writer) {
	summaryMu.Lock()
	defer summaryMu.Unlock()
	width := len("faults injected")
	for _, r := range summary {
		width = max(width, len(faultList(r.faults)))
	}
	fmt.Fprintf(w, "\nfault-injection summary (each workload %v, the lock and election ones until every kind of holder has run, up to %v; 3 members)\n",
		runFor(), workloadFor())
	fmt.Fprintf(w, "| %-12s | %-*s | %10s | %10s |\n", "workload", width, "faults injected", "operations", "violations")
	fmt.Fprintf(w, "|%s|%s|%s|%s|\n", strings.Repeat("-", 14), strings.Repeat("-", width+2), strings.Repeat("-", 12), strings.Repeat("-", 12))
	for _, r := range summary {
		fmt.Fprintf(w, "| %-12s | %-*s | %10d | %10d |\n", r.workload, width, faultList(r.faults), r.ops, r.violations)
	}
	fmt.Fprintln(w, "\nwhat each workload's checks catch:")
	for _, r := range summary {
		fmt.Fprintf(w, "- %s: %s\n", r.workload, r.catches)
	}
}

type summaryM struct{ m *testing.M }

// Run runs the tests, then prints the summary table, and writes it to
// $FAULTS_SUMMARY if set (go test shows a passing package's output only with -v).
func (s summaryM) Run() int {
	code := s.m.Run()
	writeSummary(os.Stdout)
	if path := os.Getenv("FAULTS_SUMMARY"); path != "" {
		if f, err := os.Create(path); err == nil {
			writeSummary(f)
			f.Close()
		}
	}
	return code
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(summaryM{m}) }
