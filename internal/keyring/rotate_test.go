package keyring

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pebble"
)

// rotationFixture is a key store holding two tenants with sealed data,
// closed, ready for RotateMaster.
type rotationFixture struct {
	dir     string
	old     []byte
	tenants []custos.TenantID
	subject custos.SubjectID
	sealed  map[custos.TenantID][]byte
}

func newRotationFixture(t *testing.T) *rotationFixture {
	t.Helper()
	f := &rotationFixture{dir: t.TempDir(), old: testMaster(t), subject: custos.NewSubjectID(), sealed: map[custos.TenantID][]byte{}}
	r, ks := openRing(t, f.dir, f.old, Options{})
	for range 2 {
		tn := mustTenant(t, r)
		f.tenants = append(f.tenants, tn)
		f.sealed[tn] = mustSeal(t, r, tn, f.subject, []byte("profile"), []byte("data of "+tn.String()))
	}
	if err := ks.Close(); err != nil {
		t.Fatal(err)
	}
	return f
}

// assertOpensWith checks that master opens the store and every record,
// and that refused is refused.
func (f *rotationFixture) assertOpensWith(t *testing.T, master, refused []byte) {
	t.Helper()
	ctx := context.Background()
	ks := openStore(t, f.dir)
	defer ks.Close()
	if _, err := New(ctx, ks, refused, Options{}); err != ErrWrongMasterKey {
		t.Errorf("New with the key that should be refused: err = %v, want ErrWrongMasterKey", err)
	}
	r, err := New(ctx, ks, master, Options{})
	if err != nil {
		t.Fatalf("New with the key that should open the store: %v", err)
	}
	for _, tn := range f.tenants {
		got, err := r.Open(ctx, tn, f.subject, []byte("profile"), f.sealed[tn])
		if want := "data of " + tn.String(); err != nil || string(got) != want {
			t.Errorf("Open tenant %s = %q, %v; want %q", tn, got, err, want)
		}
	}
}

func TestRotateMaster(t *testing.T) {
	ctx := context.Background()
	f := newRotationFixture(t)
	newKey := testMaster(t)

	ks := openStore(t, f.dir)
	wrappedBefore, err := ks.TenantKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := RotateMaster(ctx, ks, f.old, newKey); err != nil {
		t.Fatalf("RotateMaster: %v", err)
	}
	wrappedAfter, _ := ks.TenantKeys(ctx)
	for tn, w := range wrappedBefore {
		if string(wrappedAfter[tn]) == string(w) {
			t.Errorf("tenant %s key was not re-wrapped", tn)
		}
	}
	// Idempotent: running it again (as after a crash right after the
	// commit) changes nothing.
	if err := RotateMaster(ctx, ks, f.old, newKey); err != nil {
		t.Errorf("second RotateMaster: %v", err)
	}
	again, _ := ks.TenantKeys(ctx)
	for tn, w := range wrappedAfter {
		if string(again[tn]) != string(w) {
			t.Errorf("second RotateMaster rewrote tenant %s", tn)
		}
	}
	// A third key is neither the old nor the new one.
	if err := RotateMaster(ctx, ks, testMaster(t), testMaster(t)); err != ErrWrongMasterKey {
		t.Errorf("RotateMaster from a wrong key: err = %v, want ErrWrongMasterKey", err)
	}
	ks.Close()

	f.assertOpensWith(t, newKey, f.old)
}

// countingStore counts the writes made through a real key store.
type countingStore struct {
	custos.KeyStore
	puts, other int
}

func (c *countingStore) PutTenantKeys(ctx context.Context, k map[custos.TenantID][]byte, m map[string][]byte) error {
	c.puts++
	return c.KeyStore.PutTenantKeys(ctx, k, m)
}

func (c *countingStore) DeleteTenantKey(ctx context.Context, t custos.TenantID) error {
	c.other++
	return c.KeyStore.DeleteTenantKey(ctx, t)
}

func (c *countingStore) PutSubjectKey(ctx context.Context, t custos.TenantID, s custos.SubjectID, w []byte) (func() error, error) {
	c.other++
	return c.KeyStore.PutSubjectKey(ctx, t, s, w)
}

func (c *countingStore) ShredSubjectKey(ctx context.Context, t custos.TenantID, s custos.SubjectID) error {
	c.other++
	return c.KeyStore.ShredSubjectKey(ctx, t, s)
}

