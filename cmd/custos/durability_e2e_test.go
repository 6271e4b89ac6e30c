package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	segment "github.com/segmentio/analytics-go/v3"
)

// TestRestartKeepsEverything stops the server cleanly and starts a new
// run() on the same data directory and master key: the tenant, its keys,
// the profile and every event are still there, and a retried batch is
// still recognised as a duplicate.
func TestRestartKeepsEverything(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	srv := startServer(t, cfg)
	tn := srv.createTenant(t, "restart")
	p := newPerson("restart")
	flow := clientFlow("restart", p)
	sendWithSegment(t, srv, tn.WriteKey, flow)
	other := "restart-other-" + randomHex(6)
	retried := batchBody(t, "", trackMessages(other, "restart-retry-"+randomHex(4), 3))
	if res := srv.ingest(t, tn.WriteKey, "/v1/batch", retried); res.Accepted != 3 {
		t.Fatalf("first post of the batch: %+v, want 3 accepted", res)
	}
	before := srv.findProfile(t, tn.SecretKey, "user_id", p.userID)
	beforeEvents := srv.events(t, tn.SecretKey, before.SubjectID, 0)
	// A second tenant whose keys are rotated before the stop.
	rot := srv.createTenant(t, "restart-rotated")
	rotUser := "restart-rot-" + randomHex(6)
	if res := srv.ingest(t, rot.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(rotUser, "rot-"+randomHex(4), 1))); res.Accepted != 1 {
		t.Fatalf("ingest for the rotated tenant: %+v", res)
	}
	rr := srv.do(t, "POST", "/admin/v1/tenants/"+rot.ID+"/keys/rotate", nil, "Authorization", "Bearer "+cfg.token)
	var newKeys tenantInfo
	if err := json.Unmarshal(rr.body, &newKeys); err != nil || rr.status != http.StatusOK || newKeys.WriteKey == "" || newKeys.WriteKey == rot.WriteKey {
		t.Fatalf("rotate keys: status %d, body %s", rr.status, rr.body)
	}
	srv.stop(t)
	if t.Failed() {
		t.FailNow()
	}

	// A start with another master key is refused, and harms nothing.
	wrong := cfg
	wrong.masterKey = newServerConfig(t).masterKey
	wrongLog := newLogBuffer()
	if err := run(t.Context(), wrong.args("127.0.0.1:0"), wrong.getenv(), strings.NewReader(""), newLogBuffer(), wrongLog); err == nil || !strings.Contains(err.Error(), "master key") {
		t.Errorf("run with another master key returned %v, want an error naming the master key", err)
	}
	if _, ok := listenAddr(wrongLog.Bytes()); ok {
		t.Errorf("server with the wrong master key listened:\n%s", wrongLog.Bytes())
	}

	srv2 := startServer(t, cfg)
	r := srv2.do(t, "GET", "/admin/v1/tenants/"+tn.ID, nil, "Authorization", "Bearer "+cfg.token)
	if r.status != http.StatusOK {
		t.Fatalf("tenant %s after restart: status %d, body %s", tn.ID, r.status, r.body)
	}
	var got tenantInfo
	if err := json.Unmarshal(r.body, &got); err != nil || got.ID != tn.ID || got.Name != tn.Name || !got.CreatedAt.Equal(tn.CreatedAt) {
		t.Errorf("tenant after restart = %s, want id %s name %q created %v", r.body, tn.ID, tn.Name, tn.CreatedAt)
	}
	if got.WriteKey != "" || got.SecretKey != "" {
		t.Errorf("GET tenant shows keys after restart: %s", r.body)
	}

	after := srv2.findProfile(t, tn.SecretKey, "user_id", p.userID)
	if after.SubjectID != before.SubjectID {
		t.Errorf("subject after restart = %s, want %s", after.SubjectID, before.SubjectID)
	}
	checkFlow(t, srv2, tn.SecretKey, p, flow, "analytics-go", segment.Version)
	afterEvents := srv2.events(t, tn.SecretKey, after.SubjectID, 0)
	if b, a := mustJSON(t, beforeEvents), mustJSON(t, afterEvents); string(a) != string(b) {
		t.Errorf("events changed across the restart:\nbefore %s\nafter  %s", b, a)
	}
	if b, a := mustJSON(t, before), mustJSON(t, after); string(a) != string(b) {
		t.Errorf("profile changed across the restart:\nbefore %s\nafter  %s", b, a)
	}

	// Rotated keys stay rotated.
	if r := srv2.do(t, "POST", "/v1/batch", batchBody(t, "", trackMessages(rotUser, "rot-old-"+randomHex(4), 1)), "Authorization", basicAuth(rot.WriteKey)); r.status != http.StatusUnauthorized {
		t.Errorf("pre-rotation write key after restart: status %d, want 401", r.status)
	}
	if r := srv2.lookup(t, rot.SecretKey, "user_id", rotUser); r.status != http.StatusUnauthorized {
		t.Errorf("pre-rotation secret key after restart: status %d, want 401", r.status)
	}
	if res := srv2.ingest(t, newKeys.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(rotUser, "rot-new-"+randomHex(4), 1))); res.Accepted != 1 {
		t.Errorf("rotated write key after restart: %+v", res)
	}
	if rp := srv2.findProfile(t, newKeys.SecretKey, "user_id", rotUser); len(srv2.events(t, newKeys.SecretKey, rp.SubjectID, 0)) != 2 {
		t.Errorf("rotated tenant's subject after restart: want 2 events")
	}

	// The write key still ingests, and the duplicate filter was rebuilt.
	if res := srv2.ingest(t, tn.WriteKey, "/v1/batch", retried); res.Accepted != 0 || res.Duplicates != 3 {
		t.Errorf("batch retried after restart: accepted %d duplicates %d, want 0 and 3", res.Accepted, res.Duplicates)
	}
	fresh := batchBody(t, "", trackMessages(other, "restart-new-"+randomHex(4), 2))
	if res := srv2.ingest(t, tn.WriteKey, "/v1/batch", fresh); res.Accepted != 2 {
		t.Errorf("new batch after restart: %+v, want 2 accepted", res)
	}
	op := srv2.findProfile(t, tn.SecretKey, "user_id", other)
	if n := len(srv2.events(t, tn.SecretKey, op.SubjectID, 0)); n != 5 {
		t.Errorf("after restart, a retried batch of 3 and a new one of 2: %d events, want 5", n)
	}
}

