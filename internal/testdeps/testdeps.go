// Package testdeps starts or installs what the tests need on this machine,
// so that `go test ./...` runs every test on a fresh one: a local
// PostgreSQL server (started, or installed with apt-get), Debian's
// Chromium, Node.js, and the npm packages a package-lock.json pins. Each
// setup runs at most once per test binary and, across test binaries that
// run in parallel, under one file lock; a setup that cannot be done fails
// the test, naming what to do, and never skips it. Installing needs root
// or sudo. It is for tests only.
package testdeps

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// done remembers each setup's outcome in this test binary: the point of
// the package is that a setup runs once, whichever test asks first.
var done = struct {
	mu   sync.Mutex
	errs map[string]*onceErr
}{errs: map[string]*onceErr{}}

type onceErr struct {
	once sync.Once
	err  error
}

// once runs setup the first time name is asked for in this binary, under
// the machine-wide lock, and returns its outcome every time. ready is
// checked before taking the lock and again under it, so a binary that
// finds the work done by another does nothing.
func once(tb testing.TB, name string, ready func() error, setup func() error) error {
	tb.Helper()
	done.mu.Lock()
	o, ok := done.errs[name]
	if !ok {
		o = &onceErr{}
		done.errs[name] = o
	}
	done.mu.Unlock()
	o.once.Do(func() {
		if ready() == nil {
			return
		}
		unlock, err := lock()
		if err != nil {
			o.err = err
			return
		}
		defer unlock()
		if ready() == nil {
			return
		}
		tb.Logf("testdeps: setting up %s", name)
		if err := setup(); err != nil {
			o.err = fmt.Errorf("set up %s: %w", name, err)
			return
		}
		if err := ready(); err != nil {
			o.err = fmt.Errorf("%s set up but not ready: %w", name, err)
		}
	})
	return o.err
}

// lockPath is the file whose lock serialises setups across test binaries
// (and across checkouts: apt-get takes one at a time anyway).
func lockPath() string { return filepath.Join(os.TempDir(), "custos-testdeps.lock") }

// run runs a command, returning an error with its output on failure.
func run(env []string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(out.String(), 2000))
	}
	return nil
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// asRoot runs a command as root: directly when the tests run as root,
// else through sudo without a password prompt.
func asRoot(env []string, name string, args ...string) error {
	if os.Geteuid() == 0 {
		return run(env, name, args...)
	}
	if _, err := exec.LookPath("sudo"); err != nil {
		return fmt.Errorf("%s needs root: run the tests as root or install sudo", name)
	}
	return run(nil, "sudo", append(append([]string{"-n", "env"}, env...), append([]string{name}, args...)...)...)
}

// aptInstall installs Debian packages with apt-get, updating the package
// lists first (a fresh machine has none).
func aptInstall(packages ...string) error {
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("apt-get not found: install %s yourself", strings.Join(packages, " "))
	}
	env := []string{"DEBIAN_FRONTEND=noninteractive"}
	if err := asRoot(env, "apt-get", "update", "-qq"); err != nil {
		return err
	}
	return asRoot(env, "apt-get", append([]string{"install", "-y", "-qq"}, packages...)...)
}

// fatal fails tb with err when err is not nil.
func fatal(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