// TestRotateMasterCrash proves what can be proven in-process about a crash
// during rotation:
//
//   - RotateMaster changes the store through exactly one call,
//     PutTenantKeys, with every tenant key and the check in it; so a crash
//     at any point before that call leaves the store as it was (old key
//     valid, new refused), and a crash after it leaves the rotation done.
//   - That one call is all-or-nothing across a crash because the key
//     store says so (the Pebble store writes it as one synced batch); this
//     test relies on that, it does not kill a process mid-write.
func TestRotateMasterCrash(t *testing.T) {
	ctx := context.Background()
	f := newRotationFixture(t)
	newKey := testMaster(t)

	t.Run("exactly one write", func(t *testing.T) {
		g := newRotationFixture(t)
		cs := &countingStore{KeyStore: openStore(t, g.dir)}
		if err := RotateMaster(ctx, cs, g.old, testMaster(t)); err != nil {
			t.Fatal(err)
		}
		if cs.puts != 1 || cs.other != 0 {
			t.Errorf("rotation wrote %d PutTenantKeys and %d other changes, want 1 and 0", cs.puts, cs.other)
		}
	})

	t.Run("dies before the write", func(t *testing.T) {
		ks := openStore(t, f.dir)
		crash := errors.New("simulated crash")
		if err := rotateMaster(ctx, ks, f.old, newKey, func() error { return crash }); err != crash {
			t.Fatalf("rotation = %v, want the simulated crash", err)
		}
		ks.Close() // reopen, as a restarted process would
		f.assertOpensWith(t, f.old, newKey)
	})

	t.Run("runs again to the end", func(t *testing.T) {
		ks := openStore(t, f.dir)
		if err := RotateMaster(ctx, ks, f.old, newKey); err != nil {
			t.Fatal(err)
		}
		ks.Close()
		f.assertOpensWith(t, newKey, f.old)
	})
}

func TestRotateMasterBadKeys(t *testing.T) {
	ctx := context.Background()
	ks := openStore(t, t.TempDir())
	if err := RotateMaster(ctx, ks, make([]byte, 16), testMaster(t)); err == nil {
		t.Error("RotateMaster with a short old key succeeded")
	}
	if err := RotateMaster(ctx, ks, testMaster(t), make([]byte, 33)); err == nil {
		t.Error("RotateMaster with a long new key succeeded")
	}
	if err := RotateMaster(ctx, ks, testMaster(t), testMaster(t)); err == nil {
		t.Error("RotateMaster of a store never opened succeeded")
	}
}

// TestRotateMasterKilled kills (SIGKILL) a process in the middle of
// rotations at varied moments, then checks that the store answers to
// exactly one of the two keys and opens every record with it. It exercises
// a process crash, not a power loss: writes the process made reach the
// operating system either way.
func TestRotateMasterKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	if os.Getenv("KEYRING_ROTATE_CHILD") != "" {
		return // the child's work is in TestMain
	}
	var outcomes []string
	for i := range 20 {
		f := newRotationFixture(t)
		newKey := testMaster(t)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(),
			"KEYRING_ROTATE_CHILD="+f.dir,
			"KEYRING_ROTATE_OLD="+base64.StdEncoding.EncodeToString(f.old),
			"KEYRING_ROTATE_NEW="+base64.StdEncoding.EncodeToString(newKey))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the child has the store open, then kill it at varied
		// moments of the rotation (which takes well under a millisecond).
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if line != "open\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("run %d: child said %q, %v", i, line, err)
		}
		time.Sleep(time.Duration(i) * 30 * time.Microsecond)
		cmd.Process.Kill()
		cmd.Wait()

		ks := openStore(t, f.dir)
		oldOK := newRingErr(ks, f.old) == nil
		newOK := newRingErr(ks, newKey) == nil
		ks.Close()
		switch {
		case oldOK && newOK, !oldOK && !newOK:
			t.Fatalf("run %d: old key opens: %v, new key opens: %v; want exactly one", i, oldOK, newOK)
		case oldOK:
			outcomes = append(outcomes, "old")
			f.assertOpensWith(t, f.old, newKey)
		default:
			outcomes = append(outcomes, "new")
			f.assertOpensWith(t, newKey, f.old)
		}
	}
	t.Logf("key valid after each kill, 30µs apart: %v", outcomes)
}

func newRingErr(ks custos.KeyStore, master []byte) error {
	_, err := New(context.Background(), ks, master, Options{})
	return err
}

// rotateChild runs in the child process of TestRotateMasterKilled.
func rotateChild(dir string) {
	old, _ := base64.StdEncoding.DecodeString(os.Getenv("KEYRING_ROTATE_OLD"))
	newKey, _ := base64.StdEncoding.DecodeString(os.Getenv("KEYRING_ROTATE_NEW"))
	ks, err := pebble.OpenKeyStore(dir)
	if err != nil {
		fmt.Println("child:", err)
		os.Exit(2)
	}
	fmt.Println("open")
	if err := RotateMaster(context.Background(), ks, old, newKey); err != nil {
		fmt.Println("child:", err)
		os.Exit(2)
	}
	fmt.Println("child: rotated")
	time.Sleep(time.Minute) // die by the kill, not by a clean exit
}

func TestMain(m *testing.M) {
	if dir := os.Getenv("KEYRING_ROTATE_CHILD"); dir != "" {
		rotateChild(dir)
	}
	os.Exit(m.Run())
}