// trackMessages returns n track messages of one user with message ids prefix-0, prefix-1, ...
func trackMessages(userID, prefix string, n int) []map[string]any {
	msgs := make([]map[string]any, n)
	for i := range msgs {
		msgs[i] = map[string]any{
			"type": "track", "messageId": fmt.Sprintf("%s-%d", prefix, i), "userId": userID,
			"event": "Step", "properties": map[string]any{"i": i},
			"timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		}
	}
	return msgs
}

// batchBody is a /v1/batch body; writeKey, if set, goes in the body.
func batchBody(t *testing.T, writeKey string, msgs []map[string]any) []byte {
	t.Helper()
	b, err := encodeBatch(writeKey, msgs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// encodeBatch is batchBody for code without a test (a child process).
func encodeBatch(writeKey string, msgs []map[string]any) ([]byte, error) {
	b := map[string]any{"batch": msgs, "sentAt": time.Now().UTC().Format(time.RFC3339Nano)}
	if writeKey != "" {
		b["writeKey"] = writeKey
	}
	return json.Marshal(b)
}

// childServer is `custos serve` in a child process (the test binary
// re-executed), so that it can be killed with SIGKILL.
type childServer struct {
	cmd  *exec.Cmd
	logs *logBuffer
	URL  string
	exit chan error
}

func startChild(t *testing.T, cfg serverConfig) *childServer {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args, _ := json.Marshal(cfg.args("127.0.0.1:0"))
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childEnv+"=1",
		childArgsEnv+"="+string(args),
		"CUSTOS_OPERATOR_TOKEN="+cfg.token,
		"CUSTOS_MASTER_KEY="+cfg.masterKey,
		"CUSTOS_OUTBOUND_ALLOW="+cfg.outboundAllow,
	)
	c := &childServer{cmd: cmd, logs: newLogBuffer(), exit: make(chan error, 1)}
	cmd.Stdout = c.logs
	cmd.Stderr = c.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child server: %v", err)
	}
	go func() { c.exit <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-c.exit
		}
	})
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	for {
		out, changed := c.logs.snapshot()
		if addr, ok := listenAddr(out); ok {
			c.URL = "http://" + addr
			return c
		}
		select {
		case <-changed:
		case err := <-c.exit:
			c.exit <- err
			t.Fatalf("child server exited before listening: %v\noutput:\n%s", err, c.logs.Bytes())
		case <-deadline.C:
			t.Fatalf("child server not listening within %v; output:\n%s", startTimeout, out)
		}
	}
}

