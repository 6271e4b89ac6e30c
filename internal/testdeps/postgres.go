package testdeps

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PostgreSQL makes the local PostgreSQL server answer ready, or fails tb.
// When ready fails it starts the newest local cluster
// (pg_ctlcluster --skip-systemctl-redirect <version> main start),
// installing the postgresql package first if there is none, and creates a
// superuser role for the OS user, as .ci/run does.
func PostgreSQL(tb testing.TB, ready func() error) {
	tb.Helper()
	fatal(tb, once(tb, "PostgreSQL", ready, startPostgreSQL))
}

func startPostgreSQL() error {
	if _, err := exec.LookPath("pg_ctlcluster"); err != nil {
		if err := aptInstall("postgresql"); err != nil {
			return err
		}
	}
	version, err := newestCluster()
	if err != nil {
		return err
	}
	startErr := asClusterOwner("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start")
	if err := waitReady(30 * time.Second); err != nil {
		return errors.Join(startErr, err)
	}
	u, err := user.Current()
	if err != nil {
		return err
	}
	if u.Username == "postgres" {
		return nil
	}
	out, err := asPostgres("psql", "-qtAc", "SELECT 1 FROM pg_roles WHERE rolname = '"+strings.ReplaceAll(u.Username, "'", "''")+"'")
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) == "1" {
		return nil
	}
	_, err = asPostgres("createuser", "--superuser", u.Username)
	return err
}

// asPostgres runs a command as the postgres OS user (whom the local
// server trusts as its superuser) and returns its output.
func asPostgres(name string, args ...string) (string, error) {
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	} else {
		cmd = exec.Command("sudo", append([]string{"-n", "-u", "postgres", name}, args...)...)
	}
	cmd.Dir = os.TempDir() // postgres may not read the test's directory
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s as postgres: %w\n%s", strings.Join(cmd.Args, " "), err, tail(string(out), 2000))
	}
	return string(out), nil
}

// newestCluster is the newest PostgreSQL version with a cluster
// configured under /etc/postgresql.
func newestCluster() (string, error) {
	dirs, err := filepath.Glob("/etc/postgresql/*/main")
	if err != nil || len(dirs) == 0 {
		return "", fmt.Errorf("no PostgreSQL cluster in /etc/postgresql (%v): create one with pg_createcluster", err)
	}
	versions := make([]string, len(dirs))
	for i, d := range dirs {
		versions[i] = filepath.Base(filepath.Dir(d))
	}
	return newest(versions), nil
}

// newest is the highest of PostgreSQL version directory names, by number
// (10 after 9.6).
func newest(versions []string) string {
	versions = slices.Clone(versions)
	slices.SortFunc(versions, func(a, b string) int {
		x, _ := strconv.ParseFloat(a, 64)
		y, _ := strconv.ParseFloat(b, 64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return strings.Compare(a, b)
	})
	return versions[len(versions)-1]
}

// waitReady waits for pg_isready to report the local server accepting
// connections.
func waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := run(nil, "pg_isready", "-q", "-h", "/var/run/postgresql")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("PostgreSQL not accepting connections within %v: %w", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// asClusterOwner runs a cluster command as root, or directly when the
// tests run as postgres, the clusters' owner.
func asClusterOwner(name string, args ...string) error {
	if u, err := user.Current(); err == nil && u.Username == "postgres" {
		return run(nil, name, args...)
	}
	return asRoot(nil, name, args...)
}
