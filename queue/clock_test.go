package queue_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoClientClock: delays, backoffs and claims are decided by the server
// alone (a hold's lease TTL, a claim's lease), so a consumer or producer
// whose clock is off by minutes delivers nothing early or late. This machine
// cannot give one process a wall clock of its own (Go reads it through the
// vDSO, and time namespaces shift only the monotonic clocks), so the test
// holds the code to it instead: no file of the queue package, nor of the
// internal packages it waits and commits through, reads a clock or starts a
// timer. TestDelay and TestRetryBackoff measure the server's side.
//
// One timer is allowed, by name: fence.Commit's pause between resends of a
// transaction whose replies keep being lost. It paces a network retry on the
// monotonic clock, as the gateway's own retry backoff (which every queue call
// goes through) does, and decides no delivery, delay or claim.
func TestNoClientClock(t *testing.T) {
	banned := map[string]bool{"Now": true, "Since": true, "Until": true, "After": true, "AfterFunc": true,
		"NewTimer": true, "NewTicker": true, "Tick": true, "Sleep": true, "Unix": true, "UnixMilli": true}
	allowed := map[string]bool{filepath.Join("..", "internal", "fence", "fence.go") + ": time.NewTimer": true}
	for _, dir := range []string{".", "../internal/await", "../internal/fence"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			file, err := parser.ParseFile(fset, f, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			ast.Inspect(file, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "time" && banned[sel.Sel.Name] && !allowed[f+": time."+sel.Sel.Name] {
					t.Errorf("%s: time.%s: the client's clock must not take part", fset.Position(sel.Pos()), sel.Sel.Name)
				}
				return true
			})
		}
		if checked == 0 {
			t.Fatalf("no Go file in %s", dir)
		}
	}
}
