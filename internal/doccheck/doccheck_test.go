// Package doccheck_test checks the public packages' documentation: every
// package has a doc.go that states its scope, every exported identifier and
// every exported field is documented, and no public doc leans on a name only
// this repository's history knows ("the seed").
package doccheck_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// public are the packages users import, relative to the repository's root.
var public = []string{"gateway", "lease", "mutex", "election", "barrier", "queue", "integration"}

func TestPublicDocs(t *testing.T) {
	for _, dir := range public {
		t.Run(dir, func(t *testing.T) {
			for _, p := range undocumented(t, filepath.Join("..", "..", dir)) {
				t.Error(p)
			}
		})
	}
}

// TestCheckerCatches: the checker finds each kind of gap in a package written
// with them.
func TestCheckerCatches(t *testing.T) {
	dir := t.TempDir()
	src := `// Package bad has no doc.go, and leans on the
// seed's name across a line break.
package bad

type T struct {
	Field int
	// Documented is fine.
	Documented int
	hidden     int
}

func F() {}

// M is documented.
func (T) M() {}

func (T) N() {}

const C = 1

var V = 2
`
	if err := os.WriteFile(filepath.Join(dir, "bad.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(undocumented(t, dir), "\n")
	for _, want := range []string{"no doc.go", "the seed", "type T", "field T.Field", "func F", "method T.N", "C", "V"} {
		if !strings.Contains(got, want) {
			t.Errorf("the checker missed %q in:\n%s", want, got)
		}
	}
	for _, ok := range []string{"Documented", "hidden", "method T.M"} {
		if strings.Contains(got, ok) {
			t.Errorf("the checker flagged %q:\n%s", ok, got)
		}
	}
}

// undocumented lists the documentation gaps of the package in dir (its
// non-test files).
func undocumented(t *testing.T, dir string) []string {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	add := func(pos token.Pos, format string) {
		out = append(out, fset.Position(pos).String()+": "+format)
	}
	hasDocGo := false
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if name == "doc.go" && f.Doc != nil {
			hasDocGo = true
		}
		for _, cg := range f.Comments {
			if strings.Contains(strings.ToLower(strings.Join(strings.Fields(cg.Text()), " ")), "the seed") {
				add(cg.Pos(), "says \"the seed\": name etcd3gw, or nothing")
			}
		}
		for _, d := range f.Decls {
			checkDecl(d, add)
		}
	}
	if !hasDocGo {
		out = append(out, dir+": no doc.go with the package comment")
	}
	return out
}

func checkDecl(d ast.Decl, add func(token.Pos, string)) {
	switch d := d.(type) {
	case *ast.FuncDecl:
		if !d.Name.IsExported() || d.Doc != nil {
			return
		}
		if d.Recv == nil {
			add(d.Pos(), "func "+d.Name.Name+" is not documented")
			return
		}
		if recv := recvName(d.Recv.List[0].Type); ast.IsExported(recv) {
			add(d.Pos(), "method "+recv+"."+d.Name.Name+" is not documented")
		}
	case *ast.GenDecl:
		for _, s := range d.Specs {
			switch s := s.(type) {
			case *ast.TypeSpec:
				if !s.Name.IsExported() {
					continue
				}
				if d.Doc == nil && s.Doc == nil {
					add(s.Pos(), "type "+s.Name.Name+" is not documented")
				}
				if st, ok := s.Type.(*ast.StructType); ok {
					checkFields(s.Name.Name, st, add)
				}
			case *ast.ValueSpec:
				for _, n := range s.Names {
					// A value in a documented group is documented by the
					// group's comment.
					if n.IsExported() && d.Doc == nil && s.Doc == nil && s.Comment == nil {
						add(n.Pos(), n.Name+" is not documented")
					}
				}
			}
		}
	}
}

// checkFields flags exported fields without a doc or line comment; fields
// declared together ("CertFile, KeyFile string") share one.
func checkFields(typ string, st *ast.StructType, add func(token.Pos, string)) {
	for _, f := range st.Fields.List {
		if f.Doc != nil || f.Comment != nil {
			continue
		}
		for _, n := range f.Names {
			if n.IsExported() {
				add(n.Pos(), "field "+typ+"."+n.Name+" is not documented")
			}
		}
	}
}

func recvName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return recvName(e.X)
	case *ast.IndexExpr:
		return recvName(e.X)
	case *ast.Ident:
		return e.Name
	}
	return ""
}
