package keyring

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pebble"
)

// testMaster returns a fresh master key.
func testMaster(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, keySize)
	rand.Read(k)
	return k
}

// openStore opens a key store in dir, closed when the test ends.
func openStore(t testing.TB, dir string) *pebble.KeyStore {
	t.Helper()
	ks, err := pebble.OpenKeyStore(dir)
	if err != nil {
		t.Fatalf("OpenKeyStore(%s): %v", dir, err)
	}
	t.Cleanup(func() { ks.Close() })
	return ks
}

// openRing opens a key store in dir and a Ring over it.
func openRing(t testing.TB, dir string, master []byte, opts Options) (*Ring, *pebble.KeyStore) {
	t.Helper()
	ks := openStore(t, dir)
	r, err := New(context.Background(), ks, master, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r, ks
}

// newTenant creates a tenant in r.
func mustTenant(t testing.TB, r *Ring) custos.TenantID {
	t.Helper()
	id := custos.NewTenantID()
	if err := r.CreateTenant(context.Background(), id); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	return id
}

func mustSeal(t testing.TB, r *Ring, tn custos.TenantID, s custos.SubjectID, recordKey, pt []byte) []byte {
	t.Helper()
	ct, err := r.Seal(context.Background(), tn, s, recordKey, pt)
	if err != nil {
		t.Fatalf("Seal(%s/%s, %q): %v", tn, s, recordKey, err)
	}
	return ct
}

func TestSealOpenRoundTrip(t *testing.T) {
	ctx := context.Background()
	r, _ := openRing(t, t.TempDir(), testMaster(t), Options{})
	tn := mustTenant(t, r)
	s := custos.NewSubjectID()
	tests := []struct {
		name      string
		recordKey []byte
		plaintext []byte
	}{
		{"empty", []byte("e/1"), nil},
		{"small", []byte("e/2"), []byte(`{"event":"Signed Up"}`)},
		{"no record key", nil, []byte("profile")},
		{"large", bytes.Repeat([]byte("k"), 300), bytes.Repeat([]byte("x"), 1<<16)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := mustSeal(t, r, tn, s, tt.recordKey, tt.plaintext)
			if got, want := len(ct), len(tt.plaintext)+Overhead; got != want {
				t.Errorf("sealed length = %d, want %d", got, want)
			}
			if len(tt.plaintext) > 8 && bytes.Contains(ct, tt.plaintext) {
				t.Error("sealed value contains the plaintext")
			}
			got, err := r.Open(ctx, tn, s, tt.recordKey, ct)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Errorf("Open = %q, want %q", got, tt.plaintext)
			}
			// Two seals of one plaintext differ (fresh nonce).
			if ct2 := mustSeal(t, r, tn, s, tt.recordKey, tt.plaintext); bytes.Equal(ct, ct2) {
				t.Error("two seals of the same plaintext are equal")
			}
		})
	}
}

