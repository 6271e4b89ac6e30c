package custos_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/custos-dev/custos"

// packages parses every non-test Go file of the module, by directory.
func packages(t *testing.T) map[string][]string {
	t.Helper()
	imports := map[string][]string{}
	docs := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		if _, ok := imports[dir]; !ok {
			imports[dir] = nil
		}
		if f.Doc != nil && strings.HasPrefix(f.Doc.Text(), "Package "+f.Name.Name+" ") || f.Name.Name == "main" && f.Doc != nil {
			docs[dir] = true
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			imports[dir] = append(imports[dir], p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir := range imports {
		if !docs[dir] {
			t.Errorf("package in %s has no doc comment starting \"Package <name> \"", dir)
		}
	}
	return imports
}

// TestLayout keeps the layout STYLE.md asks for: the root imports only
// the standard library; domain packages never import the HTTP server or a
// store; stores never import domain logic; only cmd/custos wires
// concrete parts together.
func TestLayout(t *testing.T) {
	if _, err := os.Stat("go.mod"); err != nil {
		t.Skip("run from the module root")
	}
	stores := []string{"internal/pebble", "internal/postgres"}
	domain := []string{"internal/segment", "internal/subjects", "internal/keyring", "internal/audit", "internal/tenants",
		"internal/deadline", "internal/certificate", "internal/rights", "internal/forward", "internal/consent", "internal/campaign", "internal/incident",
		"internal/processing", "internal/retention"}
	pkgs := packages(t)
	if len(pkgs) < 15 {
		t.Fatalf("found %d packages; the walk missed some", len(pkgs))
	}
	for dir, imps := range pkgs {
		for _, imp := range imps {
			ours := strings.HasPrefix(imp, module)
			rel := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
			switch {
			case dir == "." && (ours || strings.Contains(strings.SplitN(imp, "/", 2)[0], ".")):
				t.Errorf("the root package imports %s; it may import only the standard library", imp)
			case slices.Contains(domain, dir) && ours && (rel == "internal/server" || slices.Contains(stores, rel)):
				t.Errorf("domain package %s imports %s; domain logic must not depend on the HTTP layer or a store", dir, imp)
			case slices.Contains(stores, dir) && ours && rel != "" && !strings.HasPrefix(rel, dir):
				t.Errorf("store %s imports %s; stores implement the root contracts and import no domain logic", dir, imp)
			}
		}
	}
}