// feedBatch is one batch a feeder sent.
type feedBatch struct {
	user string
	ids  []string
	body []byte
}

// feeder posts batches of track messages from several goroutines until
// stopping is closed, recording which messages were acknowledged (2xx) and
// which batches were cut off (no answer, or a 5xx) once stopping is closed.
// Before that, any failure fails the test; a 4xx always does.
type feeder struct {
	mu       sync.Mutex
	acked    map[string][]string // user id → acknowledged message ids
	cut      []feedBatch
	total    atomic.Int64
	reached  chan struct{} // closed once total passes the threshold
	stopping chan struct{}
	wg       sync.WaitGroup
}

const feedBatchSize = 25

func startFeeding(t *testing.T, url, writeKey, label string, senders int, threshold int64) *feeder {
	f := &feeder{acked: map[string][]string{}, reached: make(chan struct{}), stopping: make(chan struct{})}
	var once sync.Once
	client := &http.Client{Timeout: 30 * time.Second}
	for s := range senders {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for b := 0; ; b++ {
				select {
				case <-f.stopping:
					return
				default:
				}
				// A new user every other batch, so that subjects (and their
				// keys) are being created when the process goes away.
				bt := feedBatch{user: fmt.Sprintf("%s-s%d-u%d", label, s, b/2)}
				var msgs []map[string]any
				for i := range feedBatchSize {
					id := fmt.Sprintf("%s-s%d-b%d-m%d", label, s, b, i)
					bt.ids = append(bt.ids, id)
					msgs = append(msgs, map[string]any{"type": "track", "messageId": id, "userId": bt.user, "event": "Tick", "properties": map[string]any{"b": b, "i": i}})
				}
				bt.body, _ = json.Marshal(map[string]any{"batch": msgs})
				req, _ := http.NewRequest("POST", url+"/v1/batch", bytes.NewReader(bt.body))
				req.Header.Set("Authorization", basicAuth(writeKey))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				var res ingestResult
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch {
					case resp.StatusCode/100 == 4:
						t.Errorf("sender %d: %d %s: a 4xx makes clients drop the batch", s, resp.StatusCode, body)
						return
					case resp.StatusCode/100 != 2:
						err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
					default:
						err = json.Unmarshal(body, &res)
					}
				}
				if err != nil {
					select {
					case <-f.stopping:
						f.mu.Lock()
						f.cut = append(f.cut, bt)
						f.mu.Unlock()
					default:
						t.Errorf("sender %d: %v before the server was stopped", s, err)
					}
					return
				}
				if res.Accepted != feedBatchSize {
					t.Errorf("sender %d: 2xx answer %+v, want %d accepted", s, res, feedBatchSize)
				}
				f.mu.Lock()
				f.acked[bt.user] = append(f.acked[bt.user], bt.ids...)
				f.mu.Unlock()
				if f.total.Add(int64(len(bt.ids))) >= threshold {
					once.Do(func() { close(f.reached) })
				}
			}
		}()
	}
	return f
}

// waitReached waits for the threshold, failing if exited reports first.
func (f *feeder) waitReached(t *testing.T, exited chan error, onFail func()) {
	t.Helper()
	select {
	case <-f.reached:
		return
	case err := <-exited:
		exited <- err // for whoever waits for the exit next
		t.Errorf("server exited before the threshold: %v", err)
	case <-time.After(60 * time.Second):
		t.Errorf("only %d messages acknowledged within 60s", f.total.Load())
	}
	close(f.stopping)
	onFail()
	f.wg.Wait()
	t.FailNow()
}