func TestSubjectKeyAppendsToDst(t *testing.T) {
	ctx := context.Background()
	r, _ := openRing(t, t.TempDir(), testMaster(t), Options{})
	tn := mustTenant(t, r)
	k, wait, err := r.SubjectKey(ctx, tn, custos.NewSubjectID(), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	prefix := []byte("prefix:")
	ct, err := k.Seal(bytes.Clone(prefix), []byte("r"), []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(ct, prefix) {
		t.Fatalf("Seal did not append to dst: %q", ct)
	}
	pt, err := k.Open([]byte("out:"), []byte("r"), ct[len(prefix):])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(pt), "out:hello"; got != want {
		t.Errorf("Open appended = %q, want %q", got, want)
	}
}

func TestOpenTampered(t *testing.T) {
	ctx := context.Background()
	r, _ := openRing(t, t.TempDir(), testMaster(t), Options{})
	tn := mustTenant(t, r)
	s := custos.NewSubjectID()
	pt := []byte("a record of 32 bytes, give or ta")
	ct := mustSeal(t, r, tn, s, []byte("rec"), pt)
	tests := []struct {
		name string
		at   int
	}{
		{"version", 0},
		{"nonce first", 1},
		{"nonce last", headerSize - 1},
		{"body first", headerSize},
		{"body last", headerSize + len(pt) - 1},
		{"tag first", len(ct) - tagSize},
		{"tag last", len(ct) - 1},
	}
	for _, tt := range tests {
		for _, bit := range []byte{0x01, 0x80} {
			t.Run(fmt.Sprintf("%s^%#x", tt.name, bit), func(t *testing.T) {
				bad := bytes.Clone(ct)
				bad[tt.at] ^= bit
				got, err := r.Open(ctx, tn, s, []byte("rec"), bad)
				if err != ErrTampered {
					t.Errorf("Open with byte %d flipped = %q, %v; want ErrTampered", tt.at, got, err)
				}
			})
		}
	}
	for _, n := range []int{0, 1, headerSize, Overhead - 1, len(ct) - 1} {
		if _, err := r.Open(ctx, tn, s, []byte("rec"), ct[:n]); err != ErrTampered {
			t.Errorf("Open of the first %d bytes: err = %v, want ErrTampered", n, err)
		}
	}
	if _, err := r.Open(ctx, tn, s, []byte("rec"), append(bytes.Clone(ct), 0)); err != ErrTampered {
		t.Errorf("Open with a byte appended: err = %v, want ErrTampered", err)
	}
	if got, err := r.Open(ctx, tn, s, []byte("rec"), ct); err != nil || !bytes.Equal(got, pt) {
		t.Errorf("Open of the untouched value = %q, %v; want %q", got, err, pt)
	}
}

func TestOpenMovedCiphertext(t *testing.T) {
	ctx := context.Background()
	r, _ := openRing(t, t.TempDir(), testMaster(t), Options{})
	tn, other := mustTenant(t, r), mustTenant(t, r)
	s, s2 := custos.NewSubjectID(), custos.NewSubjectID()
	ct := mustSeal(t, r, tn, s, []byte("event/1"), []byte("secret"))
	mustSeal(t, r, tn, s2, []byte("event/1"), []byte("s2 has a key"))
	mustSeal(t, r, other, s, []byte("event/1"), []byte("same subject id, other tenant"))

	tests := []struct {
		name      string
		t         custos.TenantID
		s         custos.SubjectID
		recordKey string
	}{
		{"other record key", tn, s, "event/2"},
		{"record key prefix", tn, s, "event/"},
		{"record key extended", tn, s, "event/10"},
		{"other subject", tn, s2, "event/1"},
		{"other tenant, same subject id", other, s, "event/1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := r.Open(ctx, tt.t, tt.s, []byte(tt.recordKey), ct); err != ErrTampered {
				t.Errorf("Open as %s/%s/%q = %q, %v; want ErrTampered", tt.t, tt.s, tt.recordKey, got, err)
			}
		})
	}
}

