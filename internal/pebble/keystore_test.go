package pebble

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

func ksMustOpen(t *testing.T, dir string) *KeyStore {
	t.Helper()
	ks, err := OpenKeyStore(dir)
	if err != nil {
		t.Fatalf("OpenKeyStore(%s): %v", dir, err)
	}
	t.Cleanup(func() { ks.Close() })
	return ks
}

func ksRandom(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func ksMustPut(t *testing.T, ks *KeyStore, tn custos.TenantID, s custos.SubjectID, v []byte) {
	t.Helper()
	wait, err := ks.PutSubjectKey(context.Background(), tn, s, v)
	if err != nil {
		t.Fatalf("PutSubjectKey(%s/%s): %v", tn, s, err)
	}
	if err := wait(); err != nil {
		t.Fatalf("PutSubjectKey(%s/%s) wait: %v", tn, s, err)
	}
}

func TestKeyStoreDirMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	ksMustOpen(t, dir)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("key store dir mode = %o, want 700", got)
	}
}

func TestKeyStoreTenantKeysAndMetaSurviveReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ks := ksMustOpen(t, dir)

	if _, err := ks.Meta(ctx, "master-check"); err != custos.ErrNotFound {
		t.Fatalf("Meta of empty store: err = %v, want ErrNotFound", err)
	}
	keys, err := ks.TenantKeys(ctx)
	if err != nil || len(keys) != 0 {
		t.Fatalf("TenantKeys of empty store = %v, %v; want empty", keys, err)
	}

	t1, t2 := custos.NewTenantID(), custos.NewTenantID()
	want := map[custos.TenantID][]byte{t1: ksRandom(t, 61), t2: ksRandom(t, 61)}
	check := ksRandom(t, 40)
	if err := ks.PutTenantKeys(ctx, want, map[string][]byte{"master-check": check}); err != nil {
		t.Fatal(err)
	}
	if err := ks.Close(); err != nil {
		t.Fatal(err)
	}

	ks = ksMustOpen(t, dir)
	got, err := ks.TenantKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("after reopen: %d tenant keys, want %d", len(got), len(want))
	}
	for id, w := range want {
		if !bytes.Equal(got[id], w) {
			t.Errorf("tenant %s: key = %x, want %x", id, got[id], w)
		}
	}
	if m, err := ks.Meta(ctx, "master-check"); err != nil || !bytes.Equal(m, check) {
		t.Errorf("Meta(master-check) = %x, %v; want %x", m, err, check)
	}

	// A rotation replaces every key and the meta in one call.
	rewrapped := map[custos.TenantID][]byte{t1: ksRandom(t, 61), t2: ksRandom(t, 61)}
	check2 := ksRandom(t, 40)
	if err := ks.PutTenantKeys(ctx, rewrapped, map[string][]byte{"master-check": check2}); err != nil {
		t.Fatal(err)
	}
	got, _ = ks.TenantKeys(ctx)
	for id, w := range rewrapped {
		if !bytes.Equal(got[id], w) {
			t.Errorf("after replace, tenant %s: key = %x, want %x", id, got[id], w)
		}
	}
}

func TestKeyStoreSubjectKeyLifecycle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ks := ksMustOpen(t, dir)
	tn := custos.NewTenantID()
	live, shredded, never := custos.NewSubjectID(), custos.NewSubjectID(), custos.NewSubjectID()
	liveKey, shredKey := ksRandom(t, 61), ksRandom(t, 61)

	ksMustPut(t, ks, tn, live, liveKey)
	ksMustPut(t, ks, tn, shredded, shredKey)
	if err := ks.ShredSubjectKey(ctx, tn, shredded); err != nil {
		t.Fatal(err)
	}
	// Shredding a key that never existed still leaves the marker: a later
	// put must not create one.
	neverShredded := custos.NewSubjectID()
	if err := ks.ShredSubjectKey(ctx, tn, neverShredded); err != nil {
		t.Fatal(err)
	}

	check := func(when string) {
		t.Helper()
		tests := []struct {
			name    string
			s       custos.SubjectID
			want    []byte
			wantErr error
		}{
			{"live", live, liveKey, nil},
			{"shredded", shredded, nil, custos.ErrShredded},
			{"shredded before any key", neverShredded, nil, custos.ErrShredded},
			{"never", never, nil, custos.ErrNotFound},
		}
		for _, tt := range tests {
			got, err := ks.SubjectKey(ctx, tn, tt.s)
			if err != tt.wantErr || !bytes.Equal(got, tt.want) {
				t.Errorf("%s: SubjectKey(%s) = %x, %v; want %x, %v", when, tt.name, got, err, tt.want, tt.wantErr)
			}
		}
		for _, s := range []custos.SubjectID{shredded, neverShredded} {
			if _, err := ks.PutSubjectKey(ctx, tn, s, ksRandom(t, 61)); err != custos.ErrShredded {
				t.Errorf("%s: PutSubjectKey over shredded %s: err = %v, want ErrShredded", when, s, err)
			}
		}
	}
	check("before reopen")
	if err := ks.Close(); err != nil {
		t.Fatal(err)
	}
	ks = ksMustOpen(t, dir)
	check("after reopen")
}

