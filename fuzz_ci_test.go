package custos_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestFuzzTargetsRunInCI: every fuzz target of the module is fuzzed by
// .ci/run and has seeds (in its package's testdata/fuzz, or added in
// code), so a new decoder's fuzz test cannot be left out of CI.
func TestFuzzTargetsRunInCI(t *testing.T) {
	ci, err := os.ReadFile(".ci/run")
	if err != nil {
		t.Fatal(err)
	}
	fuzzFunc := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(f \*testing\.F\)`)
	found := 0
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range fuzzFunc.FindAllSubmatch(b, -1) {
			found++
			name, dir := string(m[1]), filepath.Dir(path)
			if want := "./" + filepath.ToSlash(dir) + ":" + name; !strings.Contains(string(ci), want) {
				t.Errorf("%s (%s) is not fuzzed by .ci/run: add %s to its list", name, path, want)
			}
			seeds, _ := filepath.Glob(filepath.Join(dir, "testdata", "fuzz", name, "*"))
			if len(seeds) == 0 && !strings.Contains(string(b), "f.Add(") {
				t.Errorf("%s (%s) has no seeds in %s", name, path, filepath.Join(dir, "testdata", "fuzz", name))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found == 0 {
		t.Fatal("no fuzz target found in the module")
	}
}