func TestShred(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	master := testMaster(t)
	r, ks := openRing(t, dir, master, Options{})
	tn := mustTenant(t, r)
	victim, bystander := custos.NewSubjectID(), custos.NewSubjectID()

	// A caller holding the victim's key across the shred.
	held, wait, err := r.SubjectKey(ctx, tn, victim, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	var victimRecs, bystanderRecs [][]byte
	for i := range 5 {
		rk := fmt.Appendf(nil, "e/%d", i)
		victimRecs = append(victimRecs, mustSeal(t, r, tn, victim, rk, []byte("victim data")))
		bystanderRecs = append(bystanderRecs, mustSeal(t, r, tn, bystander, rk, []byte("bystander data")))
	}

	if err := r.Shred(ctx, tn, victim); err != nil {
		t.Fatal(err)
	}
	if err := r.Shred(ctx, tn, victim); err != nil {
		t.Errorf("second Shred: %v", err)
	}

	check := func(t *testing.T, r *Ring) {
		t.Helper()
		for i := range 5 {
			rk := fmt.Appendf(nil, "e/%d", i)
			if got, err := r.Open(ctx, tn, victim, rk, victimRecs[i]); err != custos.ErrShredded {
				t.Errorf("Open victim record %d = %q, %v; want ErrShredded", i, got, err)
			}
			if got, err := r.Open(ctx, tn, bystander, rk, bystanderRecs[i]); err != nil || string(got) != "bystander data" {
				t.Errorf("Open bystander record %d = %q, %v; want it intact", i, got, err)
			}
		}
		if _, err := r.Seal(ctx, tn, victim, []byte("e/new"), []byte("late event")); err != custos.ErrShredded {
			t.Errorf("Seal for shredded subject: err = %v, want ErrShredded", err)
		}
		for _, create := range []bool{false, true} {
			if _, _, err := r.SubjectKey(ctx, tn, victim, create); err != custos.ErrShredded {
				t.Errorf("SubjectKey(create=%v) of shredded subject: err = %v, want ErrShredded", create, err)
			}
		}
	}
	t.Run("same ring", func(t *testing.T) {
		check(t, r)
		if _, err := held.Seal(nil, []byte("e/0"), []byte("x")); err != custos.ErrShredded {
			t.Errorf("Seal with a key held across the shred: err = %v, want ErrShredded", err)
		}
		if _, err := held.Open(nil, []byte("e/0"), victimRecs[0]); err != custos.ErrShredded {
			t.Errorf("Open with a key held across the shred: err = %v, want ErrShredded", err)
		}
	})
	t.Run("after reopen", func(t *testing.T) {
		if err := ks.Close(); err != nil {
			t.Fatal(err)
		}
		r2, _ := openRing(t, dir, master, Options{})
		check(t, r2)
	})
}

func TestShredNeverKeyedSubject(t *testing.T) {
	ctx := context.Background()
	r, _ := openRing(t, t.TempDir(), testMaster(t), Options{})
	tn := mustTenant(t, r)
	s := custos.NewSubjectID()
	if err := r.Shred(ctx, tn, s); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.SubjectKey(ctx, tn, s, true); err != custos.ErrShredded {
		t.Errorf("SubjectKey(create) after shredding a keyless subject: err = %v, want ErrShredded", err)
	}
}

func TestSubjectKeyMissing(t *testing.T) {
	ctx := context.Background()
	r, _ := openRing(t, t.TempDir(), testMaster(t), Options{})
	tn := mustTenant(t, r)
	s := custos.NewSubjectID()
	if _, _, err := r.SubjectKey(ctx, tn, s, false); err != custos.ErrNotFound {
		t.Errorf("SubjectKey(create=false) of new subject: err = %v, want ErrNotFound", err)
	}
	if _, err := r.Open(ctx, tn, s, nil, make([]byte, 40)); err != custos.ErrNotFound {
		t.Errorf("Open for a subject without key: err = %v, want ErrNotFound", err)
	}
	// The miss was not cached: creating works afterwards.
	k, wait, err := r.SubjectKey(ctx, tn, s, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	k2, wait2, err := r.SubjectKey(ctx, tn, s, false)
	if err != nil || k2 != k {
		t.Fatalf("SubjectKey after create = %p, %v; want the cached %p", k2, err, k)
	}
	if err := wait2(); err != nil {
		t.Errorf("wait of a durable key: %v", err)
	}
}

func TestUnknownTenant(t *testing.T) {
	ctx := context.Background()
	r, _ := openRing(t, t.TempDir(), testMaster(t), Options{})
	tn := custos.NewTenantID()
	if _, err := r.Seal(ctx, tn, custos.NewSubjectID(), nil, []byte("x")); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("Seal for unknown tenant: err = %v, want code %s", err, custos.NotFound)
	}
	if _, err := r.HashIdentifier(tn, custos.Identifier{Type: custos.UserID, Value: "u"}); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("HashIdentifier for unknown tenant: err = %v, want code %s", err, custos.NotFound)
	}
	if err := r.DeleteTenant(ctx, tn); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("DeleteTenant of unknown tenant: err = %v, want code %s", err, custos.NotFound)
	}
}

