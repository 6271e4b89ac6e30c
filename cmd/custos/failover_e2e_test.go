package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	segment "github.com/segmentio/analytics-go/v3"
)

// pgBin returns the directory of the PostgreSQL server binaries (initdb,
// postgres, pg_ctl, pg_basebackup): CUSTOS_TEST_PG_BIN, else the newest
// /usr/lib/postgresql/*/bin. Without them the test fails in CI and is
// skipped elsewhere, saying what to install.
func pgBin(t *testing.T) string {
	t.Helper()
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
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// pgNode is one PostgreSQL server of the test cluster, run as a child
// process in its own process group.
type pgNode struct {
	name, dir, bin string
	port           int
	cred           *syscall.Credential // the postgres user when the test runs as root
	cmd            *exec.Cmd
	exited         chan error
}

// command returns bin/name args..., run as the cluster's user.
func (n *pgNode) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(n.bin, name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: n.cred, Setpgid: true}
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGHOST=127.0.0.1", "PGUSER=postgres")
	return cmd
}

func (n *pgNode) run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := n.command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// start runs the postmaster and waits until it accepts connections.
func (n *pgNode) start(t *testing.T) {
	t.Helper()
	log, err := os.OpenFile(filepath.Join(filepath.Dir(n.dir), n.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	n.cmd = n.command("postgres", "-D", n.dir)
	n.cmd.Stdout, n.cmd.Stderr = log, log
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", n.name, err)
	}
	n.exited = make(chan error, 1)
	go func() { n.exited <- n.cmd.Wait(); log.Close() }()
	t.Cleanup(func() {
		// The postmaster and whatever it left: the whole process group.
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-n.exited:
		case <-time.After(10 * time.Second):
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, n.url("postgres"))
		cancel()
		if err == nil {
			c.Close(context.Background())
			return
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(filepath.Join(filepath.Dir(n.dir), n.name+".log"))
			t.Fatalf("%s does not accept connections: %v\nlog:\n%s", n.name, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *pgNode) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", n.port, db)
}

// exec runs statements on database db of n.
func (n *pgNode) exec(t *testing.T, db string, sql ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, n.url(db))
	if err != nil {
		t.Fatalf("connect to %s: %v", n.name, err)
	}
	defer c.Close(context.Background())
	for _, q := range sql {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s on %s: %v", q, n.name, err)
		}
	}
}

// freePort returns a TCP port nothing listens on at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newReplicatedCluster makes a primary and a synchronous standby (named
// standby1) under a fresh directory and starts both. As root, the servers
// run as the postgres user, who owns the directory.
func newReplicatedCluster(t *testing.T) (primary, standby *pgNode) {
	t.Helper()
	bin := pgBin(t)
	root, err := os.MkdirTemp("", "custos-failover-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, the PostgreSQL servers need the postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(root, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	primary = &pgNode{name: "primary", dir: filepath.Join(root, "primary"), bin: bin, port: freePort(t), cred: cred}
	standby = &pgNode{name: "standby", dir: filepath.Join(root, "standby"), bin: bin, port: freePort(t), cred: cred}
	primary.run(t, "initdb", "-D", primary.dir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-instructions")
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
max_connections = 60
shared_buffers = 32MB
wal_level = replica
max_wal_senders = 4
hot_standby = on
synchronous_commit = on
synchronous_standby_names = 'FIRST 1 (standby1)'
`, primary.port, root)
	appendFile(t, filepath.Join(primary.dir, "postgresql.conf"), conf)
	primary.start(t)
	standby.run(t, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(primary.port), "-U", "postgres", "-D", standby.dir, "-R", "-X", "stream", "-c", "fast")
	// The standby streams as standby1; once promoted it has no standby of
	// its own, so it must not wait for one.
	appendFile(t, filepath.Join(standby.dir, "postgresql.conf"), fmt.Sprintf("port = %d\ncluster_name = 'standby1'\nsynchronous_standby_names = ''\n", standby.port))
	standby.start(t)
	// Wait until the standby is the synchronous one: from then on a commit
	// returns only once the standby has it on disk.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, primary.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	for {
		var state string
		err := c.QueryRow(ctx, "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'").Scan(&state)
		if err == nil && state == "sync" {
			return primary, standby
		}
		if ctx.Err() != nil {
			t.Fatalf("standby1 never became the synchronous standby (last: %q, %v)", state, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// statusCounter is the HTTP transport of the Segment client: it counts
// the answers the server gave, by status, and the 503s without a
// Retry-After header.
type statusCounter struct {
	mu           sync.Mutex
	byStatus     map[int]int
	noRetryAfter int
	transportErr int
	first503     time.Time
	last503      time.Time
}

func (c *statusCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.transportErr++
		return resp, err
	}
	c.byStatus[resp.StatusCode]++
	if resp.StatusCode == http.StatusServiceUnavailable {
		if resp.Header.Get("Retry-After") == "" {
			c.noRetryAfter++
		}
		now := time.Now()
		if c.first503.IsZero() {
			c.first503 = now
		}
		c.last503 = now
	}
	return resp, nil
}

// failoverCallback records which messages the client saw acknowledged.
type failoverCallback struct {
	mu       sync.Mutex
	acked    map[string][]string // user id → message ids
	n        atomic.Int64
	failures []error
}

func (c *failoverCallback) Success(m segment.Message) {
	tr := m.(segment.Track)
	c.mu.Lock()
	c.acked[tr.UserId] = append(c.acked[tr.UserId], tr.MessageId)
	c.mu.Unlock()
	c.n.Add(1)
}

func (c *failoverCallback) Failure(_ segment.Message, err error) {
	c.mu.Lock()
	c.failures = append(c.failures, err)
	c.mu.Unlock()
}

// waitAcked waits until at least n messages were acknowledged.
func (c *failoverCallback) waitAcked(t *testing.T, n int64, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for c.n.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: only %d of %d messages acknowledged within 30s", what, c.n.Load(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFailoverToSynchronousStandby runs `custos serve` on a primary with a
// synchronous standby (data and keys as two databases of that cluster,
// reached through a multi-host URL), sends load with the Segment Go
// client, kills the primary's postmaster with SIGKILL mid-load, promotes
// the standby and keeps sending. The node must reconnect by itself,
// answer 503 with Retry-After in the gap and never a 4xx, and every
// message the client saw acknowledged must be readable afterwards,
// exactly once, with nothing else stored.
func TestFailoverToSynchronousStandby(t *testing.T) {
	primary, standby := newReplicatedCluster(t)
	primary.exec(t, "postgres", "CREATE DATABASE custos_data", "CREATE DATABASE custos_keys")
	multi := func(db string) string {
		return fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/%s?target_session_attrs=read-write&sslmode=disable&connect_timeout=5",
			primary.port, standby.port, db)
	}
	cfg := newServerConfig(t)
	cfg.extraArgs = []string{"--store", multi("custos_data"), "--keys", multi("custos_keys")}
	srv := startServer(t, cfg)
	t.Cleanup(func() {
		if d := os.Getenv("FAILOVER_DEBUG_LOG"); d != "" {
			os.WriteFile(d, srv.logs.Bytes(), 0o644)
		}
	})
	tn := srv.createTenant(t, "failover")

	counter := &statusCounter{byStatus: map[int]int{}}
	cb := &failoverCallback{acked: map[string][]string{}}
	client, err := segment.NewWithConfig(tn.WriteKey, segment.Config{
		Endpoint:  srv.URL,
		Interval:  20 * time.Millisecond,
		BatchSize: 20,
		Transport: counter,
		Callback:  cb,
		Logger:    &clientLog{},
		// Ten attempts over about 15 s: the fail-over must fit in them.
		RetryAfter: func(i int) time.Duration { return time.Duration(min(i+1, 4)) * 400 * time.Millisecond },
	})
	if err != nil {
		t.Fatal(err)
	}
	label := "fo-" + randomHex(4)
	var sent atomic.Int64
	stop := make(chan struct{})
	var senders sync.WaitGroup
	for s := range 4 {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				// A new user every 15 messages, so that subjects, their keys
				// and identifier links are being created when the primary dies.
				err := client.Enqueue(segment.Track{
					MessageId:  fmt.Sprintf("%s-s%d-m%d", label, s, i),
					UserId:     fmt.Sprintf("%s-s%d-u%d", label, s, i/15),
					Event:      "Tick",
					Properties: segment.NewProperties().Set("i", i),
				})
				if err != nil {
					t.Errorf("enqueue: %v", err)
					return
				}
				sent.Add(1)
			}
		}()
	}

	cb.waitAcked(t, 400, "before the fail-over")
	pid := primary.cmd.Process.Pid
	killedAt := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 the primary's postmaster %d: %v", pid, err)
	}
	<-primary.exited
	ackedAtKill := cb.n.Load()
	if os.Getenv("FAILOVER_DEBUG_LOG") != "" {
		out, _ := exec.Command("sh", "-c", fmt.Sprintf("ss -tanp | grep -E ':%d|:%d' | head -30; ps -ef | grep postgres | grep -v grep | head -40", primary.port, standby.port)).CombinedOutput()
		t.Logf("after kill:\n%s", out)
	}

	// In the gap, with no primary, reads and writes are answered 503 with
	// Retry-After and the node is not ready.
	time.Sleep(300 * time.Millisecond)
	gapUser := "fo-gap-" + randomHex(4)
	for _, c := range []struct {
		method, path string
		body         []byte
		headers      []string
	}{
		{"POST", "/v1/batch", batchBody(t, "", trackMessages(gapUser, "gap-"+randomHex(4), 2)), []string{"Authorization", basicAuth(tn.WriteKey), "Content-Type", "application/json"}},
		{"GET", "/api/v1/profiles?user_id=" + label + "-s0-u0", nil, []string{"Authorization", "Bearer " + tn.SecretKey}},
		{"GET", "/readyz", nil, nil},
	} {
		t0 := time.Now()
		r := srv.do(t, c.method, c.path, c.body, c.headers...)
		t.Logf("gap: %s %s answered %d in %v", c.method, c.path, r.status, time.Since(t0))
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Errorf("%s %s with the primary dead: %d (Retry-After %q) %s; want 503 with Retry-After", c.method, strings.SplitN(c.path, "?", 2)[0], r.status, r.header.Get("Retry-After"), r.body)
		}
	}
	time.Sleep(500 * time.Millisecond)

	promotedAt := time.Now()
	standby.run(t, "pg_ctl", "promote", "-w", "-t", "30", "-D", standby.dir)
	promoteTook := time.Since(promotedAt)
	cb.waitAcked(t, ackedAtKill+400, "after promoting the standby")
	close(stop)
	senders.Wait()
	client.Close() // flushes what is queued, retrying as it does
	if err := srv.do(t, "GET", "/readyz", nil); err.status != http.StatusOK {
		t.Errorf("GET /readyz after the fail-over: %d %s", err.status, err.body)
	}

	counter.mu.Lock()
	statuses := fmt.Sprint(counter.byStatus)
	n503, noRA, transportErr := counter.byStatus[503], counter.noRetryAfter, counter.transportErr
	gap := counter.last503.Sub(killedAt)
	for status, n := range counter.byStatus {
		if status/100 != 2 && status != http.StatusServiceUnavailable {
			t.Errorf("the server answered %d %d times; only 2xx and 503 are allowed (a 4xx makes clients drop the batch)", status, n)
		}
	}
	counter.mu.Unlock()
	t.Logf("fail-over: %d messages sent, %d acknowledged (%d before the kill); answers by status %s; "+
		"503s: %d, the last %v after the kill; pg_ctl promote took %v; gap kept open for %v before promoting",
		sent.Load(), cb.n.Load(), ackedAtKill, statuses, n503, gap.Round(time.Millisecond), promoteTook.Round(time.Millisecond), promotedAt.Sub(killedAt).Round(time.Millisecond))
	if n503 == 0 {
		t.Errorf("the client never saw a 503 although the primary was dead for %v", promotedAt.Sub(killedAt))
	}
	if noRA > 0 {
		t.Errorf("%d of the 503s had no Retry-After header", noRA)
	}
	if transportErr > 0 {
		t.Errorf("%d requests got no HTTP answer at all", transportErr)
	}
	if len(cb.failures) > 0 {
		t.Errorf("the client gave up on %d messages (first: %v): the node did not recover within its retries", len(cb.failures), cb.failures[0])
	}
	if got := cb.n.Load(); got != sent.Load() {
		t.Errorf("%d messages sent, %d acknowledged: every message must end up acknowledged", sent.Load(), got)
	}
	// Every acknowledged message is readable, once, and nothing else was
	// stored for these users.
	checkStored(t, srv, tn.SecretKey, "after the fail-over", cb.acked)
	stored := 0
	for u := range cb.acked {
		p := srv.findProfile(t, tn.SecretKey, "user_id", u)
		stored += len(srv.events(t, tn.SecretKey, p.SubjectID, 0))
	}
	if want := int(cb.n.Load()); stored != want {
		t.Errorf("%d events stored for the load's users, want exactly the %d acknowledged", stored, want)
	}
	if r := srv.lookup(t, tn.SecretKey, "user_id", gapUser); r.status != http.StatusNotFound {
		t.Errorf("the batch answered 503 in the gap left a profile behind: %d %s", r.status, r.body)
	}
}
