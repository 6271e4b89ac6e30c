package testdeps

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// chromiumNames are where Debian's chromium package puts the browser.
var chromiumNames = []string{"chromium", "/usr/bin/chromium", "chromium-browser"}

// Chromium returns the path of a Chromium browser, installing Debian's
// chromium package if there is none, or fails tb.
func Chromium(tb testing.TB) string {
	tb.Helper()
	fatal(tb, once(tb, "Chromium", func() error { _, err := chromium(); return err },
		func() error { return aptInstall("chromium") }))
	p, err := chromium()
	fatal(tb, err)
	return p
}

func chromium() (string, error) {
	for _, name := range chromiumNames {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("chromium not found on PATH or in /usr/bin")
}

// Node returns the path of node, installing Debian's nodejs and npm
// packages if it is missing, or fails tb.
func Node(tb testing.TB) string {
	tb.Helper()
	fatal(tb, once(tb, "Node.js", func() error {
		if _, err := exec.LookPath("node"); err != nil {
			return err
		}
		_, err := exec.LookPath("npm")
		return err
	}, func() error { return aptInstall("nodejs", "npm") }))
	p, err := exec.LookPath("node")
	fatal(tb, err)
	return p
}

// NodeModules makes dir/node_modules hold exactly what dir's
// package-lock.json pins, running npm ci (without install scripts) when
// node_modules is missing or was installed from another lock file, or
// fails tb. It returns dir as an absolute path.
func NodeModules(tb testing.TB, dir string) string {
	tb.Helper()
	dir, err := filepath.Abs(dir)
	fatal(tb, err)
	Node(tb)
	stamp := filepath.Join(dir, "node_modules", ".custos-lock-sha256")
	fatal(tb, once(tb, "npm packages in "+dir, func() error {
		want, err := lockSum(dir)
		if err != nil {
			return err
		}
		got, err := os.ReadFile(stamp)
		if err != nil {
			return fmt.Errorf("node_modules not installed from package-lock.json: %w", err)
		}
		if string(got) != want {
			return fmt.Errorf("node_modules is stale: installed from another package-lock.json")
		}
		return nil
	}, func() error {
		if err := run(nil, "npm", "ci", "--prefix", dir, "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"); err != nil {
			return err
		}
		sum, err := lockSum(dir)
		if err != nil {
			return err
		}
		return os.WriteFile(stamp, []byte(sum), 0o644)
	}))
	return dir
}

// lockSum is the hex SHA-256 of dir's package-lock.json.
func lockSum(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
