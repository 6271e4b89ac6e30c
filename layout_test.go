package custos_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
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

// kinds classifies every package of the module; a new package fails
// TestLayout until it is listed here, so that the rules below cover it.
var kinds = map[string]string{
	".":          "root",
	"cmd/custos": "main",

	// Domain logic: depends on the root's contracts, never on a concrete
	// store or the HTTP layer.
	"internal/audit":       "domain",
	"internal/campaign":    "domain",
	"internal/certificate": "domain",
	"internal/consent":     "domain",
	"internal/deadline":    "domain",
	"internal/forward":     "domain",
	"internal/incident":    "domain",
	"internal/keyring":     "domain",
	"internal/opendsr":     "domain",
	"internal/processing":  "domain",
	"internal/retention":   "domain",
	"internal/rights":      "domain",
	"internal/segment":     "domain",
	"internal/subjects":    "domain",
	"internal/tenants":     "domain",
	"internal/urlpolicy":   "domain",

	// The stores: implement the root's contracts.
	"internal/pebble":   "store",
	"internal/postgres": "store",

	// Adapters and plumbing: the HTTP surface and the console, outbound channels, metrics,
	// TLS, the supervisor, the load generator, rate and connection limits,
	// the outbound guard, second factors, backups.
	"internal/server":    "adapter",
	"internal/console":   "adapter",
	"internal/mail":      "adapter",
	"internal/webhook":   "adapter",
	"internal/metrics":   "adapter",
	"internal/retry":     "adapter",
	"internal/tlsconfig": "adapter",
	"internal/supervise": "adapter",
	"internal/loadgen":   "adapter",
	"internal/admission": "adapter",
	"internal/netguard":  "adapter",
	"internal/totp":      "adapter",
	"internal/backup":    "adapter",
	"internal/lease":     "adapter",

	// For tests only.
	"internal/storetest":     "test",
	"internal/testenv":       "test",
	"internal/pgtest":        "test",
	"internal/testdeps":      "test",
	"internal/mail/mailtest": "test",
}

// TestLayout keeps the layout STYLE.md asks for: the root imports only
// the standard library; domain packages never import the HTTP server or a
// store; stores never import domain logic; only cmd/custos chooses a
// concrete store (tests, and the packages that serve only tests, may
// open one too); and no package but a test's imports the test helpers.
func TestLayout(t *testing.T) {
	if _, err := os.Stat("go.mod"); err != nil {
		t.Fatalf("TestLayout runs in the module root (go test runs a package's tests in its directory): %v", err)
	}
	pkgs := packages(t)
	for dir := range pkgs {
		if _, ok := kinds[filepath.ToSlash(dir)]; !ok {
			t.Errorf("package %s is not classified: add it to kinds in layout_test.go (domain, store, adapter or test)", dir)
		}
	}
	for dir := range kinds {
		if _, ok := pkgs[filepath.FromSlash(dir)]; !ok {
			t.Errorf("kinds lists %s, which has no package: remove it", dir)
		}
	}
	for dir, imps := range pkgs {
		dir = filepath.ToSlash(dir)
		kind := kinds[dir]
		for _, imp := range imps {
			ours := strings.HasPrefix(imp, module)
			rel := strings.TrimPrefix(strings.TrimPrefix(imp, module), "/")
			switch {
			case kind == "root" && (ours || strings.Contains(strings.SplitN(imp, "/", 2)[0], ".")):
				t.Errorf("the root package imports %s; it may import only the standard library", imp)
			case !ours:
			case kind == "domain" && (kinds[rel] == "store" || kinds[rel] == "adapter" && rel == "internal/server"):
				t.Errorf("domain package %s imports %s; domain logic must not depend on the HTTP layer or a store", dir, imp)
			case kind == "store" && rel != "" && kinds[rel] != "store":
				t.Errorf("store %s imports %s; stores implement the root contracts and import no domain logic", dir, imp)
			case kinds[rel] == "store" && kind != "main" && kind != "test" && kind != "store":
				t.Errorf("%s imports the concrete store %s; only cmd/custos chooses a store (tests may open one)", dir, imp)
			case kinds[rel] == "test" && kind != "test":
				t.Errorf("%s imports the test helper %s outside a test", dir, imp)
			}
		}
	}
}
