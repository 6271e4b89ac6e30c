package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/keyring"
	"github.com/custos-dev/custos/internal/pgtest"
	"github.com/custos-dev/custos/internal/postgres"
	"github.com/custos-dev/custos/internal/testenv"
)

// openKeyStore opens a key store on the database at url and closes it
// when the test ends.
func openKeyStore(tb testing.TB, url string) *postgres.KeyStore {
	tb.Helper()
	ks, err := postgres.OpenKeyStore(context.Background(), url, postgres.Options{MasterKey: testMaster})
	if err != nil {
		tb.Fatalf("OpenKeyStore(%s) = %v, want nil", url, err)
	}
	tb.Cleanup(func() { ks.Close() })
	return ks
}

// testMaster is the master key the key stores of these tests are opened
// with (it seals their epoch keys).
var testMaster = bytes.Repeat([]byte{7}, 32)

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func mustPut(t *testing.T, ks custos.KeyStore, tn custos.TenantID, s custos.SubjectID, v []byte) {
	t.Helper()
	wait, err := ks.PutSubjectKey(t.Context(), tn, s, v)
	if err != nil {
		t.Fatalf("PutSubjectKey(%s/%s) = %v, want nil", tn, s, err)
	}
	if err := wait(); err != nil {
		t.Fatalf("PutSubjectKey(%s/%s) wait() = %v, want nil", tn, s, err)
	}
}

// TestKeyStoreTenantKeysAndMeta checks that tenant keys and meta records
// are stored together, replaced together, and read back by a second
// handle (another node) and after a reopen.
func TestKeyStoreTenantKeysAndMeta(t *testing.T) {
	ctx := t.Context()
	url := pgtest.NewDatabase(t)
	ks := openKeyStore(t, url)
	if _, err := ks.Meta(ctx, "master-check"); !errors.Is(err, custos.ErrNotFound) {
		t.Errorf("Meta of a new store = %v, want ErrNotFound", err)
	}
	a, b := custos.NewTenantID(), custos.NewTenantID()
	keys := map[custos.TenantID][]byte{a: random(61), b: random(61)}
	check := random(40)
	if err := ks.PutTenantKeys(ctx, keys, map[string][]byte{"master-check": check}); err != nil {
		t.Fatalf("PutTenantKeys = %v, want nil", err)
	}
	for name, h := range map[string]*postgres.KeyStore{"same handle": ks, "second handle": openKeyStore(t, url)} {
		got, err := h.TenantKeys(ctx)
		if err != nil || len(got) != 2 || !bytes.Equal(got[a], keys[a]) || !bytes.Equal(got[b], keys[b]) {
			t.Errorf("%s: TenantKeys = %x, %v; want %x", name, got, err, keys)
		}
		if v, err := h.Meta(ctx, "master-check"); err != nil || !bytes.Equal(v, check) {
			t.Errorf("%s: Meta(master-check) = %x, %v; want %x", name, v, err, check)
		}
	}
	// A rotation replaces every key and the check at once.
	rewrapped := map[custos.TenantID][]byte{a: random(61), b: random(61)}
	check2 := random(40)
	if err := ks.PutTenantKeys(ctx, rewrapped, map[string][]byte{"master-check": check2}); err != nil {
		t.Fatal(err)
	}
	got, _ := ks.TenantKeys(ctx)
	for id, w := range rewrapped {
		if !bytes.Equal(got[id], w) {
			t.Errorf("after replace, tenant %s: key = %x, want %x", id, got[id], w)
		}
	}
	if v, _ := ks.Meta(ctx, "master-check"); !bytes.Equal(v, check2) {
		t.Errorf("after replace, Meta(master-check) = %x, want %x", v, check2)
	}
	if err := ks.PutTenantKeys(ctx, nil, map[string][]byte{"": {1}}); err == nil {
		t.Error("PutTenantKeys with an empty meta name = nil, want an error")
	}
}

