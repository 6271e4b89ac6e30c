package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Bin returns the directory of the PostgreSQL server binaries (initdb,
// postgres, pg_ctl, pg_basebackup): CUSTOS_TEST_PG_BIN, else the newest
// /usr/lib/postgresql/*/bin. Without them the test fails in CI and is
// skipped elsewhere, saying what to install.
func Bin(tb testing.TB) string {
	tb.Helper()
	dirs := []string{os.Getenv("CUSTOS_TEST_PG_BIN")}
	if dirs[0] == "" {
		dirs, _ = filepath.Glob("/usr/lib/postgresql/*/bin")
		sort.Slice(dirs, func(i, j int) bool {
			vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
			vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
			return vi > vj
		})
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_basebackup")); err == nil {
			return d
		}
	}
	msg := "no PostgreSQL server binaries (initdb, postgres, pg_ctl, pg_basebackup) in /usr/lib/postgresql/*/bin: install them (apt-get install postgresql) or set CUSTOS_TEST_PG_BIN"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

// Server is one throwaway PostgreSQL server (a cluster of its own, in a
// temporary directory the test may read, e.g. to scan its bytes), run as
// a child process in its own process group and killed with everything it
// started when the test ends.
type Server struct {
	Name string
	// Dir is the data directory (PGDATA).
	Dir  string
	Port int

	bin    string
	cred   *syscall.Credential // the postgres user when the test runs as root
	cmd    *exec.Cmd
	exited chan struct{}
}

// NewServer makes a fresh cluster with initdb (trust authentication on
// 127.0.0.1, user postgres), appends conf to its postgresql.conf and
// starts it. As root, the server runs as the postgres user, who owns the
// directory.
func NewServer(tb testing.TB, name, conf string) *Server {
	tb.Helper()
	s := newServer(tb, name, tempRoot(tb))
	s.Run(tb, "initdb", "-D", s.Dir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-instructions")
	s.AppendConf(tb, fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nmax_connections = 60\nshared_buffers = 32MB\n%s\n",
		s.Port, filepath.Dir(s.Dir), conf))
	s.Start(tb)
	return s
}

// NewReplicated makes a primary and a synchronous standby (application
// name standby1, from pg_basebackup -R) and starts both; it returns once
// the primary reports standby1 as its synchronous standby, so that from
// then on a commit returns only once the standby has it on disk.
func NewReplicated(tb testing.TB) (primary, standby *Server) {
	tb.Helper()
	primary = NewServer(tb, "primary", `wal_level = replica
max_wal_senders = 4
hot_standby = on
synchronous_commit = on
synchronous_standby_names = 'FIRST 1 (standby1)'`)
	standby = newServer(tb, "standby", filepath.Dir(primary.Dir))
	standby.Run(tb, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(primary.Port), "-U", "postgres", "-D", standby.Dir, "-R", "-X", "stream", "-c", "fast")
	// The standby streams as standby1; once promoted it has no standby of
	// its own, so it must not wait for one.
	standby.AppendConf(tb, fmt.Sprintf("port = %d\ncluster_name = 'standby1'\nsynchronous_standby_names = ''\n", standby.Port))
	standby.Start(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, primary.URL("postgres"))
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close(context.Background())
	for {
		var state string
		err := c.QueryRow(ctx, "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'").Scan(&state)
		if err == nil && state == "sync" {
			return primary, standby
		}
		if ctx.Err() != nil {
			tb.Fatalf("standby1 never became the synchronous standby (last: %q, %v)", state, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tempRoot makes the directory the servers of one test live in, owned by
// the postgres user when the test runs as root, removed at the end.
func tempRoot(tb testing.TB) string {
	tb.Helper()
	root, err := os.MkdirTemp("", "custos-pg-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(root) })
	if os.Geteuid() == 0 {
		uid, gid := postgresUser(tb)
		if err := os.Chown(root, int(uid), int(gid)); err != nil {
			tb.Fatal(err)
		}
	}
	return root
}

func postgresUser(tb testing.TB) (uid, gid uint32) {
	tb.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		tb.Fatalf("running as root, the PostgreSQL servers need the postgres user: %v", err)
	}
	ui, _ := strconv.Atoi(u.Uid)
	gi, _ := strconv.Atoi(u.Gid)
	return uint32(ui), uint32(gi)
}

func newServer(tb testing.TB, name, root string) *Server {
	tb.Helper()
	s := &Server{Name: name, Dir: filepath.Join(root, name), Port: freePort(tb), bin: Bin(tb)}
	if os.Geteuid() == 0 {
		uid, gid := postgresUser(tb)
		s.cred = &syscall.Credential{Uid: uid, Gid: gid}
	}
	return s
}

// Command returns the server binary prog with args, run as the cluster's
// user against it.
func (s *Server) Command(prog string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, prog), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true}
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGHOST=127.0.0.1", "PGUSER=postgres", "PGPORT="+strconv.Itoa(s.Port))
	return cmd
}

// Run runs prog (initdb, pg_ctl, …) and fails tb if it fails.
func (s *Server) Run(tb testing.TB, prog string, args ...string) {
	tb.Helper()
	out, err := s.Command(prog, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
}

// AppendConf appends text to the server's postgresql.conf.
func (s *Server) AppendConf(tb testing.TB, text string) {
	tb.Helper()
	f, err := os.OpenFile(filepath.Join(s.Dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n" + text + "\n"); err != nil {
		tb.Fatal(err)
	}
}

func (s *Server) logPath() string { return filepath.Join(filepath.Dir(s.Dir), s.Name+".log") }

// Start runs the postmaster and waits until it accepts connections.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	log, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	s.cmd = s.Command("postgres", "-D", s.Dir)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		log.Close()
		tb.Fatalf("start %s: %v", s.Name, err)
	}
	s.exited = make(chan struct{})
	go func() { s.cmd.Wait(); log.Close(); close(s.exited) }()
	cmd, exited := s.cmd, s.exited
	tb.Cleanup(func() {
		// The postmaster and whatever it left: the whole process group.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.URL("postgres"))
		cancel()
		if err == nil {
			c.Close(context.Background())
			return
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(s.logPath())
			tb.Fatalf("%s does not accept connections: %v\nlog:\n%s", s.Name, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill sends SIGKILL to the postmaster alone (kill -9, as a crash or an
// operator would) and waits until it is gone.
func (s *Server) Kill(tb testing.TB) {
	tb.Helper()
	if err := syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		tb.Fatalf("kill -9 the postmaster of %s (%d): %v", s.Name, s.cmd.Process.Pid, err)
	}
	<-s.exited
}

// Stop shuts the server down cleanly (pg_ctl stop -m fast).
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	s.Run(tb, "pg_ctl", "stop", "-m", "fast", "-w", "-D", s.Dir)
	<-s.exited
}

// URL is the connection URL of database db on the server.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// Exec runs statements on database db, each on its own (so VACUUM and
// CHECKPOINT work), and fails tb on the first error.
func (s *Server) Exec(tb testing.TB, db string, sql ...string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.URL(db))
	if err != nil {
		tb.Fatalf("connect to %s: %v", s.Name, err)
	}
	defer c.Close(context.Background())
	for _, q := range sql {
		if _, err := c.Exec(ctx, q); err != nil {
			tb.Fatalf("%s on %s: %v", q, s.Name, err)
		}
	}
}

// freePort returns a TCP port nothing listens on at the moment.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