// checkStored checks that every message in want is among its user's
// events, once, on srv.
func checkStored(t *testing.T, srv *testServer, secretKey, stage string, want map[string][]string) {
	t.Helper()
	users := make([]string, 0, len(want))
	for u := range want {
		users = append(users, u)
	}
	sort.Strings(users)
	missing, n := 0, 0
	for _, u := range users {
		prof := srv.findProfile(t, secretKey, "user_id", u)
		got := map[string]bool{}
		for _, e := range srv.events(t, secretKey, prof.SubjectID, 37) {
			if got[e.MessageID] {
				t.Errorf("%s: user %s: message %s listed twice", stage, u, e.MessageID)
			}
			got[e.MessageID] = true
			if e.UserID != u {
				t.Errorf("%s: user %s: event %s has user_id %q", stage, u, e.MessageID, e.UserID)
			}
		}
		for _, id := range want[u] {
			n++
			if !got[id] {
				missing++
				if missing <= 10 {
					t.Errorf("%s: user %s: message %s missing", stage, u, id)
				}
			}
		}
	}
	if missing > 0 {
		t.Errorf("%s: %d of %d messages missing", stage, missing, n)
	}
}

// retryCut posts the cut-off batches again, as clients do: each message
// must be stored or reported a duplicate of one that is. It adds them to acked.
func (f *feeder) retryCut(t *testing.T, srv *testServer, writeKey string) {
	t.Helper()
	for _, bt := range f.cut {
		res := srv.ingest(t, writeKey, "/v1/batch", bt.body)
		if res.Accepted+res.Duplicates != feedBatchSize {
			t.Errorf("retry of a cut-off batch: %+v, want %d accepted or duplicates", res, feedBatchSize)
		}
		f.acked[bt.user] = append(f.acked[bt.user], bt.ids...)
	}
}

// TestCrashLosesNoAcknowledgedMessage runs the server as a child process,
// feeds it batches from several goroutines, SIGKILLs it mid-stream and
// restarts it on the same data directory: every message whose request was
// answered 2xx must be there (invariant 2). The batches the kill cut off
// are then retried, as clients do, and must end up stored exactly once.
func TestCrashLosesNoAcknowledgedMessage(t *testing.T) {
	cfg := newServerConfig(t)
	child := startChild(t, cfg)
	// Tenant creation goes through the child too.
	admin := &testServer{cfg: cfg, URL: child.URL, http: &http.Client{Timeout: 10 * time.Second}}
	tn := admin.createTenant(t, "crash")

	label := "crash-" + randomHex(4)
	f := startFeeding(t, child.URL, tn.WriteKey, label, 4, 500)
	f.waitReached(t, child.exit, func() { child.cmd.Process.Kill() })
	// Mark the kill first so that senders take the errors it causes as expected.
	close(f.stopping)
	if err := child.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	err := <-child.exit
	f.wg.Wait()
	if ws, ok := child.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("killed the server after %d acknowledged messages; %d batches cut off", f.total.Load(), len(f.cut))

	srv := startServer(t, cfg)
	checkStored(t, srv, tn.SecretKey, "after the crash, acknowledged messages", f.acked)
	f.retryCut(t, srv, tn.WriteKey)
	checkStored(t, srv, tn.SecretKey, "after retrying the cut-off batches", f.acked)
	assertNoneOf(t, "killed server's output", child.logs.Bytes(), []string{label, tn.WriteKey, tn.SecretKey})
}

// TestGracefulStopUnderLoad cancels run's context while batches stream in:
// run returns nil, no request is answered 4xx, and after a restart every
// acknowledged message is there.
func TestGracefulStopUnderLoad(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	srv := startServer(t, cfg)
	tn := srv.createTenant(t, "graceful")
	label := "graceful-" + randomHex(4)
	f := startFeeding(t, srv.URL, tn.WriteKey, label, 3, 300)
	f.waitReached(t, srv.done, func() {})
	close(f.stopping)
	srv.stop(t) // asserts run returns nil
	f.wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("stopped the server after %d acknowledged messages; %d batches cut off", f.total.Load(), len(f.cut))

	srv2 := startServer(t, cfg)
	checkStored(t, srv2, tn.SecretKey, "after a graceful stop, acknowledged messages", f.acked)
	f.retryCut(t, srv2, tn.WriteKey)
	checkStored(t, srv2, tn.SecretKey, "after retrying the cut-off batches", f.acked)
}