func TestKeyStorePutSubjectKeyRejectsMarkerSizedValues(t *testing.T) {
	ks := ksMustOpen(t, t.TempDir())
	for _, v := range [][]byte{nil, {}, {ksShredded}, {0x42}} {
		if _, err := ks.PutSubjectKey(context.Background(), custos.NewTenantID(), custos.NewSubjectID(), v); err == nil {
			t.Errorf("PutSubjectKey(%x) succeeded, want an error", v)
		}
	}
}

func TestKeyStoreWaitIsReusableAndSurvivesClose(t *testing.T) {
	ks := ksMustOpen(t, t.TempDir())
	wait, err := ks.PutSubjectKey(context.Background(), custos.NewTenantID(), custos.NewSubjectID(), ksRandom(t, 61))
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { done <- wait(); done <- wait() }()
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("wait after Close: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("wait after Close blocked")
		}
	}
}

func TestKeyStoreDeleteTenantKey(t *testing.T) {
	ctx := context.Background()
	ks := ksMustOpen(t, t.TempDir())
	gone, kept := custos.NewTenantID(), custos.NewTenantID()
	if err := ks.PutTenantKeys(ctx, map[custos.TenantID][]byte{gone: ksRandom(t, 61), kept: ksRandom(t, 61)}, nil); err != nil {
		t.Fatal(err)
	}
	s := custos.NewSubjectID()
	ksMustPut(t, ks, gone, s, ksRandom(t, 61))
	keptKey := ksRandom(t, 61)
	ksMustPut(t, ks, kept, s, keptKey)

	if err := ks.DeleteTenantKey(ctx, gone); err != nil {
		t.Fatal(err)
	}
	keys, err := ks.TenantKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := keys[gone]; ok {
		t.Errorf("deleted tenant %s still has a key", gone)
	}
	if _, ok := keys[kept]; !ok {
		t.Errorf("tenant %s lost its key when another was deleted", kept)
	}
	if _, err := ks.SubjectKey(ctx, gone, s); err != custos.ErrNotFound {
		t.Errorf("subject key of deleted tenant: err = %v, want ErrNotFound", err)
	}
	if got, err := ks.SubjectKey(ctx, kept, s); err != nil || !bytes.Equal(got, keptKey) {
		t.Errorf("subject key of kept tenant = %x, %v; want %x", got, err, keptKey)
	}
}

// TestKeyStorePurge checks that after a shred and a purge the old wrapped
// key is gone from the live table files, not only hidden. Write-ahead logs
// are left out: Pebble may keep an obsolete log for reuse, and the old
// bytes stay in it until overwritten (see Purge).
func TestKeyStorePurge(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ks, err := ksOpen(dir, time.Hour) // no background purge: the test drives it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	tn := custos.NewTenantID()
	victim, other := custos.NewSubjectID(), custos.NewSubjectID()
	victimKey, otherKey := ksRandom(t, 61), ksRandom(t, 61)
	ksMustPut(t, ks, tn, victim, victimKey)
	ksMustPut(t, ks, tn, other, otherKey)
	// Push both keys into table files, as a long-running store would have.
	if err := ks.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(dirHolds(t, dir, victimKey)) == 0 {
		t.Fatal("victim key not found in table files before shredding; the test proves nothing")
	}

	if err := ks.ShredSubjectKey(ctx, tn, victim); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.ksGet(ksPurgeRecord(ksSubjectKey(tn, victim))); err != nil {
		t.Fatalf("no durable purge record after shred: %v", err)
	}
	if err := ks.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if len(dirHolds(t, dir, victimKey)) > 0 {
		t.Error("shredded key still in a file of the key store after Purge")
	}
	if len(dirHolds(t, dir, otherKey)) == 0 {
		t.Error("other subject's key missing from table files after Purge")
	}
	if _, err := ks.ksGet(ksPurgeRecord(ksSubjectKey(tn, victim))); err != custos.ErrNotFound {
		t.Errorf("purge record left after Purge: err = %v, want ErrNotFound", err)
	}
	if _, err := ks.SubjectKey(ctx, tn, victim); err != custos.ErrShredded {
		t.Errorf("after Purge: err = %v, want ErrShredded", err)
	}
}