func TestKeyStoreSubjectKeyLifecycle(t *testing.T) {
	ctx := t.Context()
	url := pgtest.NewDatabase(t)
	ks := openKeyStore(t, url)
	tn := custos.NewTenantID()
	live, shredded, never, shreddedFirst := custos.NewSubjectID(), custos.NewSubjectID(), custos.NewSubjectID(), custos.NewSubjectID()
	liveKey := random(61)
	mustPut(t, ks, tn, live, liveKey)
	mustPut(t, ks, tn, shredded, random(61))
	if err := ks.ShredSubjectKey(ctx, tn, shredded); err != nil {
		t.Fatal(err)
	}
	// Shredding a key that never existed still leaves the marker.
	if err := ks.ShredSubjectKey(ctx, tn, shreddedFirst); err != nil {
		t.Fatal(err)
	}
	check := func(when string, ks custos.KeyStore) {
		t.Helper()
		tests := []struct {
			name    string
			s       custos.SubjectID
			want    []byte
			wantErr error
		}{
			{"live", live, liveKey, nil},
			{"shredded", shredded, nil, custos.ErrShredded},
			{"shredded before any key", shreddedFirst, nil, custos.ErrShredded},
			{"never", never, nil, custos.ErrNotFound},
		}
		for _, tt := range tests {
			got, err := ks.SubjectKey(ctx, tn, tt.s)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) || !bytes.Equal(got, tt.want) {
				t.Errorf("%s: SubjectKey(%s) = %x, %v; want %x, %v", when, tt.name, got, err, tt.want, tt.wantErr)
			}
		}
		for _, s := range []custos.SubjectID{shredded, shreddedFirst} {
			if _, err := ks.PutSubjectKey(ctx, tn, s, random(61)); !errors.Is(err, custos.ErrShredded) {
				t.Errorf("%s: PutSubjectKey over shredded %s = %v, want ErrShredded", when, s, err)
			}
		}
	}
	check("same handle", ks)
	check("second handle", openKeyStore(t, url))
	ks.Close()
	check("after reopen", openKeyStore(t, url))
}

func TestKeyStoreRejectsShortKeys(t *testing.T) {
	ks := openKeyStore(t, pgtest.NewDatabase(t))
	for _, v := range [][]byte{nil, {}, {0x42}} {
		if _, err := ks.PutSubjectKey(t.Context(), custos.NewTenantID(), custos.NewSubjectID(), v); err == nil {
			t.Errorf("PutSubjectKey(%x) = nil, want an error", v)
		}
	}
}

func TestKeyStoreDeleteTenantKey(t *testing.T) {
	ctx := t.Context()
	ks := openKeyStore(t, pgtest.NewDatabase(t))
	gone, kept := custos.NewTenantID(), custos.NewTenantID()
	if err := ks.PutTenantKeys(ctx, map[custos.TenantID][]byte{gone: random(61), kept: random(61)}, nil); err != nil {
		t.Fatal(err)
	}
	s := custos.NewSubjectID()
	mustPut(t, ks, gone, s, random(61))
	keptKey := random(61)
	mustPut(t, ks, kept, s, keptKey)
	if err := ks.DeleteTenantKey(ctx, gone); err != nil {
		t.Fatalf("DeleteTenantKey = %v, want nil", err)
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
	if _, err := ks.SubjectKey(ctx, gone, s); !errors.Is(err, custos.ErrNotFound) {
		t.Errorf("subject key of deleted tenant: err = %v, want ErrNotFound", err)
	}
	if got, err := ks.SubjectKey(ctx, kept, s); err != nil || !bytes.Equal(got, keptKey) {
		t.Errorf("subject key of kept tenant = %x, %v; want %x", got, err, keptKey)
	}
}

func TestKeyStoreClosed(t *testing.T) {
	ctx := t.Context()
	ks := openKeyStore(t, pgtest.NewDatabase(t))
	ks.Close()
	if err := ks.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
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
			t.Errorf("%s after Close = %v, want code %s", name, err, custos.Unavailable)
		}
	}
}

// TestKeyStoreShredWinsRacesAcrossNodes races puts from two handles (two
// nodes) against a shred from a third: once ShredSubjectKey has returned,
// the subject reads as shredded on every handle, whatever order the puts
// landed in.
func TestKeyStoreShredWinsRacesAcrossNodes(t *testing.T) {
	ctx := t.Context()
	url := pgtest.NewDatabase(t)
	nodes := []*postgres.KeyStore{openKeyStore(t, url), openKeyStore(t, url), openKeyStore(t, url)}
	tn := custos.NewTenantID()
	for i := range 30 {
		s := custos.NewSubjectID()
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				wait, err := nodes[w%2].PutSubjectKey(ctx, tn, s, []byte("wrapped-subject-key"))
				if err == nil {
					err = wait()
				}
				if err != nil && !errors.Is(err, custos.ErrShredded) {
					t.Errorf("round %d: PutSubjectKey = %v, want nil or ErrShredded", i, err)
				}
			})
		}
		if err := nodes[2].ShredSubjectKey(ctx, tn, s); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		for n, ks := range nodes {
			if _, err := ks.SubjectKey(ctx, tn, s); !errors.Is(err, custos.ErrShredded) {
				t.Fatalf("round %d: node %d after racing puts: err = %v, want ErrShredded", i, n, err)
			}
		}
	}
}