func TestCreateTenantIdempotent(t *testing.T) {
	ctx := context.Background()
	r, _ := openRing(t, t.TempDir(), testMaster(t), Options{})
	tn := mustTenant(t, r)
	h1, err := r.HashIdentifier(tn, custos.Identifier{Type: custos.UserID, Value: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CreateTenant(ctx, tn); err != nil {
		t.Fatalf("second CreateTenant: %v", err)
	}
	h2, _ := r.HashIdentifier(tn, custos.Identifier{Type: custos.UserID, Value: "u1"})
	if h1 != h2 {
		t.Error("second CreateTenant replaced the tenant key")
	}
}

func TestDeleteTenant(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	master := testMaster(t)
	r, ks := openRing(t, dir, master, Options{})
	gone, kept := mustTenant(t, r), mustTenant(t, r)
	subjects := []custos.SubjectID{custos.NewSubjectID(), custos.NewSubjectID(), custos.NewSubjectID()}
	var goneRecs, keptRecs [][]byte
	for _, s := range subjects {
		goneRecs = append(goneRecs, mustSeal(t, r, gone, s, []byte("p"), []byte("gone tenant data")))
		keptRecs = append(keptRecs, mustSeal(t, r, kept, s, []byte("p"), []byte("kept tenant data")))
	}
	held, _, err := r.SubjectKey(ctx, gone, subjects[0], false)
	if err != nil {
		t.Fatal(err)
	}

	if err := r.DeleteTenant(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteTenant(ctx, gone); err != nil {
		t.Errorf("second DeleteTenant: %v", err)
	}

	check := func(t *testing.T, r *Ring) {
		t.Helper()
		for i, s := range subjects {
			if got, err := r.Open(ctx, gone, s, []byte("p"), goneRecs[i]); err != custos.ErrShredded {
				t.Errorf("Open record of deleted tenant, subject %d = %q, %v; want ErrShredded", i, got, err)
			}
			if got, err := r.Open(ctx, kept, s, []byte("p"), keptRecs[i]); err != nil || string(got) != "kept tenant data" {
				t.Errorf("Open record of other tenant, subject %d = %q, %v; want it intact", i, got, err)
			}
		}
		if _, err := r.Seal(ctx, gone, custos.NewSubjectID(), nil, []byte("x")); err != custos.ErrShredded {
			t.Errorf("Seal for deleted tenant: err = %v, want ErrShredded", err)
		}
		if _, err := r.HashIdentifier(gone, custos.Identifier{Type: custos.UserID, Value: "u"}); err != custos.ErrShredded {
			t.Errorf("HashIdentifier for deleted tenant: err = %v, want ErrShredded", err)
		}
		if err := r.CreateTenant(ctx, gone); custos.ErrorCode(err) != custos.Gone {
			t.Errorf("CreateTenant of deleted tenant: err = %v, want code %s", err, custos.Gone)
		}
		if err := r.Shred(ctx, gone, subjects[1]); err != nil {
			t.Errorf("Shred in deleted tenant: %v", err)
		}
	}
	t.Run("same ring", func(t *testing.T) {
		check(t, r)
		if _, err := held.Open(nil, []byte("p"), goneRecs[0]); err != custos.ErrShredded {
			t.Errorf("Open with a key held across the deletion: err = %v, want ErrShredded", err)
		}
	})
	t.Run("after reopen", func(t *testing.T) {
		if err := ks.Close(); err != nil {
			t.Fatal(err)
		}
		r2, ks2 := openRing(t, dir, master, Options{})
		check(t, r2)
		keys, err := ks2.TenantKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := keys[gone]; ok {
			t.Error("deleted tenant's key is still in the key store")
		}
	})
}

// TestDeleteTenantInterrupted stops a deletion after it was recorded but
// before the key was destroyed, as a crash would: the next New finishes it.
func TestDeleteTenantInterrupted(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	master := testMaster(t)
	r, ks := openRing(t, dir, master, Options{})
	tn := mustTenant(t, r)
	s := custos.NewSubjectID()
	rec := mustSeal(t, r, tn, s, nil, []byte("data"))
	// The first step of DeleteTenant, alone.
	if err := ks.PutTenantKeys(ctx, nil, map[string][]byte{metaDeletedTenants: tn[:]}); err != nil {
		t.Fatal(err)
	}
	ks.Close()

	r2, ks2 := openRing(t, dir, master, Options{})
	if _, err := r2.Open(ctx, tn, s, nil, rec); err != custos.ErrShredded {
		t.Errorf("Open after interrupted deletion: err = %v, want ErrShredded", err)
	}
	keys, err := ks2.TenantKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := keys[tn]; ok {
		t.Error("New did not finish destroying the tenant key")
	}
}

func TestWrongMasterKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	master := testMaster(t)
	r, ks := openRing(t, dir, master, Options{})
	mustTenant(t, r)

	wrong := bytes.Clone(master)
	wrong[31] ^= 1
	if _, err := New(ctx, ks, wrong, Options{}); err != ErrWrongMasterKey {
		t.Errorf("New with a wrong master key: err = %v, want ErrWrongMasterKey", err)
	}
	if got, want := ErrWrongMasterKey.Error(), "master key does not match the key store"; !bytes.Contains([]byte(got), []byte(want)) {
		t.Errorf("error text %q does not say %q", got, want)
	}
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := New(ctx, ks, make([]byte, n), Options{}); err == nil {
			t.Errorf("New with a %d-byte master key succeeded", n)
		}
	}
	if _, err := New(ctx, ks, master, Options{}); err != nil {
		t.Errorf("New with the right master key after refusals: %v", err)
	}
}

// TestWrongMasterKeyWithoutCheck covers a store holding tenant keys but no
// master check (written before the check existed, or by hand): the check
// is only recorded after every tenant key opens.
func TestWrongMasterKeyWithoutCheck(t *testing.T) {
	ctx := context.Background()
	ks := openStore(t, t.TempDir())
	master := testMaster(t)
	m, _ := newAEAD(master)
	tn := custos.NewTenantID()
	if err := ks.PutTenantKeys(ctx, map[custos.TenantID][]byte{tn: seal(m, nil, adTenantKey(tn), newKey())}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, ks, testMaster(t), Options{}); err != ErrWrongMasterKey {
		t.Fatalf("New with a wrong master key, no check: err = %v, want ErrWrongMasterKey", err)
	}
	if _, err := ks.Meta(ctx, metaMasterCheck); err != custos.ErrNotFound {
		t.Fatalf("a refused master key recorded a check: err = %v", err)
	}
	if _, err := New(ctx, ks, master, Options{}); err != nil {
		t.Fatalf("New with the right key: %v", err)
	}
	if _, err := New(ctx, ks, testMaster(t), Options{}); err != ErrWrongMasterKey {
		t.Errorf("after the check was recorded, wrong key: err = %v, want ErrWrongMasterKey", err)
	}
}

func TestNewOptions(t *testing.T) {
	ks := openStore(t, t.TempDir())
	if _, err := New(context.Background(), ks, testMaster(t), Options{CacheSize: -1}); err == nil {
		t.Error("New with a negative cache size succeeded")
	}
}

func TestSealTenantRoundTripAndBinding(t *testing.T) {
	r, _ := openRing(t, t.TempDir(), testMaster(t), Options{})
	ctx := context.Background()
	a, b := mustTenant(t, r), mustTenant(t, r)
	sealed, err := r.SealTenant(a, []byte("delivery-1"), []byte("ann@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("ann@example.com")) {
		t.Fatal("sealed record holds the plaintext")
	}
	if got, err := r.OpenTenant(a, []byte("delivery-1"), sealed); err != nil || string(got) != "ann@example.com" {
		t.Errorf("OpenTenant = %q, %v", got, err)
	}
	if _, err := r.OpenTenant(b, []byte("delivery-1"), sealed); err == nil {
		t.Error("another tenant opens the record")
	}
	if _, err := r.OpenTenant(a, []byte("delivery-2"), sealed); err == nil {
		t.Error("the record opens under another record key")
	}
	if err := r.DeleteTenant(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := r.OpenTenant(a, []byte("delivery-1"), sealed); err == nil {
		t.Error("the record opens after its tenant was deleted")
	}
}

// TestSubjectKeysWalk checks that the ordered walk gives, for every live
// subject in range, a key that opens what its cached key sealed — and
// leaves out a shredded subject.
func TestSubjectKeysWalk(t *testing.T) {
	ctx := context.Background()
	r, _ := openRing(t, t.TempDir(), testMaster(t), Options{CacheSize: 1})
	tn := custos.NewTenantID()
	if err := r.CreateTenant(ctx, tn); err != nil {
		t.Fatal(err)
	}
	sealed := map[custos.SubjectID][]byte{}
	var subs []custos.SubjectID
	for i := range 4 {
		s := custos.SubjectID{byte(i + 1)}
		subs = append(subs, s)
		ct, err := r.Seal(ctx, tn, s, []byte("rec"), []byte(fmt.Sprintf("secret %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		sealed[s] = ct
	}
	if err := r.Shred(ctx, tn, subs[1]); err != nil {
		t.Fatal(err)
	}
	var got []custos.SubjectID
	err := r.SubjectKeys(ctx, tn, subs[0], subs[3], func(k *SubjectKey) (bool, error) {
		got = append(got, k.Subject())
		pt, err := k.Open(nil, []byte("rec"), sealed[k.Subject()])
		if err != nil || !bytes.HasPrefix(pt, []byte("secret ")) {
			t.Errorf("key of %s from the walk: open = %q, %v", k.Subject(), pt, err)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []custos.SubjectID{subs[0], subs[2], subs[3]}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("SubjectKeys = %v, want %v (the shredded subject left out)", got, want)
	}
}

// TestForgetOnSharedKeyStore: two rings on one key store, as two nodes
// are. A shred through one leaves the other's cached key usable until it
// is told: Forget (a notification about the subject) or ForgetAll (its
// notifications were cut off) make it read the key store again, where the
// key is shredded; other subjects' keys are loaded again as they were.
func TestForgetOnSharedKeyStore(t *testing.T) {
	ctx := context.Background()
	master := testMaster(t)
	a, ks := openRing(t, t.TempDir(), master, Options{})
	b, err := New(ctx, ks, master, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tn := mustTenant(t, a)
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	one, two, other := custos.NewSubjectID(), custos.NewSubjectID(), custos.NewSubjectID()
	sealed := map[custos.SubjectID][]byte{}
	for _, s := range []custos.SubjectID{one, two, other} {
		sealed[s] = mustSeal(t, a, tn, s, []byte("rk"), []byte("data"))
		if got, err := b.Open(ctx, tn, s, []byte("rk"), sealed[s]); err != nil || string(got) != "data" {
			t.Fatalf("node B opens %s: %q, %v", s, got, err)
		}
	}
	for _, s := range []custos.SubjectID{one, two} {
		if err := a.Shred(ctx, tn, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Open(ctx, tn, one, []byte("rk"), sealed[one]); err != nil {
		t.Fatalf("node B, not told, no longer has the key in memory (%v): the test cannot show what Forget does", err)
	}
	b.Forget(tn, one)
	if _, err := b.Open(ctx, tn, one, []byte("rk"), sealed[one]); err != custos.ErrShredded {
		t.Errorf("after Forget, node B opens the shredded subject's record: %v, want ErrShredded", err)
	}
	if _, err := b.Open(ctx, tn, two, []byte("rk"), sealed[two]); err != nil {
		t.Fatalf("node B lost subject two's key before ForgetAll (%v)", err)
	}
	b.ForgetAll()
	if _, err := b.Open(ctx, tn, two, []byte("rk"), sealed[two]); err != custos.ErrShredded {
		t.Errorf("after ForgetAll, node B opens the shredded subject's record: %v, want ErrShredded", err)
	}
	if got, err := b.Open(ctx, tn, other, []byte("rk"), sealed[other]); err != nil || string(got) != "data" {
		t.Errorf("after ForgetAll, another subject's record: %q, %v; want it opened", got, err)
	}
}