func TestKeyStoreClosed(t *testing.T) {
	ctx := context.Background()
	ks := ksMustOpen(t, t.TempDir())
	if err := ks.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ks.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	tn, s := custos.NewTenantID(), custos.NewSubjectID()
	ops := map[string]func() error{
		"Meta":            func() error { _, err := ks.Meta(ctx, "x"); return err },
		"TenantKeys":      func() error { _, err := ks.TenantKeys(ctx); return err },
		"PutTenantKeys":   func() error { return ks.PutTenantKeys(ctx, map[custos.TenantID][]byte{tn: {1, 2}}, nil) },
		"DeleteTenantKey": func() error { return ks.DeleteTenantKey(ctx, tn) },
		"SubjectKey":      func() error { _, err := ks.SubjectKey(ctx, tn, s); return err },
		"PutSubjectKey":   func() error { _, err := ks.PutSubjectKey(ctx, tn, s, []byte{1, 2}); return err },
		"ShredSubjectKey": func() error { return ks.ShredSubjectKey(ctx, tn, s) },
	}
	for name, op := range ops {
		if err := op(); custos.ErrorCode(err) != custos.Unavailable {
			t.Errorf("%s after Close: err = %v, want code %s", name, err, custos.Unavailable)
		}
	}
}

// TestKeyStoreShredWinsRaces races puts against a shred of the same subject:
// once ShredSubjectKey has returned, the subject reads as shredded whatever
// order the puts landed in.
func TestKeyStoreShredWinsRaces(t *testing.T) {
	ctx := context.Background()
	ks := ksMustOpen(t, t.TempDir())
	tn := custos.NewTenantID()
	for i := range 50 {
		s := custos.NewSubjectID()
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				wait, err := ks.PutSubjectKey(ctx, tn, s, []byte("wrapped-subject-key"))
				if err == nil {
					err = wait()
				}
				if err != nil && err != custos.ErrShredded {
					t.Errorf("round %d: PutSubjectKey: %v", i, err)
				}
			})
		}
		if err := ks.ShredSubjectKey(ctx, tn, s); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.SubjectKey(ctx, tn, s); err != custos.ErrShredded {
			t.Fatalf("round %d: right after shred: err = %v, want ErrShredded", i, err)
		}
		wg.Wait()
		if _, err := ks.SubjectKey(ctx, tn, s); err != custos.ErrShredded {
			t.Fatalf("round %d: after racing puts: err = %v, want ErrShredded", i, err)
		}
	}
}

func TestKeyStorePrefixEnd(t *testing.T) {
	tests := []struct{ in, want []byte }{
		{[]byte("t/"), []byte("t0")},
		{[]byte{'s', '/', 0x01, 0xff}, []byte{'s', '/', 0x02}},
		{[]byte{0xff, 0xff}, nil},
	}
	for _, tt := range tests {
		if got := ksPrefixEnd(tt.in); !bytes.Equal(got, tt.want) {
			t.Errorf("ksPrefixEnd(%x) = %x, want %x", tt.in, got, tt.want)
		}
	}
}

// TestKeyStoreSubjectKeys checks the ordered range read: bounds included,
// shredded keys and other tenants' keys left out, and an early stop.
func TestKeyStoreSubjectKeys(t *testing.T) {
	ctx := context.Background()
	ks := ksMustOpen(t, t.TempDir())
	tn, other := custos.NewTenantID(), custos.NewTenantID()
	var subs []custos.SubjectID
	vals := map[custos.SubjectID][]byte{}
	for i := range 6 {
		s := custos.SubjectID{byte(i * 10)}
		s[15] = 1
		subs = append(subs, s)
		vals[s] = ksRandom(t, 61)
		ksMustPut(t, ks, tn, s, vals[s])
		ksMustPut(t, ks, other, s, ksRandom(t, 61))
	}
	if err := ks.ShredSubjectKey(ctx, tn, subs[2]); err != nil {
		t.Fatal(err)
	}
	walk := func(from, to custos.SubjectID, limit int) []custos.SubjectID {
		t.Helper()
		var got []custos.SubjectID
		err := ks.SubjectKeys(ctx, tn, from, to, func(s custos.SubjectID, v []byte) (bool, error) {
			if !bytes.Equal(v, vals[s]) {
				t.Errorf("SubjectKeys: value of %s differs from the one put", s)
			}
			got = append(got, s)
			return len(got) < limit, nil
		})
		if err != nil {
			t.Fatalf("SubjectKeys = %v", err)
		}
		return got
	}
	want := []custos.SubjectID{subs[1], subs[3], subs[4]}
	if got := walk(subs[1], subs[4], 100); !slices.Equal(got, want) {
		t.Errorf("SubjectKeys(%s..%s) = %v, want %v (bounds included, the shredded one left out)", subs[1], subs[4], got, want)
	}
	if got := walk(subs[0], subs[5], 2); !slices.Equal(got, subs[:2]) {
		t.Errorf("SubjectKeys stopped after 2 = %v, want %v", got, subs[:2])
	}
}