// TestKeyStoreSubjectKeys checks the ordered range read: bounds included,
// shredded keys and other tenants' keys left out, and an early stop.
func TestKeyStoreSubjectKeys(t *testing.T) {
	ctx := t.Context()
	ks := openKeyStore(t, pgtest.NewDatabase(t))
	tn, other := custos.NewTenantID(), custos.NewTenantID()
	var subs []custos.SubjectID
	vals := map[custos.SubjectID][]byte{}
	for i := range 6 {
		s := custos.SubjectID{byte(i * 10)}
		s[15] = 1
		subs = append(subs, s)
		vals[s] = random(61)
		mustPut(t, ks, tn, s, vals[s])
		mustPut(t, ks, other, s, random(61))
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

// TestKeyStoreRefusesAnotherMasterKey opens a keyring on a PostgreSQL key
// database with one master key, then from a second node with another: the
// second is refused with keyring.ErrWrongMasterKey, and the first key
// still opens it.
func TestKeyStoreRefusesAnotherMasterKey(t *testing.T) {
	ctx := t.Context()
	url := pgtest.NewDatabase(t)
	masterA, masterB := random(32), random(32)
	if _, err := keyring.New(ctx, openKeyStore(t, url), masterA, keyring.Options{}); err != nil {
		t.Fatalf("keyring.New with the first master key = %v, want nil", err)
	}
	_, err := keyring.New(ctx, openKeyStore(t, url), masterB, keyring.Options{})
	if !errors.Is(err, keyring.ErrWrongMasterKey) {
		t.Errorf("keyring.New with another master key = %v, want %v", err, keyring.ErrWrongMasterKey)
	}
	if _, err := keyring.New(ctx, openKeyStore(t, url), masterA, keyring.Options{}); err != nil {
		t.Errorf("keyring.New with the first master key again = %v, want nil", err)
	}
}

// TestSeparateDatabases checks that one database cannot serve as both the
// data and the key database, in either order, and that the error says so.
func TestSeparateDatabases(t *testing.T) {
	ctx := t.Context()
	data := pgtest.NewDatabase(t)
	openStore(t, data)
	if ks, err := postgres.OpenKeyStore(ctx, data, postgres.Options{MasterKey: testMaster}); err == nil || !strings.Contains(err.Error(), "two separate databases") {
		if ks != nil {
			ks.Close()
		}
		t.Errorf("OpenKeyStore on the data database = %v, want an error asking for two separate databases", err)
	}
	keys := pgtest.NewDatabase(t)
	openKeyStore(t, keys)
	if st, err := postgres.Open(ctx, keys, postgres.Options{}); err == nil || !strings.Contains(err.Error(), "two separate databases") {
		if st != nil {
			st.Close()
		}
		t.Errorf("Open on the key database = %v, want an error asking for two separate databases", err)
	}
}

// TestKeyStoreShredVacuums checks that a shred is followed, by itself, by
// a VACUUM of the subject key table, which removes the dead row that held
// the wrapped key.
func TestKeyStoreShredVacuums(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ks := openKeyStore(t, url)
	tn, s := custos.NewTenantID(), custos.NewSubjectID()
	mustPut(t, ks, tn, s, random(61))
	conn := connect(t, url)
	lastVacuum := func() (done bool) {
		t.Helper()
		if err := conn.QueryRow(t.Context(), "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'subject_keys'").Scan(&done); err != nil {
			t.Fatal(err)
		}
		return done
	}
	if lastVacuum() {
		t.Fatal("subject_keys was vacuumed before any shred; the test proves nothing")
	}
	if err := ks.ShredSubjectKey(t.Context(), tn, s); err != nil {
		t.Fatal(err)
	}
	testenv.Poll(t, 15*time.Second, "a VACUUM of subject_keys after a shred", lastVacuum)
}
